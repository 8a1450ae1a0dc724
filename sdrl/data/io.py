"""Raster reading and writing, all through rasterio (GeoTIFF, PNG and anything GDAL reads).

Arrays are always band-first: an image is ``(C, H, W)`` with ``C`` bands, a label ``(H, W)``.
Every function that fails on a user's file raises :class:`~sdrl.errors.DataError` naming the
file, what was expected and what was found.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.warp import reproject
from rasterio.windows import Window

from sdrl.errors import DataError

__all__ = [
    "Raster",
    "RasterInfo",
    "Window",
    "align_to",
    "check_same_grid",
    "open_raster",
    "read_info",
    "read_raster",
    "stack_bands",
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
        """``(H, W)`` bool: pixels where no band equals nodata (all true without nodata)."""
        if self.nodata is None:
            return np.ones(self.data.shape[1:], dtype=bool)
        if np.isnan(self.nodata):
            return ~np.isnan(self.data).any(axis=0)
        return ~(self.data == self.nodata).all(axis=0)


def _band_names(src: DatasetReader) -> tuple[str, ...]:
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
        band_names=_band_names(src),
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
        names = _band_names(src)
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data)
                if band_names is not None and driver == "GTiff":
                    for i, name in enumerate(band_names, start=1):
                        dst.set_band_description(i, name)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".aux.xml")):
            if leftover.exists():
                leftover.unlink()
    return path


def _same_crs(a: CRS | None, b: CRS | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(a == b)


def check_same_grid(reference: RasterInfo, other: RasterInfo, align: bool = False) -> bool:
    """Check that two rasters can be paired pixel by pixel.

    Args:
        reference: The raster whose grid is kept (the "before" image).
        other: The raster to pair with it.
        align: Whether the caller can reproject ``other`` onto ``reference``'s grid.

    Returns:
        ``True`` when the grids are identical, ``False`` when they differ but ``align`` allows
        reprojection.

    Raises:
        DataError: The grids differ and ``align`` is false, or they cannot be aligned
            (one is georeferenced and the other not).
    """
    same_crs = _same_crs(reference.crs, other.crs)
    same_shape = (reference.height, reference.width) == (other.height, other.width)
    same_transform = reference.transform.almost_equals(other.transform, precision=1e-6)
    if same_crs and same_shape and same_transform:
        return True
    if reference.georeferenced != other.georeferenced:
        raise DataError(
            other.path,
            f"a georeferenced raster like {reference.path.name} to align it",
            "no CRS" if not other.georeferenced else "a CRS where the reference has none",
        )
    if not reference.georeferenced:
        raise DataError(
            other.path,
            f"size {reference.height}x{reference.width} like {reference.path.name}",
            f"{other.height}x{other.width} (plain images without CRS cannot be aligned)",
        )
    if not align:
        what = (
            f"CRS {other.crs}"
            if not same_crs
            else f"grid {other.height}x{other.width} "
            f"at {other.transform.c:.2f},{other.transform.f:.2f}"
        )
        expected = (
            f"the grid of {reference.path.name} (CRS {reference.crs}, "
            f"{reference.height}x{reference.width})"
        )
        raise DataError(other.path, expected, what, "Pass --align to reproject it onto that grid")
    return False


def align_to(
    path: str | Path,
    reference: RasterInfo,
    resampling: Resampling = Resampling.bilinear,
    window: Window | None = None,
    nodata: float | None = None,
) -> Raster:
    """Read a raster reprojected onto another raster's grid (CRS, transform and size).

    Args:
        path: The raster to reproject.
        reference: The grid to land on.
        resampling: Resampling method (``nearest`` for labels and masks).
        window: Window of the reference grid to read; the whole grid when ``None``.
        nodata: Fill value where the source has no data; default the source's nodata, else 0.

    Returns:
        A :class:`Raster` of ``(C, h, w)`` on the reference grid.
    """
    path = Path(path)
    with open_raster(path) as src:
        if src.crs is None or reference.crs is None:
            raise DataError(path, "a georeferenced raster to align", "no CRS")
        fill = nodata if nodata is not None else (src.nodata if src.nodata is not None else 0)
        if window is None:
            window = Window(0, 0, reference.width, reference.height)
        transform = rasterio.windows.transform(window, reference.transform)
        data = np.full((src.count, int(window.height), int(window.width)), fill, src.dtypes[0])
        # GDAL's warper through rasterio.warp.reproject: a WarpedVRT read of a whole multi-band
        # raster in one call was seen to deviate from it by several DN (GDAL 3.10).
        reproject(
            rasterio.band(src, list(range(1, src.count + 1))),
            data,
            src_nodata=src.nodata,
            dst_transform=transform,
            dst_crs=reference.crs,
            dst_nodata=fill,
            resampling=resampling,
        )
        return Raster(
            data=data,
            band_names=_band_names(src),
            nodata=fill,
            crs=reference.crs,
            transform=transform,
        )


def stack_bands(
    paths: Sequence[str | Path],
    band_names: Sequence[str] | None = None,
    reference: int | None = None,
    resampling: Resampling = Resampling.bilinear,
    dtype: str | None = None,
) -> Raster:
    """Stack single-band files of different resolutions onto one grid.

    The typical use is Sentinel-2, whose bands come at 10, 20 and 60 m: every band is
    resampled onto the grid of the finest one (or of ``paths[reference]``).

    Args:
        paths: One file per band, in output band order (each file's first band is used).
        band_names: Names for the output bands; the files' stems when ``None``.
        reference: Index into ``paths`` of the grid to use; when ``None``, the finest
            resolution (or, if some file has no CRS, the largest grid).
        resampling: How coarser bands are brought onto the grid.
        dtype: Output dtype; the widest of the inputs when ``None``.

    Returns:
        A :class:`Raster` of ``(len(paths), H, W)`` on the reference grid.
    """
    if not paths:
        raise ValueError("stack_bands needs at least one file")
    infos = [read_info(p) for p in paths]
    if reference is None and all(i.georeferenced for i in infos):
        reference = min(range(len(infos)), key=lambda i: infos[i].resolution[0])
    elif reference is None:  # no CRS to compare pixel sizes: the largest grid is the finest
        reference = max(range(len(infos)), key=lambda i: infos[i].height * infos[i].width)
    ref = infos[reference]
    out_dtype = np.dtype(dtype) if dtype is not None else np.result_type(*[i.dtype for i in infos])
    out = np.empty((len(paths), ref.height, ref.width), dtype=out_dtype)
    for i, info in enumerate(infos):
        if info.georeferenced and ref.georeferenced:
            same = check_same_grid(ref, info, align=True)
            if same:
                band = read_raster(info.path, bands=[1])
            else:
                band = align_to(info.path, ref, resampling)
        else:
            band = read_raster(info.path, bands=[1])
            if band.data.shape[1:] != (ref.height, ref.width):
                band = replace(band, data=_resize(band.data, (ref.height, ref.width), resampling))
        out[i] = band.data[0]
    names = tuple(band_names) if band_names is not None else tuple(Path(p).stem for p in paths)
    return Raster(out, names, nodata=ref.nodata, crs=ref.crs, transform=ref.transform)


def _resize(data: np.ndarray, shape: tuple[int, int], resampling: Resampling) -> np.ndarray:
    """Resample a ``(C, h, w)`` array without georeferencing to ``(C, *shape)``."""
    out = np.zeros((data.shape[0], *shape), dtype=data.dtype)
    src_transform = Affine.scale(shape[1] / data.shape[2], shape[0] / data.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        reproject(
            data,
            out,
            src_transform=src_transform,
            dst_transform=Affine.identity(),
            src_crs="EPSG:3857",
            dst_crs="EPSG:3857",
            resampling=resampling,
        )
    return out
