"""Region pooling against a plain loop, validity of absent regions, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sdrl.data.samples import IGNORE_INDEX
from sdrl.ssl.pooling import cell_fractions, region_pool


def reference_pool(features, mask, k, rule, min_fraction=0.5, min_area=1.0):
    """Plain loops over samples, regions and cells, in float64."""
    feats = features.detach().double().numpy()
    labels = mask.numpy()
    b, d, h, w = feats.shape
    sh, sw = labels.shape[1] // h, labels.shape[2] // w
    emb = np.zeros((b, k, d))
    valid = np.zeros((b, k), dtype=bool)
    for i in range(b):
        for c in range(k):
            acc, total = np.zeros(d), 0.0
            for y in range(h):
                for x in range(w):
                    cell = labels[i, y * sh : (y + 1) * sh, x * sw : (x + 1) * sw].ravel().tolist()
                    frac = {v: cell.count(v) / len(cell) for v in set(cell)}
                    f = frac.get(c, 0.0)
                    if rule == "soft":
                        weight = f
                    elif rule == "min_fraction":
                        weight = 1.0 if f >= min_fraction else 0.0
                    else:  # majority: lowest id of the largest class fraction, unless ignore wins
                        classes = {v: p for v, p in frac.items() if v != IGNORE_INDEX}
                        best = max(classes.values(), default=0.0)
                        winner = min((v for v, p in classes.items() if p == best), default=None)
                        beaten = frac.get(IGNORE_INDEX, 0.0) > best
                        weight = 1.0 if winner == c and not beaten else 0.0
                    acc += weight * feats[i, :, y, x]
                    total += weight
            if total >= min_area:
                valid[i, c] = True
                emb[i, c] = acc / total
    return torch.from_numpy(emb), torch.from_numpy(valid)


def random_mask(b, height, width, k, seed, ignore=0.15, blocks=2):
    """Blocky class ids (so that cells mix a few classes) with scattered ignore pixels."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, k, (b, height // blocks, width // blocks), generator=g)
    mask = coarse.repeat_interleave(blocks, 1).repeat_interleave(blocks, 2)
    noise = torch.randint(0, k, mask.shape, generator=g)
    mask = torch.where(torch.rand(mask.shape, generator=g) < 0.2, noise, mask)
    mask[torch.rand(mask.shape, generator=g) < ignore] = IGNORE_INDEX
    return mask


