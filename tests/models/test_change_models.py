"""Change models (siamese ChangeNet, early-fusion U-Net) and encoder initialisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torch import Tensor

from sdrl.errors import ConfigError, DataError
from sdrl.models import (
    ChangeNet,
    EarlyFusionUNet,
    adapt_input_conv,
    build_backbone,
    build_change_model,
    init_encoder,
)
from sdrl.models.change import ChangeModel

SIZE = 64
TINY = ["resnet_tiny", "swin_tiny_test"]


def pair(bands: int, batch: int = 2, size: int = SIZE, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, bands, size, size)
    return torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)


def siamese(bands: int = 4, **options) -> ChangeNet:
    torch.manual_seed(0)
    options.setdefault("backbone", "resnet_tiny")
    options.setdefault("decoder_channels", 16)
    return ChangeNet(bands, **options)


def check_grads(model: ChangeModel, a: Tensor, b: Tensor) -> None:
    """Every trainable parameter gets a finite gradient; frozen ones get none."""
    model.zero_grad()
    model(a, b).square().mean().backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
        else:
            assert param.grad is None, name


# --- siamese model ------------------------------------------------------------------------


@pytest.mark.parametrize("fusion", ["absdiff", "concat"])
@pytest.mark.parametrize("bands", [3, 4, 13])
@pytest.mark.parametrize("backbone", TINY)
def test_siamese_shapes_and_grads(backbone: str, bands: int, fusion: str) -> None:
    model = siamese(bands, backbone=backbone, fusion=fusion)
    a, b = pair(bands)
    logits = model(a, b)
    assert logits.shape == (2, 2, SIZE, SIZE)
    assert torch.isfinite(logits).all()
    check_grads(model, a, b)


@pytest.mark.parametrize("out_channels", [1, 2, 3])
def test_out_channels_and_sizes(out_channels: int) -> None:
    model = siamese(3, out_channels=out_channels)
    a, b = pair(3, batch=1, size=96)
    assert model(a, b).shape == (1, out_channels, 96, 96)
    a, b = torch.randn(1, 3, 32, 64), torch.randn(1, 3, 32, 64)
    assert model(a, b).shape == (1, out_channels, 32, 64)


@pytest.mark.parametrize("train", [False, True])
def test_absdiff_is_symmetric(train: bool) -> None:
    model = siamese(4).train(train)
    a, b = pair(4)
    with torch.no_grad():
        ab, ba = model(a, b), model(b, a)
    torch.testing.assert_close(ab, ba, rtol=1e-5, atol=1e-5)
    concat = siamese(4, fusion="concat").eval()
    with torch.no_grad():
        assert not torch.allclose(concat(a, b), concat(b, a))


def test_freeze_encoder() -> None:
    model = siamese(4).train()
    model.freeze_encoder(True)
    assert model.encoder_frozen and not model.encoder.training and model.decoder.training
    model.train()  # Lightning calls this at every epoch: the encoder must stay in eval mode
    assert not model.encoder.training
    stats = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    a, b = pair(4)
    check_grads(model, a, b)
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    for key, value in model.encoder.state_dict().items():  # BatchNorm statistics untouched
        assert torch.equal(value, stats[key]), key
    model.freeze_encoder(False)
    assert model.encoder.training
    check_grads(model, a, b)
    assert all(p.grad is not None for p in model.encoder.parameters())


@pytest.mark.parametrize("fusion", ["absdiff", "concat"])
def test_linear_probe(fusion: str) -> None:
    model = siamese(4, fusion=fusion, head="linear")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("decoder.convs.") for n in trainable)
    assert not list(model.fusions.parameters())
    a, b = pair(4)
    check_grads(model.train(), a, b)
    with pytest.raises(ValueError, match="linear probe"):
        model.freeze_encoder(False)
    # the head is one 1x1 conv over the upsampled, concatenated fused levels (the hypercolumn)
    model.eval()
    with torch.no_grad():
        levels = model.encoder(torch.cat([a, b]))
        fused = [f(*level.chunk(2)) for f, level in zip(model.fusions, levels, strict=True)]
        head = model.decoder
        column = torch.cat(
            [
                norm(F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False))
                for norm, x in zip(head.norms, fused, strict=True)
            ],
            dim=1,
        )
        weight = torch.cat([conv.weight for conv in head.convs], dim=1)
        expected = F.conv2d(column, weight, head.convs[0].bias)
        torch.testing.assert_close(model(a, b), expected, rtol=1e-4, atol=1e-5)


def test_siamese_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fusion"):
        siamese(fusion="sum")
    with pytest.raises(ValueError, match="head"):
        siamese(head="mlp")
    with pytest.raises(ValueError, match="out_channels"):
        siamese(out_channels=0)
    with pytest.raises(ValueError, match="decoder_channels"):
        siamese(decoder_channels=0)
    with pytest.raises(ValueError, match="input bands"):
        ChangeNet(4, backbone=build_backbone("resnet_tiny", 3))
    model = siamese(4)
    with pytest.raises(ValueError, match="same shape"):
        model(torch.randn(1, 4, 64, 64), torch.randn(1, 4, 32, 64))
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 4, 48, 48), torch.randn(1, 4, 48, 48))


def test_siamese_backbone_options_and_instance() -> None:
    model = siamese(5, backbone_options={"widths": (4, 8, 8, 16)})
    assert model.encoder.channels == [4, 8, 8, 16]
    assert model(*pair(5, batch=1)).shape == (1, 2, SIZE, SIZE)
    backbone = build_backbone("resnet_tiny", 2)
    assert ChangeNet(2, backbone=backbone).encoder is backbone


# --- early-fusion U-Net -------------------------------------------------------------------


@pytest.mark.parametrize("bands", [3, 4, 13])
def test_unet_shapes_and_grads(bands: int) -> None:
    torch.manual_seed(0)
    model = EarlyFusionUNet(bands, base_width=4, depth=3)
    a, b = pair(bands)
    assert model(a, b).shape == (2, 2, SIZE, SIZE)
    check_grads(model, a, b)
    model.freeze_encoder(True)
    check_grads(model, a, b)
    assert all(p.grad is None for p in model.encoder.parameters())


def test_unet_options() -> None:
    model = EarlyFusionUNet(2, out_channels=1, base_width=2, depth=5)
    assert model(*pair(2, batch=1)).shape == (1, 1, SIZE, SIZE)
    assert len(model.decoder) == 5
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 2, 48, 48), torch.randn(1, 2, 48, 48))
    with pytest.raises(ValueError, match="bands per date"):
        model(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64))
    for bad in ({"depth": 0}, {"depth": 7}, {"base_width": 0}, {"out_channels": 0}):
        with pytest.raises(ValueError):
            EarlyFusionUNet(2, **bad)


def test_build_change_model() -> None:
    model = build_change_model("siamese", 4, "resnet_tiny", fusion="concat", decoder_channels=8)
    assert isinstance(model, ChangeNet) and model.fusion == "concat"
    assert build_change_model("siamese", 3).encoder.name == "resnet18"
    unet = build_change_model("unet", 4, base_width=4, depth=2)
    assert isinstance(unet, EarlyFusionUNet)
    with pytest.raises(ValueError, match="unknown change model"):
        build_change_model("fcsiam", 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no option depth"):
        build_change_model("siamese", 4, "resnet_tiny", depth=3)
    with pytest.raises(ValueError, match="no backbone"):
        build_change_model("unet", 4, "resnet18")


# --- initialisation -----------------------------------------------------------------------


def randomised(state: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """A copy of ``state`` with every value changed (positive shifts keep variances valid)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        k: v + torch.rand(v.shape, generator=gen) if v.is_floating_point() else v + 7
        for k, v in state.items()
    }


