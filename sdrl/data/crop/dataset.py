"""The PyTorch dataset over a ⚑ crop folder (:mod:`sdrl.data.crop.folder`).

A **crop sample** is a dict with

===========  ============================  =================================================
key          value                         meaning
===========  ============================  =================================================
``s2``       ``(T, C, H, W)`` float32      first ``T`` monthly composites, normalised per band
``enmap``    ``(E, H/3, W/3)`` float32     EnMAP cube, normalised per band (``enmap=True``)
``label``    ``(L, H, W)`` int64           class ids per level, 0 = background (``labels``)
``prior``    ``(L, H, W)`` int64           previous year's ids (``priors=True``)
``id``       ``str``                       patch file name without ``.h5``
===========  ============================  =================================================

:func:`sdrl.data.samples.collate` batches them (``(B, ...)`` tensors, a list of ids).
Files are opened only when a sample is read and closed right after. Label ids are checked
against the taxonomy on every read (a maximum per level, so it costs next to nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sdrl.data.crop.folder import CropFolder, ensure_crop_stats
from sdrl.data.crop.h5 import read_patch
from sdrl.data.crop.stats import CropStats, load_stats
from sdrl.data.crop.taxonomy import Taxonomy
from sdrl.errors import DataError

__all__ = ["CropDataset", "check_label_ids"]


def check_label_ids(labels: np.ndarray, taxonomy: Taxonomy, path: Path, key: str) -> None:
    """Raise when a label map holds ids the taxonomy does not have.

    Args:
        labels: ``(L, H, W)`` integer class ids.
        taxonomy: The taxonomy (``L`` levels).
        path: The file, for the message.
        key: ``label`` or ``prior``, for the message.

    Raises:
        DataError: The file, the level and the offending ids.
    """
    if labels.shape[0] != taxonomy.levels:
        raise DataError(
            path,
            f"{taxonomy.levels} {key} maps (one per level of the taxonomy {taxonomy.source})",
            f"{labels.shape[0]}",
        )
    flat = labels.reshape(labels.shape[0], -1)
    top = np.asarray(taxonomy.num_classes) - 1
    bad_levels = np.flatnonzero((flat.max(axis=1) > top) | (flat.min(axis=1) < 0))
    if len(bad_levels):
        level = int(bad_levels[0])
        values = np.unique(flat[level])
        bad = values[(values < 0) | (values > top[level])].tolist()
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise DataError(
            path,
            f"{key} ids 0..{top[level]} at level {level + 1} (taxonomy {taxonomy.source})",
            f"ids {shown}",
            "Give the taxonomy the data was labelled with (--taxonomy CSV)",
        )


class CropDataset(Dataset[dict[str, Any]]):
    """Samples of one split of a crop folder.

    Args:
        root: The crop folder.
        split: ``train``, ``val``, ``test`` (or another list's name).
        months: Leading monthly composites ``T`` per sample (H2Crop models use 6, 8, 10, 12).
        enmap: Return the EnMAP cube.
        priors: Return the previous year's labels.
        taxonomy: Checks the label ids; default: the folder's ``dataset.json`` one, else none
            (then ids are not checked).
        stats: Normalisation: a :class:`CropStats`, a JSON file (``norm_stats.json`` format),
            or ``None`` for the folder's ``dataset.json`` (computed from a sample of the
            ``train`` split and cached there when it has none, with a message).
        labels: Return the label maps; ``False`` for patches to predict (they may have none).

    Raises:
        DataError: A missing split list or listed file, or statistics that do not fit.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        months: int = 12,
        enmap: bool = True,
        priors: bool = False,
        taxonomy: Taxonomy | None = None,
        stats: CropStats | str | Path | None = None,
        labels: bool = True,
    ) -> None:
        if months < 1:
            raise ValueError(f"months must be at least 1, got {months}")
        self.folder = CropFolder(root)
        self.split = split
        self.months = months
        self.enmap = enmap
        self.priors = priors
        self.labels = labels
        self.ids, self.paths = self.folder.files(split)
        self.taxonomy = taxonomy if taxonomy is not None else self.folder.taxonomy
        if stats is None:
            stats = ensure_crop_stats(self.folder)
        elif not isinstance(stats, CropStats):
            stats = load_stats(stats)
        self.stats = stats
        if enmap and (stats.enmap_mean is None or stats.enmap_std is None):
            raise DataError(
                self.folder.meta_path if self.folder.meta is not None else self.folder.root,
                "EnMAP statistics (enmap_mean, enmap_std) to read EnMAP",
                "none",
                "Pass enmap=False, or statistics with EnMAP_mean and EnMAP_std",
            )
        self._s2 = (stats.s2_mean[:, None, None], stats.s2_std[:, None, None])
        self._enmap = None
        if stats.enmap_mean is not None and stats.enmap_std is not None:
            self._enmap = (stats.enmap_mean[:, None, None], stats.enmap_std[:, None, None])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        patch = read_patch(
            path, self.months, enmap=self.enmap, priors=self.priors, labels=self.labels
        )
        if patch.s2.shape[1] != len(self._s2[0]):
            raise DataError(
                path,
                f"{len(self._s2[0])} Sentinel-2 bands like the statistics",
                f"{patch.s2.shape[1]} (shape {patch.s2.shape})",
            )
        if self.taxonomy is not None:
            if patch.label is not None:
                check_label_ids(patch.label, self.taxonomy, path, "label")
            if patch.prior is not None:
                check_label_ids(patch.prior, self.taxonomy, path, "prior")
        sample: dict[str, Any] = {
            "s2": torch.from_numpy((patch.s2 - self._s2[0]) / self._s2[1]),
        }
        if patch.enmap is not None and self._enmap is not None:
            if patch.enmap.shape[0] != len(self._enmap[0]):
                raise DataError(
                    path,
                    f"{len(self._enmap[0])} EnMAP bands like the statistics",
                    f"{patch.enmap.shape[0]}",
                )
            sample["enmap"] = torch.from_numpy((patch.enmap - self._enmap[0]) / self._enmap[1])
        if patch.label is not None:
            sample["label"] = torch.from_numpy(patch.label)
        if patch.prior is not None:
            sample["prior"] = torch.from_numpy(patch.prior)
        sample["id"] = self.ids[index]
        return sample