@pytest.mark.parametrize("rule", ["soft", "majority", "min_fraction"])
@pytest.mark.parametrize("stride", [1, 4, 8])
def test_matches_plain_loop(rule, stride):
    k, h, w = 5, 4, 6
    mask = random_mask(3, h * stride, w * stride, k, seed=stride, blocks=max(1, stride // 2))
    mask[1][mask[1] == 4] = 2  # class 4 absent from sample 1
    features = torch.randn(
        3, 7, h, w, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    for min_fraction, min_area in [(0.5, 1.0), (0.25, 2.5)]:
        emb, valid = region_pool(
            features, mask, k, rule=rule, min_fraction=min_fraction, min_area=min_area
        )
        ref_emb, ref_valid = reference_pool(features, mask, k, rule, min_fraction, min_area)
        assert emb.shape == (3, k, 7) and valid.dtype == torch.bool
        assert torch.equal(valid, ref_valid)
        torch.testing.assert_close(emb, ref_emb)
        assert not valid[1, 4]
        assert torch.all(emb[~valid] == 0)


def test_soft_rule_is_pixel_mean_of_upsampled_features():
    mask = random_mask(2, 32, 32, 4, seed=3)
    features = torch.randn(2, 5, 4, 4, dtype=torch.float64)
    emb, valid = region_pool(features, mask, 4, rule="soft", min_area=1e-6)
    up = F.interpolate(features, scale_factor=8, mode="nearest")
    for i in range(2):
        for c in range(4):
            pixels = mask[i] == c
            assert bool(valid[i, c]) == bool(pixels.any())
            if pixels.any():
                torch.testing.assert_close(emb[i, c], up[i][:, pixels].mean(dim=1))


def test_ignore_pixels_never_count():
    mask = torch.full((1, 8, 8), IGNORE_INDEX)
    mask[0, :4, :4] = 1
    fractions = cell_fractions(mask, 2, (2, 2))
    assert fractions[0, 1].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert fractions[0, 0].sum() == 0
    features = torch.randn(1, 3, 2, 2)
    for rule in ("soft", "majority", "min_fraction"):
        emb, valid = region_pool(features, mask, 2, rule=rule)
        assert valid.tolist() == [[False, True]]
        torch.testing.assert_close(emb[0, 1], features[0, :, 0, 0])


def test_all_ignore_gives_no_valid_region():
    emb, valid = region_pool(torch.randn(2, 3, 2, 2), torch.full((2, 8, 8), IGNORE_INDEX), 3)
    assert not valid.any() and torch.all(emb == 0)


def test_min_area_marks_small_regions_absent():
    mask = torch.zeros(1, 16, 16, dtype=torch.long)
    mask[0, :2, :2] = 1  # 4 pixels: a quarter of one 4x4 cell
    _, valid = region_pool(torch.randn(1, 3, 4, 4), mask, 2)
    assert valid.tolist() == [[True, False]]
    _, valid = region_pool(torch.randn(1, 3, 4, 4), mask, 2, min_area=0.25)
    assert valid.tolist() == [[True, True]]


@pytest.mark.parametrize("rule", ["soft", "majority", "min_fraction"])
def test_gradient_only_through_valid_regions(rule):
    mask = random_mask(2, 32, 32, 4, seed=5, blocks=4)
    mask[0, :16] = 3  # class 3 dominates the top half of sample 0
    mask[0, 16:][mask[0, 16:] == 3] = 0
    mask[1][mask[1] == 3] = 0
    mask[1, :8, :8] = 3  # one 8x8 cell: below min_area=2 cells, so absent but weighted
    features = torch.randn(2, 6, 4, 4, requires_grad=True)
    emb, valid = region_pool(features, mask, 4, rule=rule, min_area=2.0)
    (emb * torch.randn_like(emb)).sum().backward()
    assert features.grad is not None
    fractions = cell_fractions(mask, 4, (4, 4))
    # The cells that carry weight in some valid region, recomputed from the reference weights.
    _, ref_valid = reference_pool(features, mask, 4, rule, min_area=2.0)
    assert torch.equal(valid, ref_valid)
    if rule == "soft":
        weights = fractions
    elif rule == "min_fraction":
        weights = (fractions >= 0.5).float()
    else:
        ignore = 1 - fractions.sum(1, keepdim=True)
        winner = torch.cat([fractions, ignore], 1).argmax(1, keepdim=True)
        weights = (winner == torch.arange(4).view(1, -1, 1, 1)).float()
    used = (weights * valid[..., None, None]).sum(1) > 0  # (B, h, w)
    touched = features.grad.abs().sum(1) > 0
    assert torch.equal(touched, used)
    # The cell of sample 1's absent class 3 gets no gradient.
    assert not valid[1, 3] and valid[0, 3]
    invalid_only = ((weights * (~valid)[..., None, None]).sum(1) > 0) & ~used
    assert invalid_only[1, 0, 0] and not touched[invalid_only].any()


def test_works_in_bfloat16():
    mask = random_mask(2, 16, 16, 3, seed=0)
    features = torch.randn(2, 4, 4, 4)
    emb, valid = region_pool(features.bfloat16(), mask, 3)
    ref, ref_valid = region_pool(features, mask, 3)
    assert emb.dtype == torch.bfloat16 and torch.equal(valid, ref_valid)
    torch.testing.assert_close(emb.float(), ref, atol=0.05, rtol=0.05)


@pytest.mark.parametrize(
    ("features", "mask", "kwargs", "match"),
    [
        (torch.randn(1, 3, 4, 4), torch.zeros(1, 18, 16, dtype=torch.long), {}, "multiple"),
        (torch.randn(1, 3, 4, 4), torch.full((1, 16, 16), 7), {}, r"class ids \[7\]"),
        (torch.randn(1, 3, 4, 4), -torch.ones(1, 16, 16, dtype=torch.long), {}, "outside"),
        (torch.randn(1, 3, 4, 4), torch.zeros(1, 16, 16), {}, "integer"),
        (torch.randn(2, 3, 4, 4), torch.zeros(1, 16, 16, dtype=torch.long), {}, "batch"),
        (torch.randn(3, 4, 4), torch.zeros(1, 16, 16, dtype=torch.long), {}, r"\(B, D, h, w\)"),
        (
            torch.randn(1, 3, 4, 4),
            torch.zeros(1, 16, 16, dtype=torch.long),
            {"rule": "max"},
            "rule",
        ),
        (
            torch.randn(1, 3, 4, 4),
            torch.zeros(1, 16, 16, dtype=torch.long),
            {"min_fraction": 0.0},
            "min_fraction",
        ),
        (
            torch.randn(1, 3, 4, 4),
            torch.zeros(1, 16, 16, dtype=torch.long),
            {"min_area": 0.0},
            "min_area",
        ),
    ],
)
def test_bad_input_raises(features, mask, kwargs, match):
    with pytest.raises(ValueError, match=match):
        region_pool(features, mask, 3, **kwargs)
