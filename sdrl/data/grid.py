"""Raster grids: pairing, aligning and stacking rasters.

Checking that two rasters pair pixel by pixel, reprojecting one onto another's grid, and
stacking per-band files of different resolutions onto one grid.

Arrays are band-first ``(C, H, W)`` as in :mod:`sdrl.data.io`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import reproject
from rasterio.windows import Window

from sdrl.data.io import Raster, RasterInfo, band_names, open_raster, read_info, read_raster
from sdrl.errors import DataError

__all__ = ["align_to", "check_same_grid", "stack_bands"]


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
            band_names=band_names(src),
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
