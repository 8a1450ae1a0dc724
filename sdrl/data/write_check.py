"""Checked raster writes: GDAL's write errors raised, the closed file verified.

rasterio raises some of GDAL's write errors and only logs others: a full disk typically shows
up when GDAL flushes its block cache as the file is closed, and the write then "succeeds"
with a truncated or empty file. :func:`gdal_write_errors` turns every GDAL error during a
write (raised or logged) into one :class:`~sdrl.errors.DataError` naming the file, and
:func:`verify_written` checks the closed file (shape, dtype, every block present) before it
is renamed onto its final name. Used by :func:`~sdrl.data.io.write_raster` and the change-map
writer of ``sdrl predict``.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rasterio
from rasterio.enums import Interleaving
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from sdrl.errors import DataError, one_line

__all__ = ["GdalErrorTrap", "gdal_write_errors", "verify_written"]

_GDAL_LOGGERS = ("rasterio._env", "rasterio._err", "rasterio._io", "rasterio._base")
_SIGNALLED = "GDAL signalled an error"
_WRITE_HINT = "Check the free space and the permissions of its folder"


class GdalErrorTrap(logging.Filter):
    """Takes GDAL's errors out of rasterio's log records (the write then raises them).

    Only the records of the threads that write are taken (the one that entered
    :func:`gdal_write_errors`, and those that call :meth:`watch`), so that a reading thread's
    errors stay its own.
    """

    def __init__(self, levels: dict[str, int]) -> None:
        super().__init__()
        self.levels = levels
        self.messages: list[str] = []
        self.threads = {threading.get_ident()}

    def watch(self) -> None:
        """Collect the errors of the calling thread too (a writing thread)."""
        self.threads.add(threading.get_ident())

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep a GDAL error of a watched thread (``False``: not logged); pass the rest."""
        text = record.getMessage()
        ours = record.thread in self.threads
        if ours and (record.levelno >= logging.ERROR or text.startswith(_SIGNALLED)):
            self.messages.append(text.split("msg=", 1)[-1].strip("'\" "))
            return False
        return record.levelno >= self.levels.get(record.name, logging.NOTSET)


def _found(error: BaseException | None, messages: list[str]) -> str:
    parts = [f"'{one_line(error)}'"] if error is not None else []
    if messages:
        parts.append(f"GDAL: '{one_line(messages[0])}'" + (" ..." if len(messages) > 1 else ""))
    return "a write error " + " ".join(parts)


@contextmanager
def gdal_write_errors(path: str | Path) -> Iterator[GdalErrorTrap]:
    """Raise a :class:`DataError` for every GDAL error while ``path`` is written or closed.

    rasterio raises some GDAL write errors and only logs others (those at closing time: a full
    disk shows up when GDAL flushes its cache). The block runs in a rasterio environment, so
    that GDAL reports to rasterio's loggers instead of printing; their error records are
    collected (and kept out of the log), and any error, raised or logged, becomes one
    :class:`DataError` naming ``path``.

    Args:
        path: The file being written (for the message).

    Yields:
        The trap; a thread that writes to the file calls its ``watch()``.

    Raises:
        DataError: GDAL reported an error, or the block raised a rasterio or OS error.
    """
    loggers = [logging.getLogger(name) for name in _GDAL_LOGGERS]
    saved = [(logger, logger.level) for logger in loggers]
    trap = GdalErrorTrap({logger.name: logger.getEffectiveLevel() for logger in loggers})
    for logger in loggers:
        logger.addFilter(trap)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # rasterio logs GDAL's errors at INFO
    try:
        with rasterio.Env():
            yield trap
    except (RasterioError, OSError) as error:
        raise DataError(
            path, "a raster file written completely", _found(error, trap.messages), _WRITE_HINT
        ) from error
    finally:
        for logger, level in saved:
            logger.removeFilter(trap)
            logger.setLevel(level)
    if trap.messages:
        raise DataError(
            path, "a raster file written completely", _found(None, trap.messages), _WRITE_HINT
        )


def verify_written(
    path: str | Path, shape: tuple[int, ...], dtype: str, name: str | Path | None = None
) -> None:
    """Check a raster just written and closed: it opens with ``shape`` and every block is there.

    A GeoTIFF's block index must point inside the file for every block (a write that failed
    at closing time leaves blocks at offset 0 or past the end of the file); other formats
    (PNG) are decoded whole.

    Args:
        path: The written file (its temporary name).
        shape: ``(C, H, W)`` written.
        dtype: NumPy dtype name written.
        name: The final name, for the message (``path`` when ``None``).

    Raises:
        DataError: The file does not open, has another shape or dtype, or lacks blocks.
    """
    path = Path(path)
    where = Path(name) if name is not None else path
    expected = f"a complete {'x'.join(map(str, shape))} {dtype} raster after writing"
    size = path.stat().st_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(path) as src:
                found = (src.count, src.height, src.width)
                if found != tuple(shape) or src.dtypes[0] != dtype:
                    text = f"{'x'.join(map(str, found))} {src.dtypes[0]}"
                    raise DataError(where, expected, text, _WRITE_HINT)
                if src.driver != "GTiff":
                    src.read()
                    return
                bands = [1] if src.interleaving == Interleaving.pixel else src.indexes
                for band in bands:
                    for (row, col), _ in src.block_windows(band):
                        key = f"{col}_{row}"
                        offset = src.get_tag_item(f"BLOCK_OFFSET_{key}", "TIFF", bidx=band)
                        length = src.get_tag_item(f"BLOCK_SIZE_{key}", "TIFF", bidx=band)
                        if not offset or int(offset) + int(length or 0) > size:
                            found_text = f"block {row},{col} of band {band} missing ({size} bytes)"
                            raise DataError(where, expected, found_text, _WRITE_HINT)
        except RasterioError as error:
            raise DataError(where, expected, f"'{one_line(error)}'", _WRITE_HINT) from error
