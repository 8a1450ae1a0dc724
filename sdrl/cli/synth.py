"""``sdrl synth``: placeholder while it is written (removed before landing)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl synth``."""
    parser = subparsers.add_parser("synth", help="(in progress)")
    parser.set_defaults(func=lambda args: 1)
