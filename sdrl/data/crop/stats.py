"""Per-band normalisation statistics of crop data: Sentinel-2 and EnMAP means and deviations.

They come from a JSON file in H2Crop's ``norm_stats.json`` format (``s2_mean``, ``s2_std``,
``EnMAP_mean``, ``EnMAP_std``; ``enmap_*`` is accepted too, which is how a crop folder's
``dataset.json`` stores them), or are computed by streaming over patch files: every month of
the Sentinel-2 series counts, moments are combined with Chan's formula
(:class:`~sdrl.data.stats.BandMoments`), no pixel array is ever concatenated.

Shape letters: ``C`` Sentinel-2 bands, ``E`` EnMAP bands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdrl.data.crop.h5 import patch_shapes, read_patch
from sdrl.data.stats import BandMoments
from sdrl.errors import DataError

__all__ = ["CropStats", "compute_stats", "load_stats", "stats_from_dict"]


@dataclass(frozen=True, eq=False)
class CropStats:
    """Raw-value statistics per band.

    Attributes:
        s2_mean: ``(C,)`` float32 Sentinel-2 means.
        s2_std: ``(C,)`` float32 Sentinel-2 standard deviations (positive).
        enmap_mean: ``(E,)`` float32 EnMAP means, or ``None`` for Sentinel-2-only data.
        enmap_std: ``(E,)`` float32 EnMAP standard deviations, or ``None``.
    """

    s2_mean: np.ndarray
    s2_std: np.ndarray
    enmap_mean: np.ndarray | None = None
    enmap_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("s2_mean", "s2_std", "enmap_mean", "enmap_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, np.asarray(value, dtype=np.float32).reshape(-1))
        for part in ("s2", "enmap"):
            mean, std = getattr(self, f"{part}_mean"), getattr(self, f"{part}_std")
            if (mean is None) != (std is None) or (mean is not None and mean.shape != std.shape):
                raise ValueError(f"{part}_mean and {part}_std must both be given, of one length")
            if std is not None and not (std > 0).all():
                raise ValueError(f"{part}_std must be positive")

    def to_dict(self) -> dict[str, list[float] | None]:
        """JSON-safe ``s2_mean``, ``s2_std``, ``enmap_mean``, ``enmap_std`` lists (or null)."""
        return {
            "s2_mean": self.s2_mean.tolist(),
            "s2_std": self.s2_std.tolist(),
            "enmap_mean": None if self.enmap_mean is None else self.enmap_mean.tolist(),
            "enmap_std": None if self.enmap_std is None else self.enmap_std.tolist(),
        }


def _vector(data: Mapping[str, Any], names: Sequence[str], source: str) -> np.ndarray | None:
    key = next((k for k in names if k in data), None)
    if key is None or data[key] is None:
        return None
    value = data[key]
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in value
        )
    ):
        raise DataError(source, f'"{key}" as a list of finite numbers', json.dumps(value)[:60])
    if key.endswith("std") and min(value) <= 0:
        raise DataError(source, f'"{key}" of positive numbers', f"{min(value)}")
    return np.asarray(value, dtype=np.float32)


def stats_from_dict(data: Mapping[str, Any], source: str = "statistics") -> CropStats | None:
    """The statistics of a ``norm_stats.json`` or ``dataset.json`` mapping.

    Args:
        data: The mapping.
        source: File name for messages.

    Returns:
        The statistics, or ``None`` when the mapping holds no Sentinel-2 statistics.

    Raises:
        DataError: A malformed entry, a mean without its deviation, or lengths that differ.
    """
    values = {
        name: _vector(data, keys, source)
        for name, keys in {
            "s2_mean": ("s2_mean", "S2_mean"),
            "s2_std": ("s2_std", "S2_std"),
            "enmap_mean": ("enmap_mean", "EnMAP_mean"),
            "enmap_std": ("enmap_std", "EnMAP_std"),
        }.items()
    }
    for part in ("s2", "enmap"):
        mean, std = values[f"{part}_mean"], values[f"{part}_std"]
        if (mean is None) != (std is None) or (
            mean is not None and std is not None and mean.shape != std.shape
        ):
            shown = [None if v is None else len(v) for v in (mean, std)]
            raise DataError(source, f"{part} mean and std of one value per band", f"{shown}")
    if values["s2_mean"] is None or values["s2_std"] is None:
        if values["enmap_mean"] is not None:
            raise DataError(source, '"s2_mean" and "s2_std" with the EnMAP statistics', "none")
        return None
    return CropStats(values["s2_mean"], values["s2_std"], values["enmap_mean"], values["enmap_std"])


def load_stats(path: str | Path) -> CropStats:
    """Read statistics from a JSON file (``norm_stats.json`` or a crop ``dataset.json``).

    Raises:
        DataError: The file is not JSON or holds no ``s2_mean``/``s2_std``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(path, "a JSON file of band statistics", str(error)) from error
    if not isinstance(data, dict):
        raise DataError(path, "a JSON object of band statistics", type(data).__name__)
    stats = stats_from_dict(data, str(path))
    if stats is None:
        raise DataError(path, '"s2_mean" and "s2_std" entries', f"keys {sorted(data)}")
    return stats


def compute_stats(paths: Sequence[Path], enmap: bool = True) -> CropStats:
    """Statistics of patch files, every month of their Sentinel-2 series counted.

    Args:
        paths: The files to read (the caller picks the sample).
        enmap: Also compute EnMAP statistics (skipped when the first file has no EnMAP cube).

    Returns:
        The statistics; a band without variation gets std 1.

    Raises:
        DataError: A file cannot be read, or its band counts differ from the first file's.
    """
    if not paths:
        raise ValueError("compute_stats needs at least one file")
    first = patch_shapes(paths[0])
    s2_shape = first["s2"]
    assert s2_shape is not None
    with_enmap = enmap and first["enmap"] is not None
    s2 = BandMoments.empty(s2_shape[1])
    cube = BandMoments.empty(first["enmap"][0]) if with_enmap and first["enmap"] else None
    for path in paths:
        months = patch_shapes(path)["s2"]
        assert months is not None
        patch = read_patch(path, months[0], enmap=with_enmap, labels=False)
        if patch.s2.shape[1] != s2_shape[1]:
            raise DataError(
                path, f"{s2_shape[1]} Sentinel-2 bands like {paths[0]}", f"{patch.s2.shape[1]}"
            )
        s2.update(np.moveaxis(patch.s2, 1, 0).reshape(patch.s2.shape[1], -1, patch.s2.shape[3]))
        if cube is not None and patch.enmap is not None:
            if patch.enmap.shape[0] != len(cube.count):
                expected = f"{len(cube.count)} EnMAP bands like {paths[0]}"
                raise DataError(path, expected, f"{patch.enmap.shape[0]}")
            cube.update(patch.enmap)

    def std(moments: BandMoments) -> np.ndarray:
        return np.where(moments.std > 0, moments.std, 1.0).astype(np.float32)

    return CropStats(
        s2.mean.astype(np.float32),
        std(s2),
        None if cube is None else cube.mean.astype(np.float32),
        None if cube is None else std(cube),
    )
