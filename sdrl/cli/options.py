"""Flags generated from a task's config dataclass, and the config built back from them.

The config dataclass (:class:`~sdrl.tasks.config.TrainConfig` and each task's) is the one
place that names an option: :func:`add_config_flags` turns each field declared with
:func:`~sdrl.tasks.config.option` into a flag (``max_steps`` → ``--max-steps``; ``Literal``
types become choices, ``bool`` an on/off flag, ``X | None`` an optional value) in its group,
and each :class:`~sdrl.tasks.config.OptionTable` into flags for its typed entries plus a
repeatable ``KEY=VALUE`` flag. :func:`config_from_args` builds the config from the parsed
flags. Nothing heavy is imported here, so that ``sdrl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from typing import Any

import yaml

from sdrl.cli.config import yaml_problem
from sdrl.errors import ConfigError, one_line
from sdrl.tasks.config import GROUPS, OptionSpec, TrainConfig, _strip_optional, field_choices

__all__ = ["add_config_flags", "config_from_args", "parse_option", "tame_lightning"]


def parse_option(text: str, flag: str = "--method-option") -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` (the value as YAML: ``0.1``, ``true``, ``[1, 2]``, ``c5``).

    Args:
        text: The flag's value.
        flag: The flag, for messages.

    Raises:
        ConfigError: No ``=`` or an unreadable value.
    """
    if "=" not in text:
        raise ConfigError(f"{flag}: expected KEY=VALUE, found {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"{flag} {text!r}: unreadable value ({yaml_problem(error)})") from None
    return key.strip().replace("-", "_"), value


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, found {text!r}"
        ) from None


def _help(text: str, default: Any, show: bool) -> str:
    if show and default is not None and not isinstance(default, bool):
        return f"{text} (default {default})" if text else f"(default {default})"
    return text


def _add_field(group: argparse._ArgumentGroup, cls: type, f: dataclasses.Field) -> None:
    meta = f.metadata
    flag = "--" + f.name.replace("_", "-")
    default = None if f.default is dataclasses.MISSING else f.default
    kwargs: dict[str, Any] = {"help": _help(meta["help"], default, meta["show_default"])}
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    tp, optional = _strip_optional(typing.get_type_hints(cls)[f.name])
    if tp is bool:
        kwargs.pop("metavar", None)
        if default is False and not optional:
            group.add_argument(flag, action="store_true", **kwargs)
        else:
            action = argparse.BooleanOptionalAction
            group.add_argument(flag, action=action, default=default, **kwargs)
        return
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        kwargs["required"] = True
    else:
        kwargs["default"] = default
    choices = field_choices(cls, f.name)
    if choices is not None:
        kwargs["choices"] = choices
        kwargs.pop("metavar", None)
    elif tp in (int, float):
        kwargs["type"] = tp
    group.add_argument(flag, **kwargs)


def _add_table_entry(group: argparse._ArgumentGroup, name: str, spec: OptionSpec) -> None:
    flag = "--" + name.replace("_", "-")
    if spec.type is list:
        group.add_argument(flag, type=_int_list, metavar="IDS", help=spec.help)
    elif spec.choices:
        group.add_argument(flag, choices=spec.choices, help=spec.help)
    elif spec.type in (int, float):
        group.add_argument(flag, type=spec.type, help=spec.help)
    else:
        group.add_argument(flag, help=spec.help)


def add_config_flags(parser: argparse.ArgumentParser, cls: type[TrainConfig]) -> None:
    """Add a flag for every option of the config dataclass ``cls`` (module doc).

    Args:
        parser: The command's parser.
        cls: The task's config class.
    """
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for f in dataclasses.fields(cls):
        if f.metadata.get("flag", False):
            group_name = f.metadata["group"]
            if group_name not in groups:
                groups[group_name] = parser.add_argument_group(group_name)
            _add_field(groups[group_name], cls, f)
    for table in cls.OPTION_TABLES.values():
        group = groups.get(table.title) or parser.add_argument_group(table.title)
        for name, spec in table.entries.items():
            _add_table_entry(group, name, spec)
        example = f", e.g. {table.example}" if table.example else ""
        group.add_argument(
            table.flag,
            action="append",
            metavar="KEY=VALUE",
            help=f"further option, value as YAML (repeatable){example}",
        )


def config_from_args(args: argparse.Namespace, cls: type[TrainConfig]) -> Any:
    """The config ``cls`` of parsed flags (option dicts gathered from their flags).

    ``progress_bar`` left unset becomes "on a terminal, unless ``-q``".

    Raises:
        ConfigError: An unreadable ``KEY=VALUE`` or a value the config refuses.
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in cls.OPTION_TABLES:
            table = cls.OPTION_TABLES[f.name]
            options = {
                k: getattr(args, k) for k in table.entries if getattr(args, k, None) is not None
            }
            dest = table.flag.removeprefix("--").replace("-", "_")
            for text in getattr(args, dest, None) or []:
                key, value = parse_option(text, table.flag)
                options[key] = value
            values[f.name] = options
        elif f.metadata.get("flag", False) and hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    if values.get("progress_bar") is None:
        values["progress_bar"] = not getattr(args, "quiet", False) and sys.stderr.isatty()
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:  # a value of the wrong type slipped through
        raise ConfigError(f"invalid settings: {one_line(error)}") from error


def _no_tips(record: logging.LogRecord) -> bool:
    return "Tip:" not in record.getMessage()


def tame_lightning(quiet: bool) -> None:
    """Drop Lightning's advertising tips; with ``-q`` its INFO lines too."""
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if _no_tips not in rank_zero.filters:
        rank_zero.addFilter(_no_tips)
    if quiet:
        for name in ("pytorch_lightning", "lightning_fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
