"""The ``sdrl`` command line: one entry point, one module per sub-command.

Each sub-command module has ``add_parser(subparsers)``, which registers its parser and sets
``func`` to a function ``(args) -> int``; :mod:`sdrl.cli.train` registers one training command
per task of :mod:`sdrl.tasks.registry`. Sub-commands stay thin: they parse, then call library
functions. Errors from bad input (:class:`~sdrl.errors.SdrlError`) are printed without a
traceback and the exit status is 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import sys
from collections.abc import Sequence

from sdrl import __version__
from sdrl.cli.config import apply_config
from sdrl.errors import ConfigError, SdrlError, describe_os_error, one_line

__all__ = ["build_parser", "main"]

COMMANDS = ("synth", "prep", "info", "train", "crop", "evaluate", "predict", "export", "demo")
"""Sub-command modules, in ``--help`` order; ``train`` adds one command per registered task."""


def build_parser() -> argparse.ArgumentParser:
    """The full ``sdrl`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sdrl",
        description="Self-supervised pretraining for remote-sensing change detection.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"sdrl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print warnings")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"sdrl.cli.{name}")
        register = getattr(module, "add_parsers", None) or module.add_parser
        register(subparsers)
    for sub in subparsers.choices.values():
        _finish(sub)
    return parser


def _finish(parser: argparse.ArgumentParser) -> None:
    """Every (sub-)command: ``--config`` and ``--debug``, and full flag names only.

    Abbreviated flags are refused (``--max-step`` is not ``--max-steps``): a prefix that
    is unique today can become ambiguous, or silently mean another flag, when a flag is added.
    """
    parser.allow_abbrev = False
    if not any(a.dest == "config" for a in parser._actions):
        parser.add_argument("--config", metavar="YAML", help="YAML file of flag: value defaults")
        parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _finish(sub)


def _quiet_lightning(record: logging.LogRecord) -> bool:
    """Drop Lightning's information messages (Lightning sets its loggers to INFO on import)."""
    return record.levelno >= logging.WARNING or "lightning" not in record.name


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Bad input is one line on stderr, ``sdrl: error: ...``, and exit status 2: sdrl's own errors
    (:class:`~sdrl.errors.SdrlError`, first line only), usage errors of the flags, and the
    operating system's (disk full, permission denied, a path under a file: the path, the
    reason and what to do). ``--debug`` shows argparse's usage and the tracebacks instead.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status (0 success, 2 bad input, 130 interrupted).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        apply_config(parser, argv)
        args = _parse(parser, argv, debug)
        logging.basicConfig(
            level=logging.WARNING if args.quiet else logging.INFO,
            format="%(message)s",
            stream=sys.stderr,
        )
        if not debug:  # Lightning's banners, tips and model tables: shown with --debug
            for handler in logging.getLogger().handlers:
                handler.addFilter(_quiet_lightning)
        return int(args.func(args) or 0)
    except SdrlError as error:
        if debug:
            raise
        print(f"sdrl: error: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permission denied, a path under a file...
        if debug:
            raise
        print(f"sdrl: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        message = None if debug else loader_process_error(error)
        if message is None:
            raise
        print(f"sdrl: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sdrl: interrupted", file=sys.stderr)
        return 130


def loader_process_error(error: BaseException) -> str | None:
    """The one line of an sdrl error raised in a DataLoader worker process, else ``None``.

    torch re-raises a worker's exception in the main process by calling its class with the
    worker's traceback as the only argument; sdrl's errors take several arguments, so torch
    raises a ``RuntimeError("Caught DataError in DataLoader worker process 0. Original
    Traceback ...")`` instead. Its last line is the worker's ``module.Class: message``.
    """
    text = str(error)
    if not text.startswith("Caught ") or "DataLoader worker process" not in text:
        return None
    last = text.strip().splitlines()[-1]
    name, sep, message = last.partition(": ")
    if not sep or not name.startswith("sdrl."):
        return None
    return one_line(message)


def _parse(parser: argparse.ArgumentParser, argv: list[str], debug: bool) -> argparse.Namespace:
    """``parser.parse_args``, a usage error raised as one line (``--debug``: as argparse does)."""
    if debug:
        return parser.parse_args(argv)
    text = io.StringIO()
    try:
        with contextlib.redirect_stderr(text):
            return parser.parse_args(argv)
    except SystemExit as stop:
        lines = text.getvalue().strip().splitlines()
        if stop.code in (0, None) or not lines:
            sys.stderr.write(text.getvalue())
            raise
        prog, _, message = lines[-1].partition(": error: ")
        raise ConfigError(f"{message or lines[-1]} (see {prog} --help)") from None
