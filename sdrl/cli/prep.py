"""``sdrl prep``: build dataset folders from real rasters; one sub-command per recipe."""

from __future__ import annotations

import argparse

from sdrl.cli import prep_datasets, prep_pairs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl prep`` and its recipes."""
    parser = subparsers.add_parser(
        "prep",
        help="build a dataset folder from rasters (pairs, LEVIR-CD, WHU-CD, OSCD)",
        description="Build a ⚑ dataset folder (A/ B/ label/ list/ dataset.json) from rasters.",
    )
    recipes = parser.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    prep_pairs.add_parser(recipes)
    prep_datasets.add_parser(recipes)
