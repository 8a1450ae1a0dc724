"""Backbones, FPN neck and weight loading (sdrl.models)."""

from __future__ import annotations

import json
import math
import pathlib
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from sdrl.errors import DataError
from sdrl.models import (
    FPN,
    STRIDES,
    Backbone,
    adapt_input_conv,
    backbone_names,
    build_backbone,
    load_state_dict_into,
    read_weights,
)

TINY = ["resnet_tiny", "swin_tiny_test"]
REAL = ["resnet18", "resnet50", "swin_t"]
BANDS = [1, 3, 4, 13]
TORCHVISION = {
    "resnet18": torchvision.models.resnet18,
    "resnet50": torchvision.models.resnet50,
    "swin_t": torchvision.models.swin_t,
}
HEAD = {"resnet18": "fc", "resnet50": "fc", "swin_t": "head"}


@pytest.fixture(scope="module")
def real3() -> dict[str, Backbone]:
    """The real architectures with 3 bands, built once for the module."""
    torch.manual_seed(0)
    return {name: build_backbone(name, 3).eval() for name in REAL}


def check_levels(backbone: Backbone, x: torch.Tensor) -> None:
    levels = backbone(x)
    assert backbone.strides == list(STRIDES) == [4, 8, 16, 32]
    assert len(levels) == 4
    for level, dim, stride in zip(levels, backbone.channels, backbone.strides, strict=True):
        assert level.shape == (x.shape[0], dim, x.shape[2] // stride, x.shape[3] // stride)
        assert level.is_contiguous()
        assert torch.isfinite(level).all()


# --- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("bands", [*BANDS, 218])
@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("size", [64, 96])
def test_tiny_levels(name: str, bands: int, size: int) -> None:
    backbone = build_backbone(name, bands)
    assert backbone.name == name
    assert backbone.in_channels == bands
    check_levels(backbone, torch.randn(2, bands, size, size))


def test_registry_names() -> None:
    assert backbone_names() == ["resnet18", "resnet50", "swin_t", "resnet_tiny", "swin_tiny_test"]


@pytest.mark.parametrize("name", REAL)
def test_real_levels_3_bands(real3: dict[str, Backbone], name: str) -> None:
    expected = {
        "resnet18": [64, 128, 256, 512],
        "resnet50": [256, 512, 1024, 2048],
        "swin_t": [96, 192, 384, 768],
    }
    assert real3[name].channels == expected[name]
    # swin_t at 96 px: token grids 24, 12, 6, 3 are not multiples of its 7-token window
    size = 96 if name == "swin_t" else 64
    with torch.no_grad():
        check_levels(real3[name], torch.randn(1, 3, size, size))


@pytest.mark.slow
@pytest.mark.parametrize("bands", [1, 4, 13])
@pytest.mark.parametrize("name", REAL)
def test_real_levels_other_bands(name: str, bands: int) -> None:
    backbone = build_backbone(name, bands).eval()
    first = backbone.state_dict()[backbone.first_conv]
    assert first.shape[1] == bands
    with torch.no_grad():
        check_levels(backbone, torch.randn(1, bands, 32, 32))


@pytest.mark.parametrize("name", [*TINY, "resnet18"])
def test_every_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    backbone = build_backbone(name, 4)
    levels = backbone(torch.randn(2, 4, 64, 64))
    sum(level.sum() for level in levels).backward()
    for key, param in backbone.named_parameters():
        assert param.grad is not None, key
        assert torch.isfinite(param.grad).all(), key
        assert param.grad.abs().sum() > 0, key


def test_bad_input_is_refused() -> None:
    backbone = build_backbone("resnet_tiny", 4)
    with pytest.raises(ValueError, match="4 input bands, got 3"):
        backbone(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiples of 32"):
        backbone(torch.randn(1, 4, 64, 48))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        backbone(torch.randn(4, 64, 64))


def test_bad_names_and_options() -> None:
    with pytest.raises(ValueError, match="resnet18, resnet50, swin_t"):
        build_backbone("vit_b", 3)
    with pytest.raises(ValueError, match="no option widths; its options: zero_init_residual"):
        build_backbone("resnet18", 3, widths=(8, 16, 32, 64))
    with pytest.raises(ValueError, match="in_channels"):
        build_backbone("resnet_tiny", 0)
    with pytest.raises(ValueError, match="widths"):
        build_backbone("resnet_tiny", 3, widths=(8, 16, 32))
    with pytest.raises(ValueError, match="heads"):
        build_backbone("swin_tiny_test", 3, num_heads=(5, 1, 2, 2))
    with pytest.raises(ValueError, match="block"):
        build_backbone("resnet_tiny", 3, block="wide")


def test_tiny_options() -> None:
    backbone = build_backbone("resnet_tiny", 2, block="bottleneck", widths=(4, 8, 8, 16))
    assert backbone.channels == [16, 32, 32, 64]
    check_levels(backbone, torch.randn(2, 2, 32, 32))
    swin = build_backbone("swin_tiny_test", 2, embed_dim=8, num_heads=(1, 2, 2, 4), window_size=2)
    assert swin.channels == [8, 16, 32, 64]
    check_levels(swin, torch.randn(1, 2, 32, 32))


def test_nothing_is_downloaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    path = tmp_path / "w.pth"
    torch.save(build_backbone("resnet_tiny", 3).state_dict(), path)
    build_backbone("resnet_tiny", 5, weights=path)
    build_backbone("resnet18", 3)


# --- torchvision compatibility -----------------------------------------------------------


@pytest.mark.parametrize("name", REAL)
def test_state_dict_loads_into_torchvision(real3: dict[str, Backbone], name: str) -> None:
    state = real3[name].torchvision_state_dict()
    model = TORCHVISION[name]()
    result = model.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == [f"{HEAD[name]}.bias", f"{HEAD[name]}.weight"]
    assert result.unexpected_keys == []
    setattr(model, HEAD[name], nn.Identity())
    model.load_state_dict(state, strict=True)

    # same weights, same features: C5 equals torchvision's last stage
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        if isinstance(model, torchvision.models.ResNet):
            m = model
            c5 = m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))
        else:
            c5 = model.norm(model.features(x)).permute(0, 3, 1, 2)
        assert torch.equal(real3[name](x)[3], c5)


