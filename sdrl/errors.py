"""Errors a user can act on.

Every error raised for bad input names the file (or flag), what was expected and what was
found, and where possible the fix. The command line prints these without a traceback.
"""

from __future__ import annotations

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
