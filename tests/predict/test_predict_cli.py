"""`sdrl predict`: a finetuned checkpoint on raster pairs, georeferencing kept, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from sdrl.data.io import read_raster, write_raster
from sdrl.predict import NODATA
from tests.runs import predict, synth_data, tiny_finetune

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synth_data(tmp_path_factory, "cd", "change", num=4, size=96, bands=4, seed=2)


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ft") / "run"
    return tiny_finetune(data, run, "--max-steps", "1", "--crop-size", "64", "--val-split", "none")


def test_predict_keeps_crs_and_transform(data, checkpoint, tmp_path, capsys):
    before, after = data / "A" / "000000.tif", data / "B" / "000000.tif"
    out = tmp_path / "maps" / "change.tif"
    assert predict(checkpoint, before, after, out, "--tile", "64", "--overlap", "16") == 0
    assert "wrote" in capsys.readouterr().out
    with rasterio.open(out) as dst, rasterio.open(before) as src:
        assert dst.crs == src.crs and dst.transform == src.transform
        assert (dst.height, dst.width) == (src.height, src.width) == (96, 96)
        assert dst.descriptions == ("change_probability", "change") and dst.nodata == NODATA
        prob, binary = dst.read()
    assert ((prob >= 0) & (prob <= 1)).all()
    np.testing.assert_array_equal(binary, (prob > 0.5).astype(np.float32))
    binary_only = tmp_path / "b.tif"
    argv = [
        "--tile",
        "32",
        "--overlap",
        "8",
        "--outputs",
        "binary",
        "--threshold",
        "0.9",
        "--stitch",
        "centre",
        "--device",
        "cpu",
        "--batch-size",
        "3",
    ]
    assert predict(checkpoint, before, after, binary_only, *argv) == 0
    with rasterio.open(binary_only) as dst:
        assert dst.count == 1 and dst.dtypes[0] == "uint8" and dst.crs is not None
    png = tmp_path / "c.png"
    assert predict(checkpoint, before, after, png, "--tile", "64", "--outputs", "binary") == 0
    assert rasterio.open(png).read().shape == (1, 96, 96)


def test_bad_input_leaves_no_output(data, checkpoint, tmp_path, capsys):
    before, after = data / "A" / "000001.tif", data / "B" / "000001.tif"
    out = tmp_path / "change.tif"

    def error(*argv: str, ckpt: Path = checkpoint, a: Path = before, b: Path = after) -> str:
        assert predict(ckpt, a, b, out, *argv) == 2
        assert not out.exists() and not list(tmp_path.glob(".change*"))
        return capsys.readouterr().err

    pre = tmp_path / "pre.ckpt"
    torch.save({"state_dict": {}, "sdrl": {"kind": "pretrain", "method": "byol", "data": "d"}}, pre)
    assert "finetune it first" in error(ckpt=pre)
    legacy = tmp_path / "legacy.ckpt"  # a pretraining checkpoint from before "kind"
    torch.save({"state_dict": {}, "sdrl": {"method": "sdrl", "data": "d"}}, legacy)
    assert "pretraining checkpoint" in error(ckpt=legacy)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    assert "change-detection checkpoint" in error(ckpt=foreign)
    raster = read_raster(before)
    three = tmp_path / "three.tif"
    write_raster(three, raster.data[:3], crs=raster.crs, transform=raster.transform)
    assert "4 bands" in error(a=three, b=three)
    small = tmp_path / "small.tif"
    write_raster(small, raster.data[:, :64, :80], crs=raster.crs, transform=raster.transform)
    assert "small.tif" in error(b=small)  # another grid and no --align
    png_a, png_b = tmp_path / "a.png", tmp_path / "b.png"  # 4-band plain images, two sizes
    write_raster(png_a, (raster.data[:, :64, :64] // 50).astype(np.uint8))
    write_raster(png_b, (raster.data[:, :64, :96] // 50).astype(np.uint8))
    assert "cannot be aligned" in error("--align", a=png_a, b=png_b)
    assert "multiple of 32" in error("--tile", "48")
    assert "--outputs" in error("--outputs", "probability,maps")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert predict(checkpoint, before, after, blocker / "change.tif") == 2
    assert "blocker" in capsys.readouterr().err