def test_resnet18_reproduces_torchvision(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().eval()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    backbone = build_backbone("resnet18", 3, weights=path).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        r = reference
        c2 = r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x)))))
        c5 = r.layer4(r.layer3(r.layer2(c2)))
        levels = backbone(x)
    assert torch.equal(levels[0], c2)
    assert torch.equal(levels[3], c5)


# --- first-layer adaptation ---------------------------------------------------------------


def timm_adapt_input_conv(in_chans: int, conv_weight: torch.Tensor) -> torch.Tensor:
    """timm.models._manipulate.adapt_input_conv for 3-channel weights, ported as the reference."""
    if in_chans == 1:
        return conv_weight.sum(dim=1, keepdim=True)
    repeat = math.ceil(in_chans / 3)
    weight = conv_weight.repeat(1, repeat, 1, 1)[:, :in_chans, :, :]
    return weight * (3 / float(in_chans))


@pytest.mark.parametrize("bands", [1, 3, 6, 9])
def test_adaptation_equals_timm_where_it_preserves_the_response(bands: int) -> None:
    weight = torch.randn(8, 3, 7, 7)
    expected = timm_adapt_input_conv(bands, weight)
    torch.testing.assert_close(adapt_input_conv(weight, bands), expected)


@pytest.mark.parametrize("bands", [1, 2, 4, 5, 13, 218])
def test_adaptation_preserves_the_constant_response(bands: int) -> None:
    weight = torch.randn(8, 3, 7, 7, dtype=torch.float64)
    adapted = adapt_input_conv(weight, bands)
    assert adapted.shape == (8, bands, 7, 7)
    assert adapted.dtype == torch.float64
    torch.testing.assert_close(adapted.sum(dim=1), weight.sum(dim=1))


def test_adaptation_refuses_non_rgb() -> None:
    with pytest.raises(ValueError, match="3-band"):
        adapt_input_conv(torch.randn(8, 4, 7, 7), 13)


