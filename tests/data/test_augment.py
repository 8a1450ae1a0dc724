"""Tests of the batch-level bitemporal augmentation."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from sdrl.data.augment import BitemporalAugment
from sdrl.data.samples import IGNORE_INDEX, collate

STRONG_GEOMETRY = {
    "crop_scale": (0.4, 1.0),
    "p_rot90": 0.5,
    "p_affine": 1.0,
    "degrees": 30.0,
    "translate": 0.2,
    "scale": (0.8, 1.2),
}
NO_PHOTOMETRY = {"p_color": 0.0, "p_noise": 0.0, "p_blur": 0.0}


def region(rows: Tensor, cols: Tensor) -> Tensor:
    """Class id of the block holding each pixel (a 4x5 grid of blocks)."""
    return (rows // 10) * 5 + cols // 12


def coord_batch(b: int = 8, h: int = 40, w: int = 56, bands: int = 4) -> dict:
    """Images encode the pixel position: band 0 row, band 1 column, band 2 ones, then extras."""
    rows = torch.arange(h).view(h, 1).expand(h, w)
    cols = torch.arange(w).view(1, w).expand(h, w)
    extra = [(rows + 2 * cols).float() / 10] * (bands - 3)
    image = torch.stack([rows.float(), cols.float(), torch.ones(h, w), *extra])
    samples = [
        {
            "id": f"t{i}",
            "image_a": image.clone(),
            "image_b": image.clone(),
            "mask_a": rows.clone(),
            "mask_b": cols.clone(),
            "change": region(rows, cols),
        }
        for i in range(b)
    ]
    return collate(samples)


def random_batch(b: int = 4, bands: int = 4, size: int = 32, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "id": [f"t{i}" for i in range(b)],
        "image_a": torch.randn(b, bands, size, size, generator=gen) * 2,
        "image_b": torch.randn(b, bands, size, size, generator=gen) * 2,
        "mask_a": torch.randint(0, 5, (b, size, size), generator=gen),
        "mask_b": torch.randint(0, 5, (b, size, size), generator=gen),
        "change": torch.randint(0, 2, (b, size, size), generator=gen),
    }


def test_geometry_is_shared_by_dates_and_masks() -> None:
    torch.manual_seed(0)
    batch = coord_batch()
    out = BitemporalAugment(photometric=False, **STRONG_GEOMETRY)(batch)
    assert torch.equal(out["image_a"], out["image_b"])
    rows, cols, ones = out["image_a"][:, 0], out["image_a"][:, 1], out["image_a"][:, 2]
    inside = (ones - 1).abs() < 1e-4  # bilinear sample entirely from inside the image
    outside = ones.abs() < 1e-6  # sample entirely from the padding
    assert inside.float().mean() > 0.3 and outside.float().mean() > 0.02
    moved = (rows[inside] - batch["image_a"][:, 0][inside]).abs() > 1
    assert moved.any(), "the strong geometry should move pixels"
    for key in ("mask_a", "mask_b", "change"):
        assert (out[key][inside] != IGNORE_INDEX).all()
        assert (out[key][outside] == IGNORE_INDEX).all()
        assert torch.equal(out[key] == IGNORE_INDEX, out["mask_a"] == IGNORE_INDEX)
    # The nearest label comes from the source pixel closest to the bilinear sample position.
    assert (rows[inside] - out["mask_a"][inside].float()).abs().max() <= 0.5 + 1e-3
    assert (cols[inside] - out["mask_b"][inside].float()).abs().max() <= 0.5 + 1e-3
    valid = out["mask_a"] != IGNORE_INDEX
    assert torch.equal(out["change"][valid], region(out["mask_a"][valid], out["mask_b"][valid]))
    assert out["image_a"][outside.unsqueeze(1).expand_as(out["image_a"])].abs().max() < 1e-6


def _dihedral(x: Tensor) -> list[Tensor]:
    """The eight flips/rotations of the last two dimensions of ``x``."""
    turns = [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)]
    return turns + [t.flip(-1) for t in turns]


def test_flips_and_rot90_are_exact_and_shared() -> None:
    torch.manual_seed(1)
    b, size = 16, 24
    gen = torch.Generator().manual_seed(0)
    batch = {
        "image_a": torch.randint(0, 100, (b, 3, size, size), generator=gen).float(),
        "image_b": torch.randint(0, 100, (b, 3, size, size), generator=gen).float(),
        "mask_a": torch.randint(0, 5, (b, size, size), generator=gen),
        "change": torch.randint(0, 2, (b, size, size), generator=gen),
    }
    batch["mask_a"][:, :4, :4] = IGNORE_INDEX  # an ignored block stays ignored
    aug = BitemporalAugment(photometric=False, crop_scale=None, p_affine=0.0)
    out = aug(batch)
    seen = set()
    for i in range(b):
        result = out["image_a"][i]
        candidates = _dihedral(batch["image_a"][i])
        match = [k for k, t in enumerate(candidates) if t.allclose(result, atol=0.01)]
        assert len(match) == 1
        k = match[0]
        seen.add(k)
        assert torch.allclose(_dihedral(batch["image_b"][i])[k], out["image_b"][i], atol=1e-2)
        for key in ("mask_a", "change"):
            assert torch.equal(_dihedral(batch[key][i])[k], out[key][i])
    assert len(seen) >= 4, f"flips and rotations should vary over the batch, saw {seen}"


def test_padding_is_ignore_never_a_class() -> None:
    torch.manual_seed(2)
    batch = random_batch(b=8)
    for key in ("mask_a", "mask_b", "change"):
        batch[key] = batch[key] + 1  # no zeros anywhere
    out = BitemporalAugment(photometric=False, **STRONG_GEOMETRY)(batch)
    for key in ("mask_a", "mask_b", "change"):
        values = set(out[key].unique().tolist())
        assert 0 not in values
        assert IGNORE_INDEX in values
        assert values <= set(batch[key].unique().tolist()) | {IGNORE_INDEX}


def test_masks_are_resampled_nearest() -> None:
    torch.manual_seed(3)
    batch = random_batch(b=8)
    palette = torch.tensor([3, 7, 200, IGNORE_INDEX])
    for key in ("mask_a", "mask_b", "change"):
        batch[key] = palette[torch.randint(0, 4, batch[key].shape)]
    out = BitemporalAugment(photometric=False, **STRONG_GEOMETRY)(batch)
    for key in ("mask_a", "mask_b", "change"):
        assert set(out[key].unique().tolist()) <= set(palette.tolist())


def test_photometry_is_independent_per_date_and_never_clips() -> None:
    torch.manual_seed(4)
    batch = random_batch(b=6, bands=5)
    batch["image_b"] = batch["image_a"].clone()
    aug = BitemporalAugment(geometric=False, p_color=1.0, p_noise=1.0, p_blur=0.0)
    out = aug(batch)
    delta_a = out["image_a"] - batch["image_a"]
    delta_b = out["image_b"] - batch["image_b"]
    for i in range(6):
        assert not torch.allclose(delta_a[i], delta_b[i], atol=1e-3)
        assert delta_a[i].abs().mean() > 1e-3
    for key in ("mask_a", "mask_b", "change"):
        assert torch.equal(out[key], batch[key])
    assert out["image_a"].min() < -1 and out["image_a"].max() > 1


def test_band_jitter_is_per_band() -> None:
    torch.manual_seed(5)
    batch = random_batch(b=4, bands=6)
    aug = BitemporalAugment(
        geometric=False, p_color=1.0, brightness=0.0, contrast=0.0, band_jitter=0.3,
        p_noise=0.0, p_blur=0.0,
    )  # fmt: skip
    out = aug(batch)
    shift = (out["image_a"] - batch["image_a"]).mean(dim=(2, 3))  # (B, C)
    assert (shift.std(dim=1) > 1e-3).all()


@pytest.mark.parametrize("bands", [1, 3, 4, 13])
def test_band_counts_shapes_dtypes(bands: int) -> None:
    torch.manual_seed(6)
    batch = random_batch(bands=bands)
    batch["extra"] = "kept"
    aug = BitemporalAugment(p_noise=1.0, p_blur=1.0, **STRONG_GEOMETRY)
    out = aug(batch)
    assert set(out) == set(batch)
    assert out["id"] == batch["id"] and out["extra"] == "kept"
    for key in ("image_a", "image_b"):
        assert out[key].shape == batch[key].shape and out[key].dtype == torch.float32
        assert torch.isfinite(out[key]).all()
    for key in ("mask_a", "mask_b", "change"):
        assert out[key].shape == batch[key].shape and out[key].dtype == torch.int64


def test_rgb_color_jitter_only_for_three_bands() -> None:
    torch.manual_seed(7)
    aug = BitemporalAugment(
        geometric=False, rgb_color_jitter=True, hue=0.5, saturation=0.5, p_color=1.0,
        brightness=0.0, contrast=0.0, band_jitter=0.0, p_noise=0.0, p_blur=0.0,
    )  # fmt: skip
    rgb = random_batch(bands=3)
    out = aug(rgb)
    assert not torch.allclose(out["image_a"], rgb["image_a"], atol=1e-2)
    # Hue and saturation act inside each image's band range, shared by the three bands.
    for key in ("image_a", "image_b"):
        low = rgb[key].amin(dim=(1, 2, 3))
        high = rgb[key].amax(dim=(1, 2, 3))
        assert (out[key].amin(dim=(1, 2, 3)) >= low - 1e-4).all()
        assert (out[key].amax(dim=(1, 2, 3)) <= high + 1e-4).all()
    for bands in (1, 4, 13):
        with pytest.raises(ValueError, match="rgb_color_jitter"):
            aug(random_batch(bands=bands))


def test_deterministic_under_seed() -> None:
    batch = random_batch(bands=4)
    aug = BitemporalAugment(p_noise=1.0, p_blur=1.0, **STRONG_GEOMETRY)
    runs = []
    for seed in (11, 11, 12):
        torch.manual_seed(seed)
        runs.append(aug(batch))
    for key in ("image_a", "image_b", "mask_a", "mask_b", "change"):
        assert torch.equal(runs[0][key], runs[1][key])
    assert not torch.equal(runs[0]["image_a"], runs[2]["image_a"])


def test_identity_and_partial_batches() -> None:
    batch = random_batch()
    out = BitemporalAugment.identity()(batch)
    for key in batch:
        assert out[key] is batch[key]
    # A change batch has no semantic masks; a mask-only batch still gets its geometry.
    torch.manual_seed(8)
    change_only = {k: batch[k] for k in ("id", "image_a", "image_b", "change")}
    out = BitemporalAugment(**STRONG_GEOMETRY)(change_only)
    assert set(out) == set(change_only)
    masks_only = {"mask_a": batch["mask_a"] + 1}
    out = BitemporalAugment(**STRONG_GEOMETRY)(masks_only)
    assert (out["mask_a"] == IGNORE_INDEX).any() and not (out["mask_a"] == 0).any()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p_hflip": 1.5},
        {"p_blur": -0.1},
        {"crop_scale": (0.8, 0.5)},
        {"crop_scale": (0.0, 1.0)},
        {"scale": (1.2, 0.8)},
        {"degrees": 200.0},
        {"translate": 1.0},
        {"contrast": 1.0},
        {"hue": 0.7},
        {"blur_kernel": 4},
        {"blur_sigma": (0.0, 1.0)},
    ],
)
def test_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        BitemporalAugment(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda() -> None:
    torch.manual_seed(9)
    batch = {k: v.cuda() if isinstance(v, Tensor) else v for k, v in coord_batch().items()}
    out = BitemporalAugment(p_noise=1.0, p_blur=1.0, **STRONG_GEOMETRY)(batch)
    for key in ("image_a", "image_b", "mask_a", "mask_b", "change"):
        assert out[key].device == batch[key].device
    assert out["mask_a"].dtype == torch.int64
    assert (out["mask_a"] == IGNORE_INDEX).any()
