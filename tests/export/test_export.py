"""`sdrl export`: the ⚑ export folder, its torchvision contract, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from sdrl.checkpoint import CheckpointHeader, file_sha256
from sdrl.cli import main
from sdrl.errors import ConfigError, DataError
from sdrl.export import export_backbone, load_torchvision
from sdrl.models import build_backbone, build_change_model, init_encoder
from tests.export.checkpoints import fake_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

RGBN = ["red", "green", "blue", "nir"]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", ["pretrain", "change"])
def test_export_folder_holds_the_backbone_and_its_description(tmp_path: Path, kind: str):
    target = {"method.target_backbone.conv1.weight": torch.zeros(8, 4, 7, 7)}
    source = fake_checkpoint(
        tmp_path / "run.ckpt", "resnet_tiny", RGBN, kind=kind, extra_state=target, seed=1
    )
    result = export_backbone(tmp_path / "run.ckpt", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "meta.json",
        "weights.safetensors",
    ]
    weights = load_file(result.weights)
    assert weights.keys() == source.state_dict().keys()  # torchvision names, no momentum copy
    for key, value in source.state_dict().items():
        assert torch.equal(weights[key], value), key
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta == result.meta
    assert meta["architecture"] == "resnet_tiny" and meta["in_channels"] == 4
    assert meta["bands"] == RGBN and meta["wavelengths_nm"] == [665.0, 560.0, 490.0, 842.0]
    assert meta["mean"] == [100.0, 101.0, 102.0, 103.0] and meta["std"][0] == 10.0
    assert meta["kind"] == kind and meta["data"] == "data/somewhere"
    assert meta["method"] == ("sdrl" if kind == "pretrain" else None)
    assert meta["source_checkpoint"]["sha256"] == file_sha256(tmp_path / "run.ckpt")
    assert meta["sdrl_version"] and meta["band_mapping"] is None and meta["temporal"] is None
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("backbone", "classifier", "first"),
    [("resnet18", "fc", "conv1"), ("swin_t", "head", "features.0.0")],
)
def test_weights_load_strictly_into_torchvision(tmp_path: Path, backbone, classifier, first):
    source = fake_checkpoint(tmp_path / "run.ckpt", backbone, RGBN)
    export_backbone(tmp_path / "run.ckpt", tmp_path / "out")
    model = getattr(torchvision.models, backbone)(weights=None)
    setattr(model, classifier, nn.Identity())
    old = model.get_submodule(first)
    conv = nn.Conv2d(
        4, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None
    )
    parent, _, name = first.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, conv)
    model.load_state_dict(load_file(tmp_path / "out" / "weights.safetensors"), strict=True)
    ready = load_torchvision(tmp_path / "out")
    assert not ready.training
    image = torch.randn(1, 4, 64, 64)
    with torch.no_grad():
        features = ready(image)
        torch.testing.assert_close(features, model.eval()(image))
        c5 = source(image)[3]
    dim = 512 if backbone == "resnet18" else 768
    assert features.shape == (1, dim)
    if backbone == "resnet18":  # the pooled C5 of sdrl's backbone
        torch.testing.assert_close(features, c5.mean(dim=(2, 3)), rtol=1e-4, atol=1e-5)


def test_cli_export_and_overwrite(tmp_path: Path, capsys):
    fake_checkpoint(tmp_path / "run.ckpt", "resnet_tiny", RGBN)
    argv = ["export", "--checkpoint", str(tmp_path / "run.ckpt"), "--out", str(tmp_path / "out")]
    assert main([*argv, "--bands", "sentinel2-10"]) == 0
    assert "resnet_tiny (B02, B03, B04, B05, B06, B07, ... (10))" in capsys.readouterr().out
    assert main(argv) == 2
    assert "expected a new or empty output folder" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["in_channels"] == 10
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["in_channels"] == 4
    assert leftovers(tmp_path) == []


def write_unsafe(path: Path) -> None:
    torch.save({"sdrl": {"kind": "pretrain"}, "obj": torch.nn.ReLU()}, path)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys):
    fake_checkpoint(tmp_path / "rn.ckpt", "resnet_tiny", RGBN)
    data = (tmp_path / "rn.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "tv.pth")
    write_unsafe(tmp_path / "unsafe.ckpt")
    fake_checkpoint(tmp_path / "anon.ckpt", "resnet_tiny", ["p", "q", "r", "s"])
    unet = CheckpointHeader(
        kind="change",
        backbone=None,
        in_channels=4,
        bands=RGBN,
        mean=[0] * 4,
        std=[1] * 4,
        model="unet",
    )
    torch.save(
        {"state_dict": {"model.x": torch.zeros(1)}, "sdrl": unet.to_dict()}, tmp_path / "unet.ckpt"
    )
    export_backbone(tmp_path / "rn.ckpt", tmp_path / "done")
    cases = [
        ("cut.ckpt", [], "expected a checkpoint of plain tensors and containers, found unreadable"),
        ("tv.pth", [], "found a checkpoint without one (not written by sdrl)"),
        ("unsafe.ckpt", [], "expected a checkpoint of plain tensors and containers, found "),
        ("missing.ckpt", [], "found nothing at this path"),
        ("done", [], "found a folder. This is an export folder already"),
        ("unet.ckpt", [], "found a unet model without one"),
        ("rn.ckpt", ["--bands", "foo,bar"], "--bands foo,bar: no known band"),
        (
            "rn.ckpt",
            ["--temporal", "4"],
            "expected a Swin checkpoint (swin_t) for --temporal, found a resnet_tiny",
        ),
        ("rn.ckpt", ["--temporal", "3"], "expected an even number of frames"),
        ("anon.ckpt", ["--bands", "rgb"], "bands p, q, r, s with none known"),
    ]
    for name, extra, message in cases:
        out = tmp_path / "out"
        argv = ["export", "--checkpoint", str(tmp_path / name), "--out", str(out), *extra]
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert message in err, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err
        assert not out.exists(), name
        assert leftovers(tmp_path) == [], name
    # The export folder may not hold (or be) its checkpoint, even with --overwrite.
    argv = ["export", "--checkpoint", str(tmp_path / "rn.ckpt"), "--out", str(tmp_path)]
    assert main([*argv, "--overwrite"]) == 2
    assert "a folder holding the input" in capsys.readouterr().err
    assert (tmp_path / "rn.ckpt").read_bytes() == data
    with pytest.raises(ConfigError):
        export_backbone(tmp_path / "rn.ckpt", tmp_path / "out", temporal=0)
    with pytest.raises(DataError, match="unreadable"):
        export_backbone(tmp_path / "cut.ckpt", tmp_path / "out")


def test_exports_that_do_not_fit_are_refused_on_load(tmp_path: Path):
    fake_checkpoint(tmp_path / "rn.ckpt", "resnet_tiny", RGBN)
    export_backbone(tmp_path / "rn.ckpt", tmp_path / "tiny")
    with pytest.raises(DataError, match="architecture 'resnet_tiny'"):
        init_encoder(build_change_model("siamese", 4, "swin_tiny_test"), tmp_path / "tiny")
    with pytest.raises(DataError, match="Load it into sdrl's backbone"):
        load_torchvision(tmp_path / "tiny")
    fake_checkpoint(tmp_path / "r18.ckpt", "resnet18", RGBN)
    export_backbone(tmp_path / "r18.ckpt", tmp_path / "r18")
    meta = json.loads((tmp_path / "r18" / "meta.json").read_text())
    (tmp_path / "r18" / "meta.json").write_text(json.dumps({**meta, "in_channels": 3}))
    with pytest.raises(
        DataError, match=r"weights.safetensors: expected the tensors of a resnet18 with 3 bands"
    ):
        load_torchvision(tmp_path / "r18")
    (tmp_path / "r18" / "meta.json").unlink()
    with pytest.raises(DataError, match="meta.json: expected the meta.json of an sdrl export"):
        load_torchvision(tmp_path / "r18")
    with pytest.raises(DataError, match="without it"):
        load_torchvision(tmp_path)
    assert build_backbone("resnet18", 4, weights=tmp_path / "r18").name == "resnet18"


def test_export_imports_no_lightning():
    code = (
        "import sys, sdrl.export, sdrl.cli.export, sdrl.bands\n"
        "assert not [m for m in sys.modules if 'lightning' in m], 'lightning imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_own_bands_are_not_remapped(tmp_path: Path):
    fake_checkpoint(tmp_path / "run.ckpt", "resnet_tiny", RGBN)
    result = export_backbone(tmp_path / "run.ckpt", tmp_path / "out", bands="red,green,blue,nir")
    assert result.meta["band_mapping"] is None and result.meta["mean"] is not None