def test_resnet18_13_bands_from_rgb_file(tmp_path: Path) -> None:
    torch.manual_seed(2)
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    rgb = build_backbone("resnet18", 3, weights=path).eval()
    multi = build_backbone("resnet18", 13, weights=path).eval()

    kernel = reference.conv1.weight.detach()
    copies = {0: 5, 1: 4, 2: 4}  # bands 0,3,6,9,12 take R; 1,4,7,10 G; 2,5,8,11 B
    for band in range(13):
        expected = kernel[:, band % 3] / copies[band % 3]
        torch.testing.assert_close(multi.conv1.weight[:, band].detach(), expected)
    for key, value in rgb.state_dict().items():
        if key != "conv1.weight":
            assert torch.equal(multi.state_dict()[key], value), key

    with torch.no_grad():
        c5_rgb = rgb(torch.full((1, 3, 64, 64), 0.7))[3]
        c5_multi = multi(torch.full((1, 13, 64, 64), 0.7))[3]
    torch.testing.assert_close(c5_multi, c5_rgb, rtol=1e-4, atol=1e-4)


def test_swin_export_folder_adapts_patch_embedding(tmp_path: Path) -> None:
    source = build_backbone("swin_tiny_test", 3)
    folder = tmp_path / "export"
    folder.mkdir()
    save_file(source.torchvision_state_dict(), folder / "weights.safetensors")
    (folder / "meta.json").write_text(json.dumps({"architecture": "swin_tiny_test"}))
    target = build_backbone("swin_tiny_test", 4, weights=folder)
    key = "features.0.0.weight"
    expected = adapt_input_conv(source.state_dict()[key], 4)
    torch.testing.assert_close(target.state_dict()[key], expected)
    for name, value in source.state_dict().items():
        if name != key:
            assert torch.equal(target.state_dict()[name], value), name


def test_same_band_count_loads_unchanged(tmp_path: Path) -> None:
    source = build_backbone("resnet_tiny", 13)
    path = tmp_path / "tiny13.safetensors"
    save_file(source.torchvision_state_dict(), path)
    target = build_backbone("resnet_tiny", 13)
    report = load_state_dict_into(target, read_weights(path).state_dict, source=path)
    assert report.adapted == ()
    assert report.prefix == ""
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_other_band_counts_are_not_adapted(tmp_path: Path) -> None:
    path = tmp_path / "tiny4.pth"
    torch.save(build_backbone("resnet_tiny", 4).state_dict(), path)
    with pytest.raises(DataError, match=r"conv1\.weight.*13 bands.*\(8, 4, 7, 7\)") as err:
        build_backbone("resnet_tiny", 13, weights=path)
    assert err.value.path == path
    rgb = tmp_path / "tiny3.pth"
    torch.save(build_backbone("resnet_tiny", 3).state_dict(), rgb)
    with pytest.raises(DataError, match="adapt_first_layer=True"):
        build_backbone("resnet_tiny", 13, weights=rgb, adapt_first_layer=False)


# --- weight files ---------------------------------------------------------------------------


def test_wrong_shape_names_the_key(tmp_path: Path) -> None:
    state = build_backbone("resnet_tiny", 3).state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(16, 8, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(
        DataError, match=r"layer2\.0\.conv1\.weight of shape \(16, 8, 3, 3\)"
    ) as err:
        build_backbone("resnet_tiny", 3, weights=path)
    assert "(16, 8, 5, 5)" in str(err.value)
    assert err.value.path == path
    # a first layer of another width is a shape error, not a band adaptation
    wide = tmp_path / "wide.pth"
    torch.save(build_backbone("swin_tiny_test", 3, embed_dim=16).state_dict(), wide)
    with pytest.raises(DataError, match=r"features\.0\.0\.weight of shape \(24, 3, 4, 4\)"):
        build_backbone("swin_tiny_test", 3, weights=wide)


def test_other_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "swin.pth"
    torch.save(build_backbone("swin_tiny_test", 3).state_dict(), path)
    with pytest.raises(DataError, match="missing"):
        build_backbone("resnet_tiny", 3, weights=path)
    folder = tmp_path / "export"
    folder.mkdir()
    save_file(build_backbone("resnet_tiny", 3).state_dict(), folder / "weights.safetensors")
    (folder / "meta.json").write_text(json.dumps({"architecture": "resnet18"}))
    with pytest.raises(DataError, match="'resnet18'"):
        build_backbone("resnet_tiny", 3, weights=folder)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([1, 2, 3], "found a list"),
        (torch.zeros(3), "found a Tensor"),
        ({"epoch": 3, "lr": 0.1}, "without tensors"),
    ],
)
def test_not_a_state_dict(tmp_path: Path, content: object, match: str) -> None:
    path = tmp_path / "file.pt"
    torch.save(content, path)
    with pytest.raises(DataError, match=match):
        build_backbone("resnet_tiny", 3, weights=path)


