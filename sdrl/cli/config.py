"""YAML ``--config`` files whose keys the command-line flags override."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sdrl.errors import ConfigError

__all__ = ["apply_config", "find_config", "resolved_config"]


def find_config(argv: Sequence[str]) -> str | None:
    """Return the value of ``--config`` in ``argv``, if any."""
    for i, token in enumerate(argv):
        if token == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--config="):
            return token.split("=", 1)[1]
    return None


def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    for i, token in enumerate(argv):
        if token == flag and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def resume_config(argv: Sequence[str]) -> str | None:
    """``RUN/config.yaml`` when ``argv`` resumes a run (``--resume --out RUN``) and it exists.

    A resumed run then takes its saved settings, and only the flags given again change them.
    """
    if "--resume" not in argv:
        return None
    out = _flag_value(argv, "--out")
    if out is None:
        return None
    path = Path(out) / "config.yaml"
    return str(path) if path.is_file() else None


def _subparser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """Follow the sub-command names in ``argv`` down to the parser that will parse the flags."""
    current = parser
    for token in argv:
        actions = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or token.startswith("-"):
            continue
        if token in actions[0].choices:
            current = actions[0].choices[token]
    return current


def apply_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Load the ``--config`` YAML of ``argv`` and make its keys the sub-command's defaults.

    Keys are flag names with ``-`` or ``_`` (``max-steps`` or ``max_steps``). Flags given on the
    command line still win. A flag that is required may come from the file instead. Without
    ``--config``, ``--resume --out RUN`` uses the run's saved ``RUN/config.yaml``.

    Raises:
        ConfigError: The file is unreadable, not a mapping, or has keys no flag takes.
    """
    explicit = find_config(argv)
    path = explicit or resume_config(argv)
    if path is None:
        return
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: expected a readable YAML file, found '{error}'") from error
    if loaded is None:
        return
    if not isinstance(loaded, dict):
        found = type(loaded).__name__
        raise ConfigError(f"{path}: expected a mapping of flag: value, found {found}")
    target = _subparser(parser, argv)
    by_dest = {a.dest: a for a in target._actions if a.dest not in ("help", "config")}
    values: dict[str, Any] = {}
    for key, value in loaded.items():
        dest = str(key).replace("-", "_")
        if dest not in by_dest and explicit is None:
            continue  # a saved run of another command: its own checks explain the mismatch
        if dest not in by_dest:
            known = ", ".join(sorted(d.replace("_", "-") for d in by_dest if not d.startswith("_")))
            raise ConfigError(f"{path}: unknown key '{key}'; this command takes: {known}")
        values[dest] = value
        by_dest[dest].required = False
    target.set_defaults(**values)


def resolved_config(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags as a plain dict for saving (private entries and functions dropped)."""
    out: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key.startswith("_") or callable(value) or key in ("config", "debug"):
            continue
        out[key.replace("_", "-")] = str(value) if isinstance(value, Path) else value
    return out
