"""Pictures of one augmented training batch of each demo dataset, before and after augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from sdrl.data.augment import BitemporalAugment
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.io import write_raster
from sdrl.data.samples import collate
from sdrl.viz import colorize, image_grid, to_rgb

__all__ = ["write_previews"]


def _change_preview(batch: dict, band_names: list[str], rows: int) -> list[list]:
    pictures = []
    for i in range(min(rows, len(batch["id"]))):
        change = batch["change"][i].numpy()
        pictures.append(
            [
                to_rgb(batch["image_a"][i].numpy(), band_names),
                to_rgb(batch["image_b"][i].numpy(), band_names),
                colorize(np.where(change == 1, 5, change)),  # changed in red, ignore black
            ]
        )
    return pictures


def _pretrain_preview(batch: dict, band_names: list[str], rows: int) -> list[list]:
    return [
        [
            to_rgb(batch["image_a"][i].numpy(), band_names),
            to_rgb(batch["image_b"][i].numpy(), band_names),
            colorize(batch["mask_a"][i].numpy()),
            colorize(batch["mask_b"][i].numpy()),
        ]
        for i in range(min(rows, len(batch["id"])))
    ]


def write_previews(out: Path, seed: int) -> list[Path]:
    """Write ``preview_change.png`` and ``preview_pretrain.png`` into ``out``.

    Each holds four training tiles (rows), then the same four after augmentation: before |
    after | change (change) or before | after | mask A | mask B (pretrain).

    Args:
        out: The demo folder, holding the ``change`` and ``pretrain`` datasets.
        seed: Seed of the tile draw and the augmentation.

    Returns:
        The PNGs written.
    """
    torch.manual_seed(seed)
    augment = BitemporalAugment()
    written = []
    for name, dataset_cls, preview in (
        ("change", ChangeDataset, _change_preview),
        ("pretrain", PretrainPairDataset, _pretrain_preview),
    ):
        dataset = dataset_cls(out / name, "train")
        batch = next(iter(DataLoader(dataset, batch_size=4, shuffle=True, collate_fn=collate)))
        augmented = augment(batch)
        rows = preview(batch, dataset.meta.bands, 4) + preview(augmented, dataset.meta.bands, 4)
        written.append(write_raster(out / f"preview_{name}.png", image_grid(rows)))
    return written
