"""Windowed reading of a before/after pair on the before image's grid, normalised per band.

Shape letters: ``C`` bands, ``T`` tile size, ``h``/``w`` raster pixels inside a tile.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from sdrl.data.grid import check_same_grid
from sdrl.data.io import RasterInfo, open_raster, read_info, valid_mask
from sdrl.errors import DataError

__all__ = ["PairReader"]


class PairReader:
    """Read tiles of ``before`` and ``after`` on ``before``'s grid.

    ``after`` is reprojected on the fly (a GDAL warped VRT, window by window) when its grid
    differs and ``align`` allows it; pixels outside its footprint are nodata.

    Args:
        before: The reference raster (its grid is the output grid).
        after: The second date.
        mean: ``(C,)`` per-band means of the normalisation ``(x - mean) / std``.
        std: ``(C,)`` per-band standard deviations.
        align: Reproject ``after`` onto ``before``'s grid when they differ.
        stack: Where the open files are registered (closed when it closes).
        resampling: Resampling of ``after`` when it is reprojected.

    Raises:
        DataError: The grids differ and cannot or may not be aligned, the band counts differ,
            or ``mean``/``std`` do not have one value per band.
    """

    def __init__(
        self,
        before: str | Path,
        after: str | Path,
        mean: Sequence[float],
        std: Sequence[float],
        align: bool,
        stack: ExitStack,
        resampling: Resampling = Resampling.bilinear,
    ) -> None:
        self.info: RasterInfo = read_info(before)
        info_b = read_info(after)
        same = check_same_grid(self.info, info_b, align)
        if info_b.count != self.info.count:
            raise DataError(
                info_b.path,
                f"{self.info.count} bands like {self.info.path.name}",
                f"{info_b.count} bands",
            )
        if len(mean) != self.info.count or len(std) != self.info.count:
            raise DataError(
                self.info.path,
                f"as many bands as normalisation values ({len(mean)} means, {len(std)} stds)",
                f"{self.info.count} bands",
                "Pass the mean/std of the data the model was trained on, one per band",
            )
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        self.std = np.asarray(std, dtype=np.float32)[:, None, None]
        if not (self.std > 0).all():
            raise ValueError(f"std must be positive for every band, got {list(std)}")
        self.aligned = not same
        self.nodata = (self.info.nodata, info_b.nodata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._a: DatasetReader = stack.enter_context(open_raster(before))
            self._b: DatasetReader | WarpedVRT = stack.enter_context(open_raster(after))
        self._alpha = False
        if self.aligned:
            src = self._b
            self._alpha = src.nodata is None  # no nodata value: mark the footprint with alpha
            self._b = stack.enter_context(
                WarpedVRT(
                    src,
                    crs=self.info.crs,
                    transform=self.info.transform,
                    width=self.info.width,
                    height=self.info.height,
                    resampling=resampling,
                    src_nodata=src.nodata,
                    nodata=src.nodata,
                    add_alpha=self._alpha,
                )
            )

    @property
    def count(self) -> int:
        """Bands ``C``."""
        return self.info.count

    def read(self, row: int, col: int, h: int, w: int, tile: int) -> np.ndarray:
        """Read one tile of both dates, normalised, nodata zeroed, padded to ``T × T``.

        Args:
            row: First raster row.
            col: First raster column.
            h: Rows inside the raster (``T`` unless the raster is smaller).
            w: Columns inside the raster.
            tile: Tile size ``T``; smaller reads are padded by reflection.

        Returns:
            ``(2C + 1, T, T)`` float32: A's ``C`` bands, B's ``C`` bands, then the validity
            of each pixel (1 valid, 0 nodata in A or B or padding). Pixels without data
            (:func:`~sdrl.data.io.valid_mask`: the nodata value, or any band not finite) are
            0 in every band of both dates.
        """
        window = Window(col, row, w, h)
        c = self.count
        out = np.empty((2 * c + 1, tile, tile), dtype=np.float32)
        a = self._a.read(window=window)
        valid = valid_mask(a, self.nodata[0])
        indexes = list(range(1, c + 2)) if self._alpha else None
        b = self._b.read(indexes, window=window)
        if self._alpha:
            valid &= b[c] > 0
            b = b[:c]
        valid &= valid_mask(b, self.nodata[1])
        all_valid = bool(valid.all())
        for k, data in enumerate((a, b)):
            image = out[k * c : (k + 1) * c, :h, :w]
            np.subtract(data, self.mean, out=image, casting="unsafe")
            image /= self.std
            if not all_valid:
                image[:, ~valid] = 0  # not `*= valid`: NaN * 0 is NaN
        out[2 * c, :h, :w] = valid
        if h < tile or w < tile:
            padded = np.pad(out[:, :h, :w], ((0, 0), (0, tile - h), (0, tile - w)), mode="reflect")
            padded[2 * c, h:] = 0
            padded[2 * c, :, w:] = 0
            return padded
        return out
