"""Atomic, window-by-window writing of a change map.

The destination is opened once, as a temporary file next to ``out``; rows are written as the
strip buffer releases them; on success the file is renamed onto ``out``, on any error it is
deleted. A half-written map never sits at ``out``.

Bands (GeoTIFF keeps one data type for all of a file's bands):

=================  =====================================================================
``outputs``        file bands
=================  =====================================================================
probability        ``change_probability`` float32 in [0, 1]
binary             ``change`` uint8, 1 where probability > threshold, else 0
both               both bands, float32 (the binary band holds 0.0 / 1.0)
=================  =====================================================================

Nodata pixels are :data:`NODATA` (255) in every band, recorded as the file's nodata value.
Compression is deflate (level 1; horizontal differencing for the binary-only uint8 map, none
for float32, where the float predictor costs 40% more time for 4% smaller files).

Encoding and compression run in a background thread (GDAL releases the GIL) while the model
works on the next tiles; at most :data:`IN_FLIGHT` pieces wait for it, so memory stays flat.
A ``.png`` destination (no georeferencing, whole image buffered by GDAL: small rasters only)
holds the binary band alone.
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from sdrl.data.outputs import check_output
from sdrl.data.write_check import gdal_write_errors, verify_written
from sdrl.errors import DataError

__all__ = ["BAND_NAMES", "NODATA", "OUTPUTS", "ChangeMapWriter", "check_output_path"]

NODATA = 255
"""Nodata value of every band of a change map."""

OUTPUTS = ("probability", "binary")
"""The bands a change map can hold, in file order."""

BAND_NAMES = {"probability": "change_probability", "binary": "change"}
"""Band description of each output."""

BLOCK = 256
"""GeoTIFF block size (tiles of ``BLOCK × BLOCK``)."""

IN_FLIGHT = 4
"""Pieces handed to the writing thread and not yet written, at most."""

_SUFFIXES = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG"}


def check_output_path(out: Path, outputs: Sequence[str], inputs: Sequence[Path] = ()) -> str:
    """Check that a change map can be written to ``out``, before any computation.

    Args:
        out: The destination file.
        outputs: Requested bands (a subset of :data:`OUTPUTS`).
        inputs: Files that must not be overwritten.

    Returns:
        The GDAL driver name.

    Raises:
        DataError: Unknown suffix, ``out`` is a folder, an input or holds one (the shared
            :func:`~sdrl.data.outputs.check_output`), or its folder cannot be created or
            written.
        ValueError: ``outputs`` is empty, has unknown names, or asks a PNG for probabilities.
    """
    if not outputs or any(o not in OUTPUTS for o in outputs) or len(set(outputs)) < len(outputs):
        raise ValueError(f"outputs must be a non-empty subset of {OUTPUTS}, got {tuple(outputs)}")
    driver = _SUFFIXES.get(out.suffix.lower())
    if driver is None:
        raise DataError(out, f"an output file ending in one of {sorted(_SUFFIXES)}", out.suffix)
    if driver == "PNG" and tuple(outputs) != ("binary",):
        raise ValueError(f"{out}: a PNG holds only the binary map; use .tif for probabilities")
    check_output(out, inputs, folder=False)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(out.parent, "a folder that can be created", f"'{error}'") from error
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise DataError(out.parent, "a writable output folder", "no write permission")
    return driver


class ChangeMapWriter:
    """Write a change map row block by row block into a temporary file, then rename it.

    Use as a context manager: the temporary file is created on entry (so an unwritable
    destination fails before any computation) and renamed onto ``out`` only if the block
    exits without an exception.

    Args:
        out: The destination (``.tif``/``.tiff`` or ``.png``).
        height: Raster rows ``H``.
        width: Raster columns ``W``.
        crs: CRS of the map (``None`` for plain images).
        transform: Its affine transform.
        outputs: Bands to write (see the module docstring).
        threshold: Probability above which a pixel is change in the binary band.
        tags: Metadata recorded in the file (stitching, tile size...).
    """

    def __init__(
        self,
        out: str | Path,
        height: int,
        width: int,
        crs: CRS | None,
        transform: Affine,
        outputs: Sequence[str] = OUTPUTS,
        threshold: float = 0.5,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self.out = Path(out)
        self.driver = check_output_path(self.out, outputs)
        self.outputs = tuple(o for o in OUTPUTS if o in outputs)
        self.threshold = threshold
        self.tags = dict(tags or {})
        self.dtype = np.float32 if "probability" in self.outputs else np.uint8
        self.profile: dict[str, Any] = {
            "driver": self.driver,
            "height": height,
            "width": width,
            "count": len(self.outputs),
            "dtype": np.dtype(self.dtype).name,
        }
        if self.driver == "GTiff":
            self.profile.update(
                crs=crs,
                transform=transform,
                nodata=NODATA,
                compress="deflate",
                zlevel=1,
                predictor=1 if self.dtype == np.float32 else 2,
                bigtiff="IF_SAFER",
            )
            if height >= BLOCK and width >= BLOCK:
                self.profile.update(tiled=True, blockxsize=BLOCK, blockysize=BLOCK)
        self.tmp = self.out.with_name(f".{self.out.stem}.tmp{os.getpid()}{self.out.suffix}")
        self._dst: DatasetWriter | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._errors: ExitStack | None = None
        self.changed = 0
        self.valid = 0

    def __enter__(self) -> ChangeMapWriter:
        errors = ExitStack()
        trap = errors.enter_context(gdal_write_errors(self.out))  # raised, not only logged
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dst = rasterio.open(self.tmp, "w", **self.profile)
        except (RasterioError, OSError) as error:
            errors.close()
            self._cleanup()
            raise DataError(self.out, "a writable output file", f"'{error}'") from error
        self._errors = errors
        self._pool = ThreadPoolExecutor(1, "sdrl-write", initializer=trap.watch)
        return self

    def write(self, row: int, col: int, prob: np.ndarray) -> None:
        """Write a finished piece of the map.

        Args:
            row: Its first raster row.
            col: Its first raster column.
            prob: ``(h, w)`` float32 change probability, NaN at nodata.
        """
        assert self._pool is not None, "use ChangeMapWriter as a context manager"
        while len(self._pending) >= IN_FLIGHT:
            self._pending.popleft().result()  # re-raises a failed write
        self._pending.append(self._pool.submit(self._write, row, col, prob))

    def _write(self, row: int, col: int, prob: np.ndarray) -> None:
        assert self._dst is not None
        nodata = np.isnan(prob)
        change = prob > self.threshold
        self.changed += int(np.count_nonzero(change))
        self.valid += prob.size - int(np.count_nonzero(nodata))
        bands = np.empty((len(self.outputs), *prob.shape), dtype=self.dtype)
        for k, name in enumerate(self.outputs):
            bands[k] = prob if name == "probability" else change
            np.copyto(bands[k], NODATA, where=nodata)
        self._dst.write(bands, window=Window(col, row, prob.shape[1], prob.shape[0]))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            try:
                self._finish(kind)
            except BaseException as failure:  # close errors join those of GDAL (one message)
                if self._errors is None or not self._errors.__exit__(
                    type(failure), failure, failure.__traceback__
                ):
                    raise
            else:
                if self._errors is not None:
                    self._errors.__exit__(kind, error, traceback)  # raises GDAL's errors
            if kind is None:
                shape = (len(self.outputs), self.profile["height"], self.profile["width"])
                verify_written(self.tmp, shape, self.profile["dtype"], self.out)
                os.replace(self.tmp, self.out)
        finally:
            self._dst = self._pool = self._errors = None
            self._pending.clear()
            self._cleanup()

    def _finish(self, kind: type[BaseException] | None) -> None:
        """Wait for the writing thread, write the descriptions and tags, close the file."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=kind is not None)
            for pending in self._pending:
                if kind is None:
                    pending.result()  # re-raises a failed write
        if self._dst is not None:
            if kind is None and self.driver == "GTiff":
                for k, name in enumerate(self.outputs, start=1):
                    self._dst.set_band_description(k, BAND_NAMES[name])
                pixels = self.profile["height"] * self.profile["width"]
                self._dst.update_tags(
                    **self.tags, valid_pixels=self.valid, nodata_pixels=pixels - self.valid
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dst.close()

    def _cleanup(self) -> None:
        for leftover in (self.tmp, self.tmp.with_name(self.tmp.name + ".aux.xml")):
            if leftover.exists():
                leftover.unlink()
