"""Reading one ⚑ crop patch: an H2Crop HDF5 file.

==============================  ====================  =====  =================================
key (either spelling)           shape                 dtype  what
==============================  ====================  =====  =================================
``S2`` or ``S2_data``           ``(12, 10, H, W)``    int16  monthly Sentinel-2 composites,
                                                             January..December, bands B02 B03
                                                             B04 B05 B06 B07 B08 B8A B11 B12
``EnMAP`` or ``EnMAP_data``     ``(218, H/3, W/3)``   int16  EnMAP cube, 30 m, same footprint
``label``                       ``(4, H, W)``         uint8  one map per taxonomy level
                                                             (0 = background)
``prior`` or ``priors``         ``(4, H, W)``         uint8  the previous year's labels
==============================  ====================  =====  =================================

H2Crop's README and its loader spell the keys differently; both are accepted. Other keys
(``S2_date``, ``EnMAP_cloud``) are ignored. Only the requested parts are read, and of the
Sentinel-2 series only the first ``months`` composites.

Shape letters: ``T`` months, ``C`` Sentinel-2 bands, ``E`` EnMAP bands, ``L`` taxonomy levels,
``H``/``W`` rows/columns at 10 m.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdrl.errors import DataError, one_line

__all__ = ["KEYS", "CropPatch", "find_key", "patch_shapes", "read_patch"]

KEYS: dict[str, tuple[str, ...]] = {
    "s2": ("S2", "S2_data"),
    "enmap": ("EnMAP", "EnMAP_data"),
    "label": ("label",),
    "prior": ("prior", "priors"),
}
"""Accepted spellings of each part's key, the README's first."""


@dataclass
class CropPatch:
    """One patch, raw values as float32 and labels as int64.

    Attributes:
        s2: ``(T, C, H, W)`` float32 Sentinel-2 series (raw values, not normalised).
        enmap: ``(E, H/3, W/3)`` float32 EnMAP cube (raw values), or ``None`` when not read.
        label: ``(L, H, W)`` int64 class ids per level (0 = background), or ``None`` when not
            read.
        prior: ``(L, H, W)`` int64 previous year's class ids, or ``None`` when not read.
    """

    s2: np.ndarray
    enmap: np.ndarray | None
    label: np.ndarray | None
    prior: np.ndarray | None


def find_key(file: Any, part: str, path: str | Path) -> str:
    """The key under which an open HDF5 file stores ``part`` (``s2``, ``enmap``, ...).

    Raises:
        DataError: No accepted spelling is present; the message lists the keys found.
    """
    for key in KEYS[part]:
        if key in file:
            return key
    spellings = " or ".join(KEYS[part])
    raise DataError(path, f"a dataset {spellings} in the HDF5 file", f"keys {sorted(file.keys())}")


def _open(path: Path) -> Any:
    """``h5py.File(path, "r")``, a failure as one line naming the file."""
    import h5py  # imported here: the command line's parser stays light

    if not path.is_file():
        raise DataError(path, "an HDF5 patch file", "no such file")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataError(path, "a readable HDF5 file", one_line(error)) from error


def _dataset(file: Any, part: str, path: Path, ndim: int, layout: str) -> tuple[str, Any]:
    key = find_key(file, part, path)
    data = file[key]
    if not hasattr(data, "shape") or len(data.shape) != ndim:
        found = f"shape {tuple(data.shape)}" if hasattr(data, "shape") else "a group"
        raise DataError(path, f"{key} with {ndim} dimensions {layout}", found)
    return key, data


def _labels(file: Any, part: str, path: Path, size: tuple[int, int]) -> np.ndarray:
    key, data = _dataset(file, part, path, 3, "(L, H, W)")
    if data.dtype.kind not in "iu":
        raise DataError(path, f"{key} of integer class ids", f"dtype {data.dtype}")
    if tuple(data.shape[1:]) != size:
        raise DataError(
            path,
            f"{key} of shape (L, {size[0]}, {size[1]}) like the Sentinel-2 series",
            f"shape {tuple(data.shape)}",
        )
    return np.asarray(data[()], dtype=np.int64)


def read_patch(
    path: str | Path,
    months: int,
    *,
    enmap: bool = True,
    priors: bool = False,
    labels: bool = True,
) -> CropPatch:
    """Read a patch file.

    Args:
        path: The HDF5 file.
        months: Number ``T`` of leading monthly composites to read (January onwards).
        enmap: Read the EnMAP cube.
        priors: Read the previous year's labels.
        labels: Read the label maps (``False`` for patches to predict, which may have none).

    Returns:
        The :class:`CropPatch`.

    Raises:
        DataError: One line naming the file: a missing key (with the spellings tried and the
            keys found), a wrong number of dimensions, shapes that disagree (labels and priors
            must be ``(L, H, W)`` and EnMAP ``(E, H/3, W/3)``), labels that are not integers,
            or fewer months in the file than ``months``.
    """
    path = Path(path)
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    file = _open(path)
    with file:
        key, s2 = _dataset(file, "s2", path, 4, "(T, C, H, W)")
        if s2.shape[0] < months:
            raise DataError(
                path,
                f"at least {months} monthly composites in {key} (months={months})",
                f"{s2.shape[0]} (shape {tuple(s2.shape)})",
                f"Ask for at most {s2.shape[0]} months",
            )
        height, width = int(s2.shape[2]), int(s2.shape[3])
        series = np.asarray(s2[:months], dtype=np.float32)
        label = _labels(file, "label", path, (height, width)) if labels else None
        prior = _labels(file, "prior", path, (height, width)) if priors else None
        if prior is not None and label is not None and prior.shape[0] != label.shape[0]:
            raise DataError(
                path, f"priors of {label.shape[0]} levels like label", f"shape {prior.shape}"
            )
        cube = None
        if enmap:
            key, data = _dataset(file, "enmap", path, 3, "(E, H/3, W/3)")
            if height % 3 or width % 3 or tuple(data.shape[1:]) != (height // 3, width // 3):
                expected = (
                    f"{key} of shape (E, {height // 3}, {width // 3}) for {height}x{width} "
                    "Sentinel-2 pixels (EnMAP's 30 m grid is 3x coarser)"
                    if not (height % 3 or width % 3)
                    else f"a Sentinel-2 size that is a multiple of 3, found {height}x{width}, for"
                    f" the EnMAP grid {key}"
                )
                raise DataError(path, expected, f"shape {tuple(data.shape)}")
            cube = np.asarray(data[()], dtype=np.float32)
    return CropPatch(s2=series, enmap=cube, label=label, prior=prior)


def patch_shapes(path: str | Path) -> dict[str, tuple[int, ...] | None]:
    """Shapes of the parts of a patch file, read from its header (no pixel is read).

    Args:
        path: The HDF5 file.

    Returns:
        ``{"s2": (T, C, H, W), "enmap": (E, h, w) or None, "label": (L, H, W),
        "prior": (L, H, W) or None}``; parts the file lacks are ``None``.

    Raises:
        DataError: The file cannot be read or lacks the Sentinel-2 series.
    """
    path = Path(path)
    file = _open(path)
    with file:
        shapes: dict[str, tuple[int, ...] | None] = {}
        for part in KEYS:
            present = [k for k in KEYS[part] if k in file]
            if not present and part == "s2":
                find_key(file, part, path)  # raises the one-line error
            shapes[part] = tuple(int(n) for n in file[present[0]].shape) if present else None
    return shapes
