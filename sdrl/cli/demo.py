"""``sdrl demo``: placeholder while it is written (removed before landing)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl demo``."""
    parser = subparsers.add_parser("demo", help="(in progress)")
    parser.set_defaults(func=lambda args: 1)
