"""Checks of a pretraining dataset's masks, before any training starts.

* mask census: a sample of the training masks is read; when no tile holds two classes, the
  decoupling term (different regions of one image pushed apart) has nothing to act on and the
  region contrast has one region per image — a clear warning, and training still runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sdrl.data.datasets import PretrainPairDataset
from sdrl.data.io import open_raster
from sdrl.data.samples import IGNORE_INDEX

__all__ = ["MaskCensus", "mask_census", "warn_about_masks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaskCensus:
    """What a sample of masks holds.

    Attributes:
        tiles: Masks read.
        classes: Class ids seen (ignore excluded).
        multi_region_tiles: Masks with at least two classes.
    """

    tiles: int
    classes: tuple[int, ...]
    multi_region_tiles: int


def mask_census(dataset: PretrainPairDataset, max_tiles: int = 32) -> MaskCensus:
    """Read up to ``max_tiles`` masks (evenly spread over the split) and count their classes."""
    count = min(max_tiles, len(dataset))
    picks = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(int))
    seen: set[int] = set()
    multi = 0
    parts = [p for p in ("label", "label_B") if dataset.folder.has(p)]
    for index in picks.tolist():
        tile = str(dataset.ids[index])
        for part in parts:
            with open_raster(dataset.folder.path(part, tile)) as src:
                raw = src.read(1)
            classes = dataset.lookup[np.clip(raw, 0, len(dataset.lookup) - 1).astype(np.int64)]
            present = {int(c) for c in np.unique(classes) if 0 <= c != IGNORE_INDEX}
            seen |= present
            multi += len(present) >= 2
    return MaskCensus(len(picks), tuple(sorted(seen)), multi)


def warn_about_masks(dataset: PretrainPairDataset, method: str, needs_masks: bool) -> MaskCensus:
    """Log a clear warning when the masks cannot drive a region objective.

    Args:
        dataset: The training dataset.
        method: Method name, for the message.
        needs_masks: Whether the method pools regions.

    Returns:
        The census.
    """
    census = mask_census(dataset)
    if not needs_masks:
        return census
    names = dataset.meta.classes
    where = f"{dataset.folder.root}: {census.tiles} sampled masks of split {dataset.split!r}"
    if len(census.classes) <= 1 and method == "supervised":
        found = names[census.classes[0]] if census.classes else "no labelled pixel"
        log.warning(
            "%s hold one class only (%s): supervised pretraining has one class to learn and "
            "teaches the encoder nothing; consider richer masks (sdrl prep pairs --masks "
            "kmeans:8 or indices)",
            where,
            found,
        )
    elif len(census.classes) <= 1:
        found = names[census.classes[0]] if census.classes else "no labelled pixel"
        log.warning(
            "%s hold one class only (%s): the %s decoupling term (different regions of one "
            "image pushed apart) does nothing and each image is a single region; training "
            "runs, but consider richer masks (sdrl prep pairs --masks kmeans:8 or indices)",
            where,
            found,
            method,
        )
    elif census.multi_region_tiles == 0 and method != "supervised":
        log.warning(
            "%s each hold one class only: the %s decoupling term has no pair of regions "
            "within an image and does nothing; training runs",
            where,
            method,
        )
    return census
