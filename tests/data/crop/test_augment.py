"""Crop augmentation: one exact transform per sample, shared by S2, EnMAP, labels and priors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.nn.functional import avg_pool2d

from sdrl.data.crop.augment import CropAugment


def coded_batch(b: int = 32, h: int = 12, w: int = 12, months: int = 3) -> dict:
    """Labels number the pixels; S2 band 1 repeats them; EnMAP is the 3x3 mean of S2 band 0."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.arange(h * w).view(1, 1, h, w).expand(b, 2, h, w) + 1000 * torch.arange(b).view(
        b, 1, 1, 1
    )
    s2 = torch.randn(b, months, 4, h, w, generator=gen)
    s2[:, :, 1] = ids[:, :1].float()
    enmap = avg_pool2d(s2[:, 0, 0:1], 3).expand(b, 5, h // 3, w // 3).clone()
    return {"id": [f"p{i}" for i in range(b)], "s2": s2, "enmap": enmap, "label": ids.clone(),
            "prior": ids + 7}  # fmt: skip


def check_consistent(out: dict) -> None:
    torch.testing.assert_close(
        out["enmap"], avg_pool2d(out["s2"][:, 0, 0:1], 3).expand_as(out["enmap"])
    )
    for t in range(out["s2"].shape[1]):
        assert torch.equal(out["s2"][:, t, 1], out["label"][:, 0].float())
    assert torch.equal(out["prior"], out["label"] + 7)


def transforms_seen(before: Tensor, after: Tensor) -> set[tuple[int, ...]]:
    """Which of the 8 dihedral transforms maps ``before`` to ``after``, per sample."""
    seen = set()
    for x, y in zip(before, after, strict=True):
        options = [
            (k, f) for k in range(4) for f in (0, 1)
            if torch.equal(torch.rot90(x.flip(-1) if f else x, k, (-2, -1)), y)
        ]  # fmt: skip
        assert options, "the output is not a flip/rotation of the input"
        seen.add(options[0])
    return seen


def test_same_transform_for_every_part() -> None:
    batch = coded_batch()
    frozen = {k: v.clone() for k, v in batch.items() if isinstance(v, Tensor)}
    out = CropAugment()(batch, torch.Generator().manual_seed(1))
    check_consistent(out)
    for key, value in frozen.items():  # the input is left as it was
        assert torch.equal(batch[key], value)
    assert out["id"] == batch["id"]
    for before, after in zip(batch["label"], out["label"], strict=True):
        assert torch.equal(before.flatten().sort().values, after.flatten().sort().values)
    assert len(transforms_seen(batch["label"], out["label"])) >= 6


def test_generator_makes_it_repeatable() -> None:
    batch = coded_batch()
    first = CropAugment()(batch, torch.Generator().manual_seed(5))
    second = CropAugment()(batch, torch.Generator().manual_seed(5))
    third = CropAugment()(batch, torch.Generator().manual_seed(6))
    assert torch.equal(first["s2"], second["s2"]) and not torch.equal(first["s2"], third["s2"])
    torch.manual_seed(3)
    assert CropAugment()(batch)["label"].shape == batch["label"].shape


def test_switches_and_non_square_tiles() -> None:
    batch = coded_batch()
    same = CropAugment(flips=False, rotations=False)(batch)
    assert torch.equal(same["s2"], batch["s2"])
    flips = transforms_seen(batch["label"], CropAugment(rotations=False)(batch)["label"])
    assert flips <= {(0, 0), (0, 1), (2, 0), (2, 1)} and len(flips) >= 3
    wide = coded_batch(h=9, w=15)
    out = CropAugment()(wide, torch.Generator().manual_seed(2))
    assert out["label"].shape == wide["label"].shape
    check_consistent(out)


def test_aligned_crop() -> None:
    batch = coded_batch(h=18, w=18)
    out = CropAugment(flips=False, rotations=False, crop_size=9)(
        batch, torch.Generator().manual_seed(0)
    )
    assert out["s2"].shape[-2:] == (9, 9) and out["enmap"].shape[-2:] == (3, 3)
    check_consistent(out)
    corners = out["label"][:, 0, 0, 0] % 1000
    rows, cols = corners // 18, corners % 18
    assert (rows % 3 == 0).all() and (cols % 3 == 0).all() and len(set(corners.tolist())) > 3
    windows = out["label"][:, 0] - out["label"][:, :1, :1, 0:1].squeeze(1)
    expected = (torch.arange(9).view(9, 1) * 18 + torch.arange(9)).expand_as(windows)
    assert torch.equal(windows, expected)  # a contiguous window of the original
    both = CropAugment(crop_size=9)(batch, torch.Generator().manual_seed(1))
    check_consistent(both)
    s2_only = {k: v for k, v in batch.items() if k != "enmap"}
    assert CropAugment(crop_size=8)(s2_only)["s2"].shape[-1] == 8


@pytest.mark.parametrize(
    ("augment", "change", "match"),
    [
        (CropAugment(crop_size=8), {}, "multiple of 3"),
        (CropAugment(crop_size=21), {}, "larger than"),
        (CropAugment(), {"enmap": torch.zeros(32, 5, 3, 4)}, r"batch\['enmap'\] must be"),
        (CropAugment(), {"label": torch.zeros(32, 4, 11, 12)}, r"batch\['label'\] must be"),
        (CropAugment(), {"s2": torch.zeros(32, 3, 12, 12)}, r"\(B, T, C, H, W\)"),
    ],
)
def test_bad_batches(augment: CropAugment, change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        augment({**coded_batch(), **change})
