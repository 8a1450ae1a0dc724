"""Atomic output folders: build in a hidden sibling folder, rename when complete.

A failed or interrupted run never leaves a folder at ``--out`` that loads as complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sdrl.errors import DataError

__all__ = ["staged_dir"]


@contextmanager
def staged_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` only if the block succeeds.

    Args:
        out: The final folder.
        overwrite: Replace an existing non-empty ``out`` (only once the new one is complete).

    Yields:
        The staging folder (``.<name>.partial-<pid>`` next to ``out``).

    Raises:
        DataError: ``out`` exists and is not empty, and ``overwrite`` is false.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "a folder path for the output", "a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        hint = "Pass --overwrite or another --out"
        raise DataError(out, "a new or empty output folder", "a folder with files", hint)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        os.rename(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, out)
