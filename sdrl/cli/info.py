"""``sdrl info DIR``: summarise a dataset folder."""

from __future__ import annotations

import argparse

from sdrl.cli.types import positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl info``."""
    parser = subparsers.add_parser(
        "info",
        help="summarise a dataset folder (splits, bands, statistics, class shares)",
        description="Summarise a dataset folder; computes and caches dataset.json if missing.",
    )
    parser.add_argument("data", metavar="DIR", help="dataset folder (A/ B/ label/ list/)")
    parser.add_argument(
        "--max-tiles", type=positive_int, default=64, help="tiles read to count classes (64)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary."""
    from sdrl.data.summary import summarize  # imported here: `sdrl --help` stays fast

    print(summarize(args.data, max_tiles=args.max_tiles))
    return 0
