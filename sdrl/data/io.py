"""Raster reading and writing, all through rasterio (GeoTIFF, PNG and anything GDAL reads).

Arrays are always band-first: an image is ``(C, H, W)`` with ``C`` bands, a label ``(H, W)``.
Every function that fails on a user's file raises :class:`~sdrl.errors.DataError` naming the
file, what was expected and what was found.

One nodata policy for the whole package (:func:`valid_mask`): a pixel has no data when every
band equals the declared nodata value, or when any band is not finite (NaN, ±inf). Readers
exclude such pixels everywhere (datasets, evaluation, prediction, ``sdrl prep``) and the
outputs count them.

Writes never report success for a broken file: GDAL's write errors, which rasterio often only
logs (a full disk surfaces when the file is closed), are raised
(:func:`~sdrl.data.write_check.gdal_write_errors`), the closed file is checked
(:func:`~sdrl.data.write_check.verify_written`), and only then is it renamed onto its name.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from sdrl.data.write_check import gdal_write_errors, verify_written
from sdrl.errors import DataError

__all__ = [
    "Raster",
    "RasterInfo",
    "Window",
    "band_names",
    "open_raster",
    "read_info",
    "read_raster",
    "valid_mask",
    "write_raster",
]

_COLOR_NAMES = {
    ColorInterp.red: "red",
    ColorInterp.green: "green",
    ColorInterp.blue: "blue",
    ColorInterp.alpha: "alpha",
}
_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG"}


@dataclass(frozen=True)
class RasterInfo:
    """What a raster holds, without its pixels.

    Attributes:
        path: The file.
        count: Number of bands ``C``.
        height: Rows ``H``.
        width: Columns ``W``.
        dtype: NumPy dtype name of the pixels (``"uint8"``, ``"float32"``...).
        band_names: One name per band: the file's band descriptions, else its colour
            interpretation (``red``/``green``/``blue``), else ``band_1``, ``band_2``...
        nodata: The nodata value, or ``None``.
        crs: Coordinate reference system, or ``None`` for plain images (PNG).
        transform: Affine pixel-to-map transform (identity for plain images).
    """

    path: Path
    count: int
    height: int
    width: int
    dtype: str
    band_names: tuple[str, ...]
    nodata: float | None
    crs: CRS | None
    transform: Affine

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return (self.count, self.height, self.width)

    @property
    def georeferenced(self) -> bool:
        """Whether the raster has a CRS."""
        return self.crs is not None

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size ``(x, y)`` in CRS units (positive numbers)."""
        return (abs(self.transform.a), abs(self.transform.e))


@dataclass(frozen=True)
class Raster:
    """Pixels and their georeferencing.

    Attributes:
        data: ``(C, H, W)`` array.
        band_names: One name per band.
        nodata: The nodata value, or ``None``.
        crs: Coordinate reference system, or ``None``.
        transform: Affine transform of ``data[:, 0, 0]``'s corner.
    """

    data: np.ndarray
    band_names: tuple[str, ...]
    nodata: float | None
    crs: CRS | None
    transform: Affine

    @property
    def valid(self) -> np.ndarray:
        """``(H, W)`` bool: pixels with data (:func:`valid_mask`)."""
        return valid_mask(self.data, self.nodata)


