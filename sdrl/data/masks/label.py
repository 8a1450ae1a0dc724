"""Masks from label rasters: class ids checked against the declared values, ignore mapped.

A label raster may sit on another grid than the image (a coarser land-cover product, another
CRS): when both are georeferenced it is reprojected onto the image grid with nearest
resampling, so no new class values appear. Pixels outside the label raster, the file's nodata
value and the declared ignore value all become :data:`~sdrl.data.samples.IGNORE_INDEX`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from sdrl.data.grid import align_to, check_same_grid
from sdrl.data.io import RasterInfo, read_info, read_raster
from sdrl.data.samples import IGNORE_INDEX
from sdrl.errors import DataError

__all__ = ["LabelRaster", "encode_labels", "label_mask"]

log = logging.getLogger(__name__)


def encode_labels(
    raw: np.ndarray,
    path: str | Path | None,
    values: Sequence[int] | None = None,
    ignore_values: Sequence[float] = (),
) -> np.ndarray:
    """Turn raw label values into class ids.

    Args:
        raw: ``(H, W)`` raw label values (any numeric dtype holding integers).
        path: The file they came from, for error messages.
        values: Declared raw values in class order: ``values[i]`` becomes class ``i``. When
            ``None``, raw values are class ids and must lie in ``0..254``.
        ignore_values: Raw values that mean "not labelled" (become :data:`IGNORE_INDEX`).

    Returns:
        ``(H, W)`` uint8 class ids, :data:`IGNORE_INDEX` where ignored.

    Raises:
        DataError: A pixel holds a value that is neither declared nor ignored.
    """
    ignore = np.isin(raw, [v for v in ignore_values if v is not None])
    if raw.dtype.kind == "f":
        ignore |= np.isnan(raw)
    if values is None:
        declared = f"class ids 0..{IGNORE_INDEX - 1}"
        ok = (raw >= 0) & (raw < IGNORE_INDEX) & (raw == np.round(raw))
        ids = np.where(ok, raw, 0).astype(np.uint8)
    else:
        declared = f"label values {list(values)}"
        if len(values) > IGNORE_INDEX:
            raise ValueError(f"at most {IGNORE_INDEX} classes, got {len(values)}")
        lut = {int(v): i for i, v in enumerate(values)}
        ok = np.isin(raw, list(lut))
        ids = np.zeros(raw.shape, dtype=np.uint8)
        for value, cls in lut.items():
            ids[raw == value] = cls
    bad = ~ok & ~ignore
    if bad.any():
        found = np.unique(raw[bad])
        shown = ", ".join(f"{v:g}" for v in found[:10].tolist())
        shown += " ..." if found.size > 10 else ""
        if ignore_values:
            listed = ", ".join(f"{v:g}" for v in ignore_values if v is not None)
            declared += f" (or {listed} = ignore)"
        raise DataError(
            path,
            declared,
            f"undeclared values {shown} in {int(bad.sum())} pixels",
            "Declare every class (--classes / --label-values) or the ignore value (--ignore-value)",
        )
    ids[ignore] = IGNORE_INDEX
    return ids


class LabelRaster:
    """A single-band label raster read window by window on a reference grid.

    Args:
        path: The label raster (GeoTIFF, PNG...).
        reference: The image grid the mask must land on.
        values: Declared raw values in class order (see :func:`encode_labels`); ``None`` when
            raw values are class ids.
        ignore_value: Raw value meaning "not labelled", besides the file's own nodata value.

    Raises:
        DataError: The file is not single-band, or its grid differs from the reference and
            one of them has no CRS (plain images cannot be aligned).
    """

    def __init__(
        self,
        path: str | Path,
        reference: RasterInfo,
        values: Sequence[int] | None = None,
        ignore_value: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.reference = reference
        self.values = list(values) if values is not None else None
        self.info = read_info(self.path)
        if self.info.count != 1:
            raise DataError(self.path, "a single-band label raster", f"{self.info.count} bands")
        shape = (self.info.height, self.info.width)
        if not self.info.georeferenced and shape == (reference.height, reference.width):
            self.same_grid = True  # a plain label image (PNG) of the image's size: pixel-aligned
        else:
            self.same_grid = check_same_grid(reference, self.info, align=True)
        ignore = [v for v in (ignore_value, self.info.nodata) if v is not None]
        if not self.same_grid:
            # Pixels of the reference grid outside the label raster are filled with this value.
            self.fill = ignore[0] if ignore else IGNORE_INDEX
            ignore.append(self.fill)
            log.info("%s: on another grid than %s, aligned (nearest)", self.path, reference.path)
        self.ignore_values = tuple(dict.fromkeys(ignore))
        if self.values is not None:
            clash = sorted(set(self.values) & set(self.ignore_values))
            if clash:
                raise DataError(
                    self.path,
                    f"class values distinct from the ignore values {list(self.ignore_values)}",
                    f"{clash} declared as classes",
                )

    def read(self, window: Window | None = None) -> np.ndarray:
        """Class ids of a window of the reference grid.

        Args:
            window: Window of the reference grid; all of it when ``None``.

        Returns:
            ``(h, w)`` uint8 class ids, :data:`IGNORE_INDEX` where ignored or not covered.
        """
        if self.same_grid:
            raw = read_raster(self.path, window=window).data[0]
        else:
            raster = align_to(
                self.path, self.reference, Resampling.nearest, window=window, nodata=self.fill
            )
            raw = raster.data[0]
        return encode_labels(raw, self.path, self.values, self.ignore_values)


def label_mask(
    path: str | Path,
    reference: RasterInfo,
    values: Sequence[int] | None = None,
    ignore_value: float | None = None,
    window: Window | None = None,
) -> np.ndarray:
    """Read a label raster as class ids on the reference grid.

    Args:
        path: The label raster.
        reference: The image whose grid the mask must match; a georeferenced label on another
            grid is aligned with nearest resampling.
        values: Declared raw values in class order; ``None`` when raw values are class ids.
        ignore_value: Raw value meaning "not labelled" (the file's nodata is ignored too).
        window: Window of the reference grid; all of it when ``None``.

    Returns:
        ``(H, W)`` uint8 class ids, :data:`IGNORE_INDEX` where ignored.

    Raises:
        DataError: Undeclared values (the message names the file, the declared and the found
            values), a multi-band file, or a grid that cannot be aligned.
    """
    return LabelRaster(path, reference, values, ignore_value).read(window)
