"""``sdrl demo``: the whole story on the built-in data engine."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="the whole story on built-in data (minutes on a laptop CPU)",
        description="Generate bitemporal scenes with the data engine, load and augment them, "
        "and write previews. Later stages (pretraining, finetuning) join as they land.",
    )
    parser.add_argument("--out", default="demo_out", help="demo folder (default: demo_out)")
    parser.add_argument("--num", type=int, default=40, help="scenes per dataset")
    parser.add_argument("--size", type=int, default=128, help="scene size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where its outputs are."""
    from sdrl.demo import run_demo  # imported here: `sdrl --help` stays fast

    result = run_demo(args.out, args.num, args.size, args.seed, args.overwrite)
    for name, path in result.datasets.items():
        print(f"{name} dataset: {path}")
    for path in result.previews:
        print(f"preview: {path}")
    print("times: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    return 0
