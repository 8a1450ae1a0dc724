"""PyTorch datasets over the ⚑ dataset folder.

Both datasets return the sample dicts documented in :mod:`sdrl.data.samples`. Files are opened
only when a sample is read (in the data-loader worker that reads it) and closed right after;
the index is one NumPy string array, so millions of tiles cost little memory.

Pixels without data in A or B (the file's nodata value, or any band not finite: the package's
policy, :func:`~sdrl.data.io.valid_mask`) are 0 in both normalised images and ignore
(:data:`~sdrl.data.samples.IGNORE_INDEX`) in every mask, so no NaN reaches a model or a loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sdrl.data.folder import DatasetFolder, DatasetMeta, Kind
from sdrl.data.io import Window, open_raster, valid_mask
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.stats import ensure_meta
from sdrl.errors import DataError

__all__ = ["ChangeDataset", "PretrainPairDataset", "label_lookup"]


def label_lookup(meta: DatasetMeta, max_value: int = 65535) -> np.ndarray:
    """Table from raw label value to class id (``-1`` = undeclared, :data:`IGNORE_INDEX` = ignore).

    Args:
        meta: The dataset description (``label_values``, ``ignore_index``, ``classes``).
        max_value: Largest raw value the table covers.

    Returns:
        ``(max_value + 1,)`` int64 array.
    """
    table = np.full(max_value + 1, -1, dtype=np.int64)
    if meta.label_values is not None:
        for raw, cls in meta.label_values.items():
            table[raw] = cls
    else:
        table[: meta.num_classes] = np.arange(meta.num_classes)
    if meta.ignore_index is not None:
        table[meta.ignore_index] = IGNORE_INDEX
    return table


class _FolderDataset(Dataset[dict[str, Any]]):
    """Shared reading, checking and normalisation of the two datasets."""

    kind: Kind
    mandatory: tuple[str, ...]
    optional: tuple[str, ...]
    label_parts: tuple[str, ...]

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        crop_size: int | None = None,
        check_files: bool = True,
        cache_stats: bool = True,
        with_valid: bool = False,
    ) -> None:
        self.folder = DatasetFolder(root)
        self.split = split
        self.crop_size = crop_size
        self.with_valid = with_valid
        self.ids = self.folder.ids(split)
        if check_files:
            present = [p for p in self.optional if self.folder.has(p)]
            self.folder.check(self.ids, [*self.mandatory, *present])
        self.meta = ensure_meta(self.folder, self.kind, write=cache_stats)
        assert self.meta.mean is not None and self.meta.std is not None
        self.mean = np.asarray(self.meta.mean, dtype=np.float32)[:, None, None]
        self.std = np.asarray(self.meta.std, dtype=np.float32)[:, None, None]
        self.lookup = label_lookup(self.meta)

    @property
    def bitemporal(self) -> bool:
        """Whether the folder has a ``B/`` image for each tile."""
        return self.folder.has("B")

    @property
    def num_bands(self) -> int:
        """Image bands ``C``."""
        return len(self.meta.bands)

    def __len__(self) -> int:
        return len(self.ids)

    def _window(self, height: int, width: int) -> Window | None:
        if self.crop_size is None or (height <= self.crop_size and width <= self.crop_size):
            return None
        size = self.crop_size
        row = int(torch.randint(0, max(height - size, 0) + 1, ()).item())
        col = int(torch.randint(0, max(width - size, 0) + 1, ()).item())
        return Window(col, row, min(size, width), min(size, height))

    def _read(
        self, part: str, tile_id: str, shape: tuple[int, int] | None, window: Window | None
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int], Window | None]:
        """Read one file (opened once): ``(data (C, h, w), valid (h, w) or None, (H, W), window)``.

        ``shape=None`` reads A, whose size decides the random window; the other parts must have
        that ``shape`` and are read through the same ``window``.
        """
        path = self.folder.path(part, tile_id)
        with open_raster(path) as src:
            full = (src.height, src.width)
            if shape is None:
                window = self._window(*full)
            elif full != shape:
                raise DataError(
                    path, f"{shape[0]}x{shape[1]} pixels like A/{tile_id}", f"{full[0]}x{full[1]}"
                )
            data = src.read(window=window)
            valid = None
            if part in ("A", "B") and (src.nodata is not None or data.dtype.kind == "f"):
                valid = valid_mask(data, src.nodata)  # nodata value or non-finite
                valid = None if valid.all() else valid
            return data, valid, full, window

    def _image(self, part: str, data: np.ndarray, tile_id: str) -> np.ndarray:
        if data.shape[0] != self.num_bands:
            raise DataError(
                self.folder.path(part, tile_id),
                f"{self.num_bands} bands {self.meta.bands} as in {self.folder.meta_path.name}",
                f"{data.shape[0]} bands",
            )
        return (data.astype(np.float32) - self.mean) / self.std

    def _label(self, part: str, data: np.ndarray, tile_id: str) -> np.ndarray:
        raw = data[0]
        if raw.dtype.kind not in "ui" or raw.min() < 0 or raw.max() >= len(self.lookup):
            raise DataError(
                self.folder.path(part, tile_id),
                "integer label values",
                f"dtype {raw.dtype}, range {raw.min()}..{raw.max()}",
            )
        mapped = self.lookup[raw]
        if (mapped < 0).any():
            bad = sorted(set(np.unique(raw[mapped < 0]).tolist()))
            declared = (
                sorted(self.meta.label_values)
                if self.meta.label_values is not None
                else list(range(self.meta.num_classes))
            )
            ignore = self.meta.ignore_index
            expected = f"label values {declared} (classes {self.meta.classes})"
            if ignore is not None:
                expected += f" or {ignore} = ignore"
            raise DataError(self.folder.path(part, tile_id), expected, f"values {bad}")
        return mapped

    def _read_pair(self, tile_id: str) -> dict[str, Any]:
        """Read A, B (if any) and the label parts present for one tile."""
        a, valid, full, window = self._read("A", tile_id, None, None)
        image_a = self._image("A", a, tile_id)
        if self.bitemporal:
            b, valid_b, _, _ = self._read("B", tile_id, full, window)
            image_b = self._image("B", b, tile_id)
            if valid_b is not None:
                valid = valid_b if valid is None else valid & valid_b
        else:
            image_b = image_a
        labels = {}
        for part in self.label_parts:
            if self.folder.has(part):
                data, _, _, _ = self._read(part, tile_id, full, window)
                labels[part] = self._label(part, data, tile_id)
        if valid is not None:
            image_a[:, ~valid] = 0
            image_b[:, ~valid] = 0
            for mask in labels.values():
                mask[~valid] = IGNORE_INDEX
        sample: dict[str, Any] = {"id": tile_id, "image_a": torch.from_numpy(image_a)}
        sample["image_b"] = torch.from_numpy(image_b) if self.bitemporal else sample["image_a"]
        sample.update({k: torch.from_numpy(v) for k, v in labels.items()})
        if self.with_valid:
            shape = image_a.shape[1:]
            sample["valid"] = torch.from_numpy(
                np.ones(shape, dtype=bool) if valid is None else valid
            )
        return sample


class ChangeDataset(_FolderDataset):
    """Bitemporal images with change masks.

    Args:
        root: A dataset folder with ``A/``, ``B/`` and ``label/`` (LEVIR-CD and WHU-CD load as
            distributed: RGB PNGs with 0/255 labels).
        split: Split list name (``train``, ``val``, ``test``...) or ``all``.
        crop_size: Read a random ``crop_size`` window of larger images (windowed read), e.g.
            256-pixel crops of WHU-CD's 1024-pixel tiles; whole images when ``None``.
        check_files: Check at construction that every id has its files (one directory scan per
            subfolder).
        cache_stats: When ``dataset.json`` lacks statistics, write the computed ones there.
        with_valid: Add ``"valid"``, the ``(H, W)`` bool mask of pixels with data in A and B,
            to each sample (evaluation counts the pixels left out).

    Samples are ``{"id", "image_a", "image_b", "change"}`` (see :mod:`sdrl.data.samples`).
    Pixels without data in A or B (their nodata value, or any band not finite:
    :func:`~sdrl.data.io.valid_mask`) are 0 in both images and ignore in the labels.
    """

    kind: Kind = "change"
    mandatory = ("A", "B", "label")
    optional = ()
    label_parts = ("label",)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self._read_pair(str(self.ids[index]))
        sample["change"] = sample.pop("label")
        return sample


class PretrainPairDataset(_FolderDataset):
    """Images (bitemporal or single-date) with semantic masks, for pretraining.

    Args:
        root: A dataset folder with ``A/`` and ``label/`` (semantic masks of A), optionally
            ``B/`` and ``label_B/``.
        split: Split list name or ``all``.
        crop_size: Random window size for larger images; whole images when ``None``.
        check_files: Check at construction that every id has its files.
        cache_stats: When ``dataset.json`` lacks statistics, write the computed ones there.

    Samples are ``{"id", "image_a", "image_b", "mask_a", "mask_b"}`` (see
    :mod:`sdrl.data.samples`).
    """

    kind: Kind = "pretrain"
    mandatory = ("A", "label")
    optional = ("B", "label_B")
    label_parts = ("label", "label_B")

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        crop_size: int | None = None,
        check_files: bool = True,
        cache_stats: bool = True,
    ) -> None:
        folder = Path(root)
        if not (folder / "label").is_dir() and (folder / "A").is_dir():
            raise DataError(
                folder / "label",
                "semantic masks for pretraining",
                "no label/ folder",
                "Make masks with `sdrl prep pairs --masks kmeans:8` (or indices, or --labels)",
            )
        super().__init__(root, split, crop_size, check_files, cache_stats)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self._read_pair(str(self.ids[index]))
        sample["mask_a"] = sample.pop("label")
        sample["mask_b"] = sample.pop("label_B") if "label_B" in sample else sample["mask_a"]
        return sample
