"""The one check of an output path, made by every command that writes before it does any work.

An output must never destroy an input: :func:`check_output` refuses an output path that *is*
an input, that *contains* one (a folder that ``--overwrite`` would replace, with the input
inside it), or that lies *inside an input folder* (a dataset folder's ``A/``, a raw folder):
inputs are read-only, files and folders alike. It also refuses what cannot be written at all
(a path under a regular file, a file where a folder is wanted or the reverse, a folder
without write permission), so that a command fails before it computes anything. Nothing is
created here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sdrl.errors import DataError

__all__ = ["check_output"]


def _existing_ancestor(path: Path) -> Path:
    """The nearest part of ``path`` (itself included) that exists."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and folder in path.parents


def check_output(
    out: str | Path,
    inputs: Iterable[str | Path | None] = (),
    *,
    folder: bool,
    flag: str = "--out",
    noun: str | None = None,
) -> Path:
    """Refuse an output path that would overwrite an input or cannot be written.

    Args:
        out: The output file or folder.
        inputs: The command's input files and folders (``None`` entries are skipped).
        folder: Whether the output is a folder (else a file).
        flag: The option that named ``out``, for messages.
        noun: What the output is, for messages ("run folder"); "output folder" or "output
            file" by default.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        DataError: ``out`` is an input, holds an input, lies inside an input folder, lies under
            a regular file, is a file where a folder is wanted (or the reverse), or its
            nearest existing folder is not writable.
    """
    out = Path(out)
    target = out.resolve()
    noun = noun or ("output folder" if folder else "output file")
    what = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        found = None
        if target == source:
            found = f"the input {given}"
        elif _inside(source, target):
            found = f"a folder holding the input {given}"
        elif source.is_dir() and _inside(target, source):
            found = f"a path inside the input folder {given}"
        if found is not None:
            hint = f"Inputs are never overwritten; choose another {flag}"
            raise DataError(out, f"{flag}: {what} apart from the inputs", found, hint)
    if os.path.lexists(out):
        if folder and not out.is_dir():
            raise DataError(out, f"{flag}: {what}", "a file")
        if not folder and out.is_dir():
            raise DataError(out, f"{flag}: {what}", "a folder")
    base = _existing_ancestor(out.parent)  # where the temporary output is made
    if not base.is_dir():
        hint = f"A folder cannot be made under a file; choose another {flag}"
        raise DataError(base, f"a folder to hold the {noun} {flag} {out}", "a regular file", hint)
    if not os.access(base, os.W_OK | os.X_OK):
        expected = f"a writable folder for the {noun} {flag} {out}"
        raise DataError(base, expected, "no write permission")
    return out
