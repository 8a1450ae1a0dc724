"""--temporal: a 2D Swin inflated into torchvision's video Swin (swin3d_t).

Measured tolerance (CPU, float32): a clip of identical frames gives the 2D model's pooled
features to a largest absolute difference of 6e-7 on features of magnitude up to 2 (Swin-T at
224 x 224, T = 4 and T = 32; the test size at 128 x 128, T = 4 and T = 32, whose 16 temporal
tokens use shifted temporal windows). The tests allow 5e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from sdrl.errors import DataError
from sdrl.export import export_backbone, load_torchvision
from sdrl.export.inflate import build_swin3d, inflate_swin, pads_in_time
from sdrl.models import build_backbone, build_change_model, init_encoder
from tests.export.checkpoints import fake_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

RGBN = ["red", "green", "blue", "nir"]
ATOL = 5e-6


def identical_frames(image: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, C, H, W)`` → the clip ``(B, C, T, H, W)`` of ``frames`` copies."""
    return image.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()


def test_swin_t_inflates_into_torchvision_swin3d_t(tmp_path: Path):
    fake_checkpoint(tmp_path / "swin.ckpt", "swin_t", RGBN, seed=4)
    flat = export_backbone(tmp_path / "swin.ckpt", tmp_path / "2d")
    video = export_backbone(tmp_path / "swin.ckpt", tmp_path / "3d", temporal=4)
    meta = video.meta
    assert meta["architecture"] == "swin3d_t"
    assert meta["torchvision"] == "torchvision.models.video.swin3d_t"
    assert meta["temporal"]["frames"] == 4 and meta["temporal"]["window_size"] == [8, 7, 7]
    assert meta["first_layer"] == "patch_embed.proj.weight" and meta["in_channels"] == 4
    # the README's lines for a video Swin
    model = torchvision.models.video.swin3d_t(weights=None)
    model.head = nn.Identity()
    model.patch_embed.proj = nn.Conv3d(4, 96, kernel_size=(2, 4, 4), stride=(2, 4, 4))
    model.load_state_dict(load_file(video.weights), strict=True)
    weights, weights2d = load_file(video.weights), load_file(flat.weights)
    kernel = weights["patch_embed.proj.weight"]
    assert kernel.shape == (96, 4, 2, 4, 4)
    torch.testing.assert_close(kernel.sum(dim=2), weights2d["features.0.0.weight"])
    table = weights["features.0.0.attn.relative_position_bias_table"].reshape(15, 169, 3)
    assert torch.equal(
        table, weights2d["features.1.0.attn.relative_position_bias_table"].expand(15, -1, -1)
    )
    assert torch.equal(
        weights["features.0.0.attn.relative_position_index"],
        model.state_dict()["features.0.0.attn.relative_position_index"],
    )
    image = torch.randn(2, 4, 224, 224)
    with torch.no_grad():
        expected = load_torchvision(tmp_path / "2d")(image)
        got = load_torchvision(tmp_path / "3d")(identical_frames(image, 4))
    assert got.shape == (2, 768)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("frames", [2, 32])
def test_identical_frames_give_the_2d_features_with_temporal_windows(tmp_path: Path, frames):
    options = {"depths": (2, 2, 2, 2)}  # shifted blocks in every stage
    fake_checkpoint(tmp_path / "swin.ckpt", "swin_tiny_test", RGBN, seed=5, **options)
    export_backbone(tmp_path / "swin.ckpt", tmp_path / "2d")
    video = export_backbone(tmp_path / "swin.ckpt", tmp_path / "3d", temporal=frames)
    assert video.meta["architecture"] == "swin_tiny_test_3d"
    assert video.meta["architecture_config"]["window_size"] == [8, 4, 4]
    image = torch.randn(2, 4, 128, 128)
    with torch.no_grad():
        expected = load_torchvision(tmp_path / "2d")(image)
        got = load_torchvision(tmp_path / "3d")(identical_frames(image, frames))
        moved = load_torchvision(tmp_path / "3d")(
            torch.cat([identical_frames(image, frames - 1), image.unsqueeze(2) * 0.5], dim=2)
        )
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    assert (moved - expected).abs().max() > 1e-3  # the clip's frames matter


def test_band_remap_then_inflate(tmp_path: Path):
    fake_checkpoint(tmp_path / "swin.ckpt", "swin_tiny_test", RGBN, seed=6)
    export_backbone(tmp_path / "swin.ckpt", tmp_path / "2d", bands="sentinel2-10")
    video = export_backbone(
        tmp_path / "swin.ckpt", tmp_path / "3d", bands="sentinel2-10", temporal=12
    )
    assert video.meta["in_channels"] == 10
    image = torch.randn(1, 10, 128, 128)  # every stage a multiple of the 4x4 window
    with torch.no_grad():
        expected = load_torchvision(tmp_path / "2d")(image)
        got = load_torchvision(tmp_path / "3d")(identical_frames(image, 12))
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    # a video export is not a 2D Swin's initialisation
    model = build_change_model("siamese", 10, "swin_tiny_test", decoder_channels=8)
    with pytest.raises(DataError, match="architecture 'swin_tiny_test_3d'"):
        init_encoder(model, tmp_path / "3d")
    assert json.loads((tmp_path / "3d" / "meta.json").read_text())["temporal"]["frames"] == 12


def test_inflation_refuses_tensors_that_do_not_fit():
    state = build_backbone("swin_tiny_test", 3).torchvision_state_dict()
    config = {
        "patch_size": [2, 4, 4],
        "embed_dim": 24,
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 1, 2, 2],
        "window_size": [8, 5, 5],
    }
    with pytest.raises(ValueError, match="does not fit a 5x5 window"):
        inflate_swin(state, build_swin3d(config, 3))
    config["window_size"] = [8, 4, 4]
    with pytest.raises(ValueError, match="no features.0.0.weight"):
        inflate_swin(
            {k: v for k, v in state.items() if k != "features.0.0.weight"}, build_swin3d(config, 3)
        )
    with pytest.raises(ValueError, match="without a place"):
        inflate_swin({**state, "extra.weight": torch.zeros(1)}, build_swin3d(config, 3))
    assert [pads_in_time(t) for t in (2, 12, 16, 18, 32, 34)] == [
        False,
        False,
        False,
        True,
        False,
        True,
    ]
