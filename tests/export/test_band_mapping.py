"""Wavelength-aware first-layer re-mapping, at export (--bands) and at load (--init/--weights)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sdrl.bands import lookup_bands, preset_bands
from sdrl.errors import DataError
from sdrl.export import export_backbone, load_torchvision
from sdrl.models import build_backbone, build_change_model, init_encoder
from sdrl.models.band_mapping import map_bands, remap_input_conv
from sdrl.models.weights import adapt_input_conv
from tests.export.checkpoints import fake_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

RGB = ["red", "green", "blue"]
RGBN = ["red", "green", "blue", "nir"]
S2 = [b.name for b in preset_bands("sentinel2")]


def test_rule_same_nearest_interpolated_mean(caplog):
    source = lookup_bands(RGBN)  # 665, 560, 490, 842
    target = lookup_bands(["B02", "B01", "B05", "x", "2000nm"], [None, None, None, None, 2000.0])
    with caplog.at_level(logging.WARNING, logger="sdrl.models.band_mapping"):
        mapping = map_bands(source, target)
    assert mapping.rules == ("same", "nearest", "interpolated", "mean", "nearest")
    w = mapping.weights
    assert w[0].tolist() == [0, 0, 1, 0]  # B02 is blue
    assert w[1].tolist() == [0, 0, 1, 0]  # 443 nm: below every source band -> blue
    share = (705 - 665) / (842 - 665)
    torch.testing.assert_close(w[2], torch.tensor([1 - share, 0, 0, share], dtype=torch.float64))
    assert w[3].tolist() == [0.25] * 4
    assert w[4].tolist() == [0, 0, 0, 1]  # above every source band -> nir
    assert mapping.factor == 4 / 5
    assert "bands x have no known centre wavelength" in caplog.text


def test_rgb_to_sentinel2_gives_rgb_activations_times_3_over_13():
    kernel = torch.randn(16, 3, 7, 7)
    mapped, mapping = remap_input_conv(kernel, lookup_bands(RGB), preset_bands("sentinel2"))
    assert mapped.shape == (16, 13, 7, 7) and mapping.factor == 3 / 13
    rgb = torch.rand(2, 3, 32, 32)
    image = torch.zeros(2, 13, 32, 32)
    for band, channel in (("B04", 0), ("B03", 1), ("B02", 2)):
        image[:, S2.index(band)] = rgb[:, channel]
    torch.testing.assert_close(F.conv2d(image, mapped), F.conv2d(rgb, kernel) * 3 / 13)


def test_constant_image_response_is_kept_when_bands_are_used_equally():
    kernel = torch.randn(8, 3, 3, 3)
    target = lookup_bands(["red", "green", "blue", "B04", "B03", "B02"])
    mapped, _ = remap_input_conv(kernel, lookup_bands(RGB), target)
    torch.testing.assert_close(mapped.sum(dim=1), kernel.sum(dim=1))
    assert torch.equal(mapped, adapt_input_conv(kernel, 6))  # the RGB->N rule for N = 6


def test_sentinel2_to_landsat_keeps_shared_bands_kernels(tmp_path: Path):
    source = fake_checkpoint(tmp_path / "s2.ckpt", "resnet_tiny", S2)
    result = export_backbone(tmp_path / "s2.ckpt", tmp_path / "landsat", bands="landsat8")
    assert result.meta["bands"] == [f"B{i}" for i in range(1, 8)]
    assert result.meta["mean"] is None and result.meta["band_mapping"]["factor"] == 13 / 7
    exported = build_backbone("resnet_tiny", 7, weights=tmp_path / "landsat").conv1.weight
    shared = ["B01", "B02", "B03", "B04", "B8A", "B11", "B12"]
    for t, name in enumerate(shared):
        expected = source.conv1.weight[:, S2.index(name)] * 13 / 7
        torch.testing.assert_close(exported[:, t], expected, msg=name)
    rules = [row["rule"] for row in result.meta["band_mapping"]["bands"]]
    assert rules == ["same"] * 7


def test_export_rgb_model_to_sentinel2_through_torchvision(tmp_path: Path):
    rgb = fake_checkpoint(tmp_path / "rgb.ckpt", "resnet18", RGB)
    export_backbone(tmp_path / "rgb.ckpt", tmp_path / "s2", bands="sentinel2")
    model = load_torchvision(tmp_path / "s2")
    image = torch.zeros(1, 13, 64, 64)
    pixels = torch.rand(1, 3, 64, 64)
    for band, channel in (("B04", 0), ("B03", 1), ("B02", 2)):
        image[:, S2.index(band)] = pixels[:, channel]
    with torch.no_grad():
        torch.testing.assert_close(model.conv1(image), rgb.conv1(pixels) * 3 / 13)


def test_load_time_remap_by_wavelength(tmp_path: Path):
    source = fake_checkpoint(tmp_path / "rgbn.ckpt", "resnet_tiny", RGBN, seed=3)
    export_backbone(tmp_path / "rgbn.ckpt", tmp_path / "rgbn")
    expected, _ = remap_input_conv(
        source.conv1.weight.detach(), lookup_bands(RGBN), preset_bands("sentinel2")
    )
    for weights in (tmp_path / "rgbn", tmp_path / "rgbn.ckpt"):  # export folder and checkpoint
        model = build_change_model("siamese", 13, "resnet_tiny", decoder_channels=8)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        report = init_encoder(model, weights, bands=S2)
        assert report.adapted == ("conv1.weight",)
        torch.testing.assert_close(model.encoder.conv1.weight.detach(), expected)
        for key, value in model.state_dict().items():
            if not key.startswith("encoder."):
                assert torch.equal(value, before[key]), key
            elif key != "encoder.conv1.weight":
                assert torch.equal(value, source.state_dict()[key[8:]]), key
    # another order of the same bands is re-ordered, not loaded as is
    backbone = build_backbone(
        "resnet_tiny", 4, weights=tmp_path / "rgbn", bands=["nir", "blue", "green", "red"]
    )
    torch.testing.assert_close(backbone.conv1.weight, source.conv1.weight[:, [3, 2, 1, 0]])
    # wavelengths alone are enough on the data's side
    nm = [842.0, 490.0, 560.0, 665.0]
    backbone = build_backbone("resnet_tiny", 4, weights=tmp_path / "rgbn", wavelengths_nm=nm)
    torch.testing.assert_close(backbone.conv1.weight, source.conv1.weight[:, [3, 2, 1, 0]])


def test_load_time_falls_back_without_wavelengths(tmp_path: Path):
    source = fake_checkpoint(tmp_path / "rgb.ckpt", "resnet_tiny", ["p1", "p2", "p3"])
    export_backbone(tmp_path / "rgb.ckpt", tmp_path / "unknown")
    backbone = build_backbone("resnet_tiny", 13, weights=tmp_path / "unknown", bands=S2)
    expected = adapt_input_conv(source.conv1.weight.detach(), 13)  # the RGB->N rule
    torch.testing.assert_close(backbone.conv1.weight, expected)
    same = build_backbone("resnet_tiny", 3, weights=tmp_path / "unknown", bands=["p1", "p2", "p3"])
    assert torch.equal(same.conv1.weight, source.conv1.weight)
    fake_checkpoint(tmp_path / "rgbn.ckpt", "resnet_tiny", RGBN)
    export_backbone(tmp_path / "rgbn.ckpt", tmp_path / "rgbn")
    with pytest.raises(DataError, match=r"conv1\.weight of shape \(8, 13, 7, 7\)"):
        build_backbone("resnet_tiny", 13, weights=tmp_path / "rgbn")  # data's bands not given
    with pytest.raises(DataError, match="Only 3-band"):
        build_backbone("resnet_tiny", 2, weights=tmp_path / "rgbn", bands=["p", "q"])


def test_export_to_enmap_interpolates_between_sentinel2_bands(tmp_path: Path):
    fake_checkpoint(tmp_path / "s2.ckpt", "resnet_tiny", S2)
    result = export_backbone(tmp_path / "s2.ckpt", tmp_path / "enmap", bands="enmap")
    assert result.meta["in_channels"] == 218 and result.meta["bands"][:2] == ["B1", "B2"]
    rows = {row["band"]: row for row in result.meta["band_mapping"]["bands"]}
    assert rows["B1"] == {"band": "B1", "rule": "nearest", "from": {"B01": 1.0}}  # 418 nm
    assert rows["B30"]["rule"] == "interpolated" and set(rows["B30"]["from"]) == {"B03", "B04"}
    assert (
        build_backbone("resnet_tiny", 218, weights=tmp_path / "enmap").conv1.weight.shape[1] == 218
    )
