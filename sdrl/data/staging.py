"""Atomic outputs: files and folders are built under a hidden name and renamed when complete.

A failed or interrupted run never leaves a file or a folder at ``--out`` that loads as
complete. Files (:func:`write_atomic`, :func:`atomic_copy`, :func:`write_json_atomic`) are
written into a temporary file in the target's own folder, flushed and synced, then renamed
over the target with ``os.replace`` (atomic on POSIX and Windows within one file system);
the folder is synced after. Folders (:func:`staged_dir`) are built in a hidden sibling.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

from sdrl.errors import DataError, describe_os_error

__all__ = ["atomic_copy", "staged_dir", "write_atomic", "write_json_atomic"]


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform opens folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``.

    Args:
        path: The target file (its folder is created).
        write: Writes the contents into the binary file object it is given.

    Raises:
        DataError: The file cannot be written (disk full, no permission...): nothing changed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    watched: _Watched | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:
            watched = _Watched(file)
            write(cast(IO[bytes], watched))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as failure:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        # disk full, permission denied, a folder that is a file... (torch.save reports a
        # failed write of its file as a RuntimeError: the file's own error is the reason)
        error = watched.error if watched is not None and watched.error else failure
        if isinstance(error, OSError):
            found = describe_os_error(error)
            raise DataError(path, "a file that can be written", found) from failure
        raise
    _fsync_dir(path.parent)


class _Watched:
    """A file whose failed writes are remembered (a caller may report them as another error)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def atomic_copy(source: str | Path, target: str | Path) -> None:
    """Copy a file so that ``target`` is always either the old file or a complete copy."""
    with open(source, "rb") as src:
        write_atomic(Path(target), lambda dst: shutil.copyfileobj(src, dst, 1 << 20))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON so that ``path`` is never a partial file."""
    text = json.dumps(data, indent=2) + "\n"
    write_atomic(Path(path), lambda file: file.write(text.encode()))
    return Path(path)


@contextmanager
def staged_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` only if the block succeeds.

    Args:
        out: The final folder.
        overwrite: Replace an existing non-empty ``out`` (only once the new one is complete).

    Yields:
        The staging folder (``.<name>.partial-<pid>`` next to ``out``).

    Raises:
        DataError: ``out`` exists and is not empty, and ``overwrite`` is false; or it cannot
            be created or replaced (a path under a file, no permission).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "a folder path for the output", "a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        hint = "Pass --overwrite or another --out"
        raise DataError(out, "a new or empty output folder", "a folder with files", hint)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
    except OSError as error:
        expected = "an output folder that can be created"
        raise DataError(out, expected, describe_os_error(error)) from error
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}" if out.exists() else None
    try:
        if old is not None:
            os.rename(out, old)
        os.rename(staging, out)
    except OSError as error:
        if old is not None and old.exists() and not out.exists():
            os.rename(old, out)  # the previous output stays as it was
        shutil.rmtree(staging, ignore_errors=True)
        expected = "an output folder that can be replaced"
        raise DataError(out, expected, describe_os_error(error)) from error
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
