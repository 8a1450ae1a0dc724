"""YAML ``--config`` files whose keys the command-line flags override."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sdrl.errors import ConfigError, one_line

__all__ = ["apply_config", "config_value", "find_config", "resolved_config", "yaml_problem"]


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
        ConfigError: The file is unreadable, not a mapping, has keys no flag takes, or values
            the flag's own parsing refuses (:func:`config_value`).
    """
    explicit = find_config(argv)
    path = explicit or resume_config(argv)
    if path is None:
        return
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"{path}: expected a readable YAML file, found '{error}'") from error
    except yaml.YAMLError as error:
        found = yaml_problem(error)
        raise ConfigError(f"{path}: expected a readable YAML file, found {found}") from error
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
        values[dest] = config_value(by_dest[dest], value, f"{path}: '{key}'")
        by_dest[dest].required = False
    target.set_defaults(**values)


def yaml_problem(error: yaml.YAMLError) -> str:
    """One line for a YAML parser error: the problem and where it is."""
    problem = getattr(error, "problem", None) or getattr(error, "context", None)
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    text = one_line(problem or error)
    if mark is not None:
        text += f" at line {mark.line + 1}, column {mark.column + 1}"
    return text


def _kind(action: argparse.Action) -> str:
    if action.choices is not None:
        return "one of " + ", ".join(map(str, action.choices))
    kind = getattr(action.type, "__name__", None) if action.type is not None else None
    return {"int": "an integer", "float": "a number", "str": "a text"}.get(
        str(kind), f"a value for {action.option_strings[0] if action.option_strings else kind}"
    )


def config_value(action: argparse.Action, value: Any, where: str) -> Any:
    """Check a config-file value as the flag's own parsing would, types first, then choices.

    A YAML file holds typed values (numbers, lists, booleans), which argparse would take as
    defaults without its ``type=`` and ``choices`` checks; each value goes through them here.

    Args:
        action: The flag's argparse action.
        value: The value from the file.
        where: File and key, for messages.

    Returns:
        The value as the flag would have parsed it (a number or text as if typed on the
        command line).

    Raises:
        ConfigError: A value of the wrong type (a list for a number...), out of range, or not
            among the choices.
    """
    flag = action.option_strings[0] if action.option_strings else action.dest

    def refuse(found: Any) -> ConfigError:
        return ConfigError(f"{where}: expected {_kind(action)} for {flag}, found {found!r}")

    if value is None:
        return None
    if action.nargs == 0:  # on/off flags
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false for {flag}, found {value!r}")
        return value
    parse = action.type if callable(action.type) else None
    if action.nargs not in (None, "?") or isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        single = argparse.Action(
            action.option_strings, action.dest, type=parse, choices=action.choices
        )
        return [config_value(single, item, where) for item in items]
    scalar = getattr(parse, "__name__", "str") in ("int", "float", "str")  # sdrl.cli.types too
    if (
        isinstance(value, list)
        and parse is not None
        and not scalar
        and all(isinstance(v, str | int) for v in value)
    ):
        try:  # a comma-list flag (--foreground-ids 1,2) written as a YAML list
            return parse(",".join(map(str, value)))
        except (argparse.ArgumentTypeError, TypeError, ValueError):
            raise refuse(value) from None
    if isinstance(value, dict | list) or (isinstance(value, bool) and parse is not bool):
        raise refuse(value)
    if not isinstance(value, str | int | float):
        raise refuse(value)  # dates and other YAML scalars
    converted: Any = value if isinstance(value, str) else str(value)
    if parse is not None:
        try:
            converted = parse(converted)
        except argparse.ArgumentTypeError as error:
            raise ConfigError(f"{where}: {flag}: {one_line(error)}") from None
        except (TypeError, ValueError):
            raise refuse(value) from None
    if action.choices is not None and converted not in action.choices:
        raise refuse(value)
    return converted


def resolved_config(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags as a plain dict for saving (private entries and functions dropped)."""
    out: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key.startswith("_") or callable(value) or key in ("config", "debug"):
            continue
        out[key.replace("_", "-")] = str(value) if isinstance(value, Path) else value
    return out