def check_only_encoder(model: ChangeModel, before: dict[str, Tensor], expected: dict) -> None:
    """Encoder tensors equal ``expected`` (and differ from before); nothing else changed."""
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in after.items():
        if key.startswith("encoder."):
            assert torch.equal(value, expected[key.removeprefix("encoder.")]), key
            assert not torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, before[key]), key


class Opaque:
    """A Python object that ``torch.load(weights_only=True)`` refuses."""


def snapshot(model: ChangeModel) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("bands", [3, 4])
def test_init_from_torchvision_state_dict(tmp_path: Path, bands: int) -> None:
    source = randomised(torchvision.models.resnet18().state_dict(), seed=1)
    path = tmp_path / "resnet18.pth"
    torch.save(source, path)
    model = siamese(bands, backbone="resnet18", decoder_channels=8)
    before = snapshot(model)
    report = init_encoder(model, path)
    expected = dict(source)
    expected["conv1.weight"] = adapt_input_conv(source["conv1.weight"], bands)
    check_only_encoder(model, before, expected)
    assert report.prefix == ""
    assert report.adapted == (() if bands == 3 else ("conv1.weight",))
    assert set(report.loaded) == set(model.encoder.state_dict())
    assert set(report.ignored) == {"fc.weight", "fc.bias"}


