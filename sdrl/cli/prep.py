"""``sdrl prep``: placeholder while it is written (removed before landing)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl prep``."""
    parser = subparsers.add_parser("prep", help="(in progress)")
    parser.set_defaults(func=lambda args: 1)
