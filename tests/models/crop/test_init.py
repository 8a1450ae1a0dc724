"""Crop encoders initialised from real `sdrl export` folders (made from fake checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sdrl.bands import preset_bands
from sdrl.errors import ConfigError, DataError
from sdrl.export import export_backbone
from sdrl.models.band_mapping import remap_input_conv
from sdrl.models.crop import (
    CropModelConfig,
    build_crop_model,
    init_spectral_from_export,
    init_temporal_from_export,
)
from tests.export.checkpoints import fake_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

S2 = [b.name for b in preset_bands("sentinel2-10")]
TINY_SWIN: dict[str, int] = {}  # swin_tiny_test as it is: the shape of the tiny preset


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed_only(before, after, names: list[str]) -> None:
    unchanged = [k for k in before if k not in names]
    assert all(torch.equal(before[k], after[k]) for k in unchanged)


def test_temporal_export_sets_exactly_the_temporal_encoder(tmp_path: Path):
    fake_checkpoint(tmp_path / "swin.ckpt", "swin_tiny_test", S2, seed=3, **TINY_SWIN)
    export = export_backbone(tmp_path / "swin.ckpt", tmp_path / "video", temporal=12)
    torch.manual_seed(0)
    model = build_crop_model(CropModelConfig((3, 4), size="tiny"))
    before = snapshot(model)
    names = init_temporal_from_export(model, export.out)
    after = snapshot(model)
    assert sorted(names) == sorted(f"temporal.{k}" for k in model.temporal.state_dict())
    changed_only(before, after, names)
    exported = load_file(export.weights)
    assert set(exported) == {name.removeprefix("temporal.") for name in names}
    for name in names:
        assert torch.equal(after[name], exported[name.removeprefix("temporal.")])
    assert not torch.equal(
        before["temporal.patch_embed.proj.weight"], after["temporal.patch_embed.proj.weight"]
    )
    logits = model(torch.randn(1, 12, 10, 48, 48), torch.randn(1, 218, 16, 16))
    assert logits[1].shape == (1, 4, 48, 48)


def test_a_swin_t_export_initialises_the_default_size(tmp_path: Path):
    fake_checkpoint(tmp_path / "swin.ckpt", "swin_t", S2, seed=4)
    export = export_backbone(tmp_path / "swin.ckpt", tmp_path / "video", temporal=12)
    assert export.meta["architecture"] == "swin3d_t"
    model = build_crop_model(CropModelConfig((3, 4), enmap_bands=0))
    names = init_temporal_from_export(model, export.out)
    assert len(names) == len(load_file(export.weights))


@pytest.mark.parametrize(
    ("backbone", "bands", "options", "temporal", "message"),
    [
        (
            "resnet_tiny",
            S2,
            {},
            None,
            "resnet_tiny export cannot initialise the temporal Swin; "
            "export a swin_t checkpoint with --temporal 12",
        ),
        (
            "swin_tiny_test",
            S2,
            TINY_SWIN,
            None,
            "a 2D swin_tiny_test export. Export it again with --temporal 12",
        ),
        (
            "swin_tiny_test",
            ["red", "green", "blue"],
            TINY_SWIN,
            4,
            "export for 3 bands .*--bands sentinel2-10",
        ),
        (
            "swin_tiny_test",
            S2,
            {"embed_dim": 12},
            12,
            "embed 12, .*Export a Swin of the encoder's size",
        ),
        (
            "swin_tiny_test",
            S2,
            {**TINY_SWIN, "window_size": 7},
            12,
            r"window \[8, 7, 7\]. Relative-position tables .* 4x4 window",
        ),
    ],
)
def test_an_export_that_does_not_fit_is_refused_in_one_line(
    tmp_path: Path, backbone, bands, options, temporal, message
):
    fake_checkpoint(tmp_path / "b.ckpt", backbone, bands, **options)
    export_backbone(tmp_path / "b.ckpt", tmp_path / "export", temporal=temporal)
    model = build_crop_model(CropModelConfig((3, 4), size="tiny", enmap_bands=0))
    before = snapshot(model)
    with pytest.raises(DataError, match=message) as error:
        init_temporal_from_export(model, tmp_path / "export")
    assert "\n" not in str(error.value) and str(tmp_path / "export") in str(error.value)
    changed_only(before, snapshot(model), [])


def test_a_swin_t_export_is_refused_by_the_tiny_size_with_the_fix(tmp_path: Path):
    fake_checkpoint(tmp_path / "swin.ckpt", "swin_tiny_test", S2, **TINY_SWIN)
    export_backbone(tmp_path / "swin.ckpt", tmp_path / "video", temporal=12)
    model = build_crop_model(CropModelConfig((3, 4), size="default", enmap_bands=0))
    with pytest.raises(DataError, match="Build the crop model with size='tiny'"):
        init_temporal_from_export(model, tmp_path / "video")


def test_resnet18_export_is_remapped_to_the_enmap_bands(tmp_path: Path):
    fake_checkpoint(tmp_path / "r.ckpt", "resnet18", S2, seed=5)
    export = export_backbone(tmp_path / "r.ckpt", tmp_path / "resnet")
    torch.manual_seed(0)
    model = build_crop_model(CropModelConfig((3, 4), size="tiny", spectral_encoder="resnet18"))
    before = snapshot(model)
    names = init_spectral_from_export(model, export.out, "enmap")
    after = snapshot(model)
    assert sorted(names) == sorted(
        f"spectral.backbone.{k}" for k in model.spectral.backbone.state_dict()
    )
    changed_only(before, after, names)
    exported = load_file(export.weights)
    expected, _ = remap_input_conv(
        exported["conv1.weight"], preset_bands("sentinel2-10"), preset_bands("enmap")
    )
    assert after["spectral.backbone.conv1.weight"].shape == (64, 218, 7, 7)
    torch.testing.assert_close(after["spectral.backbone.conv1.weight"], expected)
    assert torch.equal(
        after["spectral.backbone.layer1.0.conv1.weight"], exported["layer1.0.conv1.weight"]
    )
    with pytest.raises(ConfigError, match="transformer EnMAP encoder"):
        init_spectral_from_export(
            build_crop_model(CropModelConfig((3,), size="tiny")), export.out, "enmap"
        )
    with pytest.raises(ConfigError, match="10 bands given"):
        init_spectral_from_export(model, export.out, "sentinel2-10")
