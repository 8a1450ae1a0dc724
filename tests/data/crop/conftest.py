"""Tiny H2Crop-style HDF5 files written by the tests themselves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

SPELLINGS = {
    "readme": {"s2": "S2", "enmap": "EnMAP", "label": "label", "prior": "prior"},
    "loader": {"s2": "S2_data", "enmap": "EnMAP_data", "label": "label", "prior": "priors"},
}


def patch_arrays(
    months: int = 12,
    bands: int = 10,
    size: int = 12,
    enmap_bands: int = 5,
    levels: int = 4,
    seed: int = 0,
    top: int = 3,
) -> dict[str, np.ndarray]:
    """Random int16 images and uint8 labels (ids 0..top) of one patch."""
    rng = np.random.default_rng(seed)
    return {
        "s2": rng.integers(0, 10000, (months, bands, size, size), dtype=np.int16),
        "enmap": rng.integers(0, 8000, (enmap_bands, size // 3, size // 3), dtype=np.int16),
        "label": rng.integers(0, top + 1, (levels, size, size), dtype=np.uint8),
        "prior": rng.integers(0, top + 1, (levels, size, size), dtype=np.uint8),
    }


def write_h5(path: Path, arrays: dict[str, Any], spelling: str = "loader") -> Path:
    """Write the parts of ``arrays`` (``None`` values left out) under one key spelling."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        for part, data in arrays.items():
            if data is not None:
                file.create_dataset(SPELLINGS[spelling].get(part, part), data=data)
        file.create_dataset("S2_date", data=np.arange(12))
    return path


@pytest.fixture
def make_patch(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_patch(name, spelling="loader", **overrides)`` writes one HDF5 patch."""

    def make(name: str = "p.h5", spelling: str = "loader", seed: int = 0, **overrides: Any) -> Path:
        arrays: dict[str, Any] = patch_arrays(seed=seed)
        arrays.update(overrides)
        return write_h5(tmp_path / name, arrays, spelling)

    return make