def test_unreadable_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("hello world")
    with pytest.raises(DataError, match="unreadable"):
        read_weights(text)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 16)
    with pytest.raises(DataError, match="safetensors"):
        read_weights(broken)
    with pytest.raises(DataError, match="nothing at this path"):
        read_weights(tmp_path / "absent.pth")
    with pytest.raises(DataError, match="weights.safetensors"):
        read_weights(tmp_path)


class Payload:
    """Unpickling this would create a file: it must never be unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (self.marker,))


class Custom:
    pass


def test_unsafe_pickles_are_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": Payload(marker)}, path)
    with pytest.raises(DataError, match="refused because loading it could run code"):
        build_backbone("resnet_tiny", 3, weights=path)
    assert not marker.exists()
    custom = tmp_path / "custom.pth"
    torch.save({"state_dict": build_backbone("resnet_tiny", 3).state_dict(), "c": Custom()}, custom)
    with pytest.raises(DataError, match="Custom"):
        read_weights(custom)


def test_lightning_checkpoint_prefix_is_detected(tmp_path: Path) -> None:
    online = build_backbone("resnet_tiny", 3)
    momentum = build_backbone("resnet_tiny", 3)
    state = {f"backbone.body.{k}": v for k, v in online.state_dict().items()}
    state |= {f"momentum_backbone.body.{k}": v for k, v in momentum.state_dict().items()}
    state["projection_head.0.weight"] = torch.zeros(4, 64)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "epoch": 3, "global_step": 12}, path)
    target = build_backbone("resnet_tiny", 3, weights=path)
    for key, value in online.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    report = load_state_dict_into(build_backbone("resnet_tiny", 3), state)
    assert report.prefix == "backbone.body."
    assert "projection_head.0.weight" in report.ignored
    assert len(report.loaded) == len(online.state_dict())


def test_ambiguous_prefix_needs_strip_prefix(tmp_path: Path) -> None:
    student = build_backbone("resnet_tiny", 3).state_dict()
    teacher = build_backbone("resnet_tiny", 3).state_dict()
    state = {f"student.{k}": v for k, v in student.items()}
    state |= {f"teacher.{k}": v for k, v in teacher.items()}
    path = tmp_path / "pair.pth"
    torch.save(state, path)
    with pytest.raises(DataError, match="strip_prefix"):
        build_backbone("resnet_tiny", 3, weights=path)
    target = build_backbone("resnet_tiny", 3, weights=path, strip_prefix="teacher.")
    assert torch.equal(
        target.state_dict()["layer4.0.conv2.weight"], teacher["layer4.0.conv2.weight"]
    )


def test_old_checkpoint_without_batchnorm_counters(tmp_path: Path) -> None:
    state = {
        k: v
        for k, v in build_backbone("resnet_tiny", 3).state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "old.pth"
    torch.save(state, path)
    report = load_state_dict_into(build_backbone("resnet_tiny", 3), read_weights(path).state_dict)
    assert len(report.loaded) == len(state)


# --- FPN ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TINY)
def test_fpn_levels(name: str) -> None:
    backbone = build_backbone(name, 4)
    neck = FPN(backbone.channels, out_channels=32)
    x = torch.randn(2, 4, 64, 64)
    pyramid = neck(backbone(x))
    assert neck.channels == [32] * 4
    assert [p.shape for p in pyramid] == [(2, 32, 64 // s, 64 // s) for s in STRIDES]
    sum(p.sum() for p in pyramid).backward()
    assert all(p.grad is not None for p in neck.parameters())


def test_fpn_refuses_other_channels() -> None:
    neck = FPN([8, 16, 32, 64], out_channels=16)
    with pytest.raises(ValueError, match="level channels"):
        neck([torch.randn(1, 9, 16, 16)] * 4)
    with pytest.raises(ValueError, match="out_channels"):
        FPN([8, 16], out_channels=0)
