"""Argument types of the hand-written sub-commands: numbers checked for their range on parsing.

argparse runs them on the command line's text, and :func:`~sdrl.cli.config.config_value` on
the values of a ``--config`` file, so a bad number is refused the same way from both, before
a command does anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__ = [
    "PRECISION_CHOICES",
    "add_inference_flags",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "probability",
    "show_progress",
]


def _number(kind: type, test: Callable[[float], bool], what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}") from None
        if value != value or not test(value):  # NaN fails every range
            raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


positive_int = _number(int, lambda v: v > 0, "an integer > 0")
"""An integer of at least 1 (sizes, counts)."""

non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
"""An integer of at least 0 (overlaps, worker counts)."""

positive_float = _number(float, lambda v: 0 < v < float("inf"), "a finite number > 0")
"""A finite number above 0 (scales, pixel sizes)."""

non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0")
"""A finite number of at least 0 (strengths, rates)."""

probability = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
"""A number in ``[0, 1]`` (thresholds, fractions)."""


PRECISION_CHOICES = ("auto", "32", "bf16", "16")
"""``--precision`` values: :data:`sdrl.predict.inference.PRECISIONS` (a test checks they agree),
spelled here so that building the parser imports no torch."""


def add_inference_flags(parser: argparse.ArgumentParser, unit: str = "tiles") -> None:
    """The flags every inference command shares (``sdrl predict``, ``evaluate``, ``crop ...``).

    ``--batch-size`` (``unit`` per pass), ``--device``, ``--precision`` and ``--progress-bar``
    (read back by :func:`show_progress`).
    """
    parser.add_argument(
        "--batch-size", type=positive_int, default=4, help=f"{unit} per pass (default 4)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISION_CHOICES,
        help="model precision, the same in every inference command (default auto: bf16 autocast "
        "on a GPU that supports it, else 16; 32 on CPU)",
    )
    parser.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        help="a progress bar on stderr (default: on a terminal, unless -q)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw a progress bar: as ``--(no-)progress-bar`` says, else on a tty."""
    if args.progress_bar is not None:
        return bool(args.progress_bar)
    return not getattr(args, "quiet", False) and sys.stderr.isatty()