def valid_mask(data: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Pixels with data: not every band equal to ``nodata``, and every band finite.

    The package's one nodata policy: non-finite values (NaN, ±inf) are nodata whether or not
    the file declares a nodata value.

    Args:
        data: ``(C, H, W)`` pixels.
        nodata: The declared nodata value, or ``None``.

    Returns:
        ``(H, W)`` bool, true where the pixel has data.
    """
    valid = np.ones(data.shape[1:], dtype=bool)
    if data.dtype.kind in "fc":
        valid &= np.isfinite(data).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(data == nodata).all(axis=0)
    return valid


def band_names(src: DatasetReader) -> tuple[str, ...]:
    """Band names of an open raster: descriptions, else RGB colour interpretation, else band_i."""
    names = []
    colors = src.colorinterp
    for i, description in enumerate(src.descriptions):
        if description:
            names.append(description)
        elif src.count >= 3 and colors[i] in _COLOR_NAMES:
            names.append(_COLOR_NAMES[colors[i]])
        else:
            names.append(f"band_{i + 1}")
    return tuple(names)


def _info(src: DatasetReader, path: Path) -> RasterInfo:
    return RasterInfo(
        path=path,
        count=src.count,
        height=src.height,
        width=src.width,
        dtype=src.dtypes[0],
        band_names=band_names(src),
        nodata=src.nodata,
        crs=src.crs,
        transform=src.transform,
    )


@contextmanager
def open_raster(path: str | Path) -> Iterator[DatasetReader]:
    """Open a raster for reading, turning GDAL's failures into a :class:`DataError`.

    Args:
        path: Any file GDAL reads (GeoTIFF, PNG, JPEG, VRT...).

    Yields:
        The open rasterio dataset.

    Raises:
        DataError: The file is missing, not a raster, or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "an existing raster file", "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioError as error:
        raise DataError(path, "a raster GDAL can read (GeoTIFF, PNG...)", f"'{error}'") from error
    try:
        with src:
            yield src
    except RasterioError as error:
        raise DataError(path, "a complete, readable raster", f"a read error '{error}'") from error


def read_info(path: str | Path) -> RasterInfo:
    """Read a raster's metadata (no pixels).

    Args:
        path: The raster file.

    Returns:
        Its :class:`RasterInfo`.
    """
    with open_raster(path) as src:
        return _info(src, Path(path))


def read_raster(
    path: str | Path,
    window: Window | None = None,
    bands: Sequence[int] | None = None,
    boundless: bool = False,
    fill_value: float | None = None,
) -> Raster:
    """Read a raster, or a window of it, band-first.

    Args:
        path: The raster file.
        window: Pixel window to read (``Window(col_off, row_off, width, height)``); the whole
            raster when ``None``.
        bands: 1-based band indexes to read; all bands when ``None``.
        boundless: Allow a window that extends past the raster; the outside is filled with
            ``fill_value`` (default: the file's nodata, else 0).
        fill_value: Value for pixels outside the raster when ``boundless``.

    Returns:
        A :class:`Raster` whose ``data`` is ``(C, h, w)`` in the file's dtype and whose
        ``transform`` is the window's.
    """
    path = Path(path)
    with open_raster(path) as src:
        indexes = list(bands) if bands is not None else list(range(1, src.count + 1))
        for index in indexes:
            if not 1 <= index <= src.count:
                raise DataError(path, f"band indexes in 1..{src.count}", f"band {index}")
        if fill_value is None:
            fill_value = src.nodata if src.nodata is not None else 0
        data = src.read(indexes, window=window, boundless=boundless, fill_value=fill_value)
        names = band_names(src)
        transform = src.window_transform(window) if window is not None else src.transform
        return Raster(
            data=data,
            band_names=tuple(names[i - 1] for i in indexes),
            nodata=src.nodata,
            crs=src.crs,
            transform=transform,
        )


def write_raster(
    path: str | Path,
    data: np.ndarray,
    crs: CRS | str | None = None,
    transform: Affine | None = None,
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
    compress: str | None = "deflate",
) -> Path:
    """Write a ``(C, H, W)`` or ``(H, W)`` array atomically (temporary file, then rename).

    The driver follows the suffix: ``.tif``/``.tiff`` → GeoTIFF (CRS, transform, nodata and
    band names kept), ``.png`` → PNG (8/16-bit, no georeferencing).

    Args:
        path: Output file; its folder must exist.
        data: ``(C, H, W)`` or ``(H, W)`` array; its dtype is kept.
        crs: Coordinate reference system (a rasterio ``CRS`` or a string like ``"EPSG:32633"``).
        transform: Affine transform; identity when ``None``.
        nodata: Nodata value to record.
        band_names: One description per band.
        compress: GeoTIFF compression (``None`` for none).

    Returns:
        The written path.
    """
    path = Path(path)
    driver = _DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise DataError(path, f"a file name ending in one of {sorted(_DRIVERS)}", path.suffix)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"write_raster takes (C, H, W) or (H, W) arrays, got shape {data.shape}")
    if band_names is not None and len(band_names) != data.shape[0]:
        raise ValueError(f"{len(band_names)} band names for {data.shape[0]} bands")
    profile: dict[str, Any] = {
        "driver": driver,
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": data.dtype.name,
    }
    if driver == "GTiff":
        profile.update(
            crs=CRS.from_user_input(crs) if crs is not None else None,
            transform=transform if transform is not None else Affine.identity(),
            nodata=nodata,
        )
        if compress:
            profile["compress"] = compress
            if compress.lower() in ("deflate", "zstd", "lzw"):
                # differencing makes imagery compress better; level 1 is twice as fast as 6
                profile["predictor"] = 3 if data.dtype.kind == "f" else 2
                if compress.lower() != "lzw":
                    profile["zlevel" if compress.lower() == "deflate" else "zstd_level"] = 1
        if data.shape[1] >= 256 and data.shape[2] >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        if data.shape[0] > 1 and data.dtype == np.uint8 and data.shape[0] in (3, 4):
            profile["photometric"] = "RGB" if data.shape[0] == 3 else "MINISBLACK"
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        with gdal_write_errors(path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(tmp, "w", **profile) as dst:
                    dst.write(data)
                    if band_names is not None and driver == "GTiff":
                        for i, name in enumerate(band_names, start=1):
                            dst.set_band_description(i, name)
            verify_written(tmp, data.shape, data.dtype.name, path)
            os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".aux.xml")):
            if leftover.exists():
                leftover.unlink()
    return path