def write_export(folder: Path, bands: int, seed: int) -> dict[str, Tensor]:
    state = randomised(build_backbone("resnet_tiny", bands).state_dict(), seed)
    folder.mkdir()
    save_file(state, str(folder / "weights.safetensors"))
    meta = {"architecture": "resnet_tiny", "in_channels": bands, "bands": ["b"] * bands}
    (folder / "meta.json").write_text(json.dumps(meta))
    return state


@pytest.mark.parametrize(("file_bands", "model_bands"), [(4, 4), (3, 13)])
def test_init_from_export_folder(tmp_path: Path, file_bands: int, model_bands: int) -> None:
    state = write_export(tmp_path / "export", file_bands, seed=2)
    model = siamese(model_bands, fusion="concat")
    before = snapshot(model)
    report = init_encoder(model, tmp_path / "export")
    expected = dict(state)
    if file_bands != model_bands:
        expected["conv1.weight"] = adapt_input_conv(state["conv1.weight"], model_bands)
    check_only_encoder(model, before, expected)
    assert report.adapted == (() if file_bands == model_bands else ("conv1.weight",))
    with pytest.raises(DataError, match="architecture 'resnet_tiny'"):
        init_encoder(siamese(4, backbone="swin_tiny_test"), tmp_path / "export")


def test_init_from_lightning_checkpoint(tmp_path: Path) -> None:
    online = randomised(build_backbone("resnet_tiny", 4).state_dict(), seed=3)
    target = randomised(online, seed=4)
    state = {f"method.backbone.{k}": v for k, v in online.items()}
    state |= {f"method.target_backbone.{k}": v for k, v in target.items()}
    state["method.neck.fpn.inner_blocks.0.0.weight"] = torch.zeros(8, 8, 1, 1)
    checkpoint = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": state,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1}]}],
        "sdrl": {"backbone": "resnet_tiny", "in_channels": 4, "rng": {"torch": torch.zeros(3)}},
    }
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint, path)
    model = siamese(4)
    before = snapshot(model)
    report = init_encoder(model, path)
    check_only_encoder(model, before, online)  # the online backbone, not the momentum copy
    assert report.prefix == "method.backbone."
    assert "method.neck.fpn.inner_blocks.0.0.weight" in report.ignored


def test_init_errors_and_random(tmp_path: Path) -> None:
    model = siamese(4)
    before = snapshot(model)
    report = init_encoder(model, "random")
    assert report.loaded == () and report.source == "random"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    write_export(tmp_path / "export4", 4, seed=5)
    with pytest.raises(DataError, match="bands"):  # only 3-band weights are adapted
        init_encoder(siamese(13), tmp_path / "export4")
    with pytest.raises(DataError, match="nothing at this path"):
        init_encoder(model, tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="random"):
        init_encoder(EarlyFusionUNet(4, base_width=2, depth=2), tmp_path / "export4")
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Opaque()}, tmp_path / "unsafe.ckpt")
    with pytest.raises(DataError, match="refused"):
        init_encoder(model, tmp_path / "unsafe.ckpt")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
