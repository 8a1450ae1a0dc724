"""Errors a user can act on.

Every error raised for bad input names the file (or flag), what was expected and what was
found, and where possible the fix. The command line prints these without a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class SdrlError(Exception):
    """Base class of the errors that the command line reports without a traceback."""


class DataError(SdrlError):
    """A file or folder does not hold what was expected."""

    def __init__(
        self,
        path: str | Path | None,
        expected: str,
        found: str,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.expected = expected
        self.found = found
        self.hint = hint
        where = f"{self.path}: " if self.path is not None else ""
        message = f"{where}expected {expected}, found {found}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class ConfigError(SdrlError):
    """A command-line flag or config value is invalid."""


def one_line(text: object) -> str:
    """The first non-empty line of a message (a parser's or torch's text can run to many).

    Args:
        text: The message (any object, as ``str`` of it).

    Returns:
        The first line, followed by ``...`` when lines were dropped (``--debug`` shows them).
    """
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[0] + (" ..." if len(lines) > 1 else "")


_OS_HINTS = {
    errno.ENOSPC: "Free some space or write somewhere else",
    errno.EDQUOT: "Free some space or write somewhere else",
    errno.EACCES: "Check the permissions or write somewhere else",
    errno.EPERM: "Check the permissions or write somewhere else",
    errno.EROFS: "The file system is read-only; write somewhere else",
    errno.ENOTDIR: "A part of the path is a regular file, not a folder",
    errno.EEXIST: "Something is already there; remove it or choose another path",
    errno.EISDIR: "It is a folder; give a file path",
}


def describe_os_error(error: OSError) -> str:
    """One line for an operating-system error: the path, what went wrong and what to do.

    Args:
        error: The error (``PermissionError``, ``NotADirectoryError``, disk full...).

    Returns:
        ``PATH: reason. Hint`` (``PATH -> PATH2`` for a failed rename).
    """
    reason = error.strerror or one_line(error) or type(error).__name__
    where = ""
    if error.filename is not None:
        where = f"{os.fsdecode(error.filename)}"
        if error.filename2 is not None:
            where += f" -> {os.fsdecode(error.filename2)}"
        where += ": "
    hint = _OS_HINTS.get(error.errno or 0)
    return f"{where}{one_line(reason)}" + (f". {hint}" if hint else "")
