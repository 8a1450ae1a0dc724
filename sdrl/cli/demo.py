"""``sdrl demo``: the whole story on the built-in data engine."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="the whole story on built-in data (minutes on a laptop CPU)",
        description="Generate bitemporal scenes with the data engine, preview augmented batches, "
        "pretrain with the sdrl objective, finetune change detection from random and from "
        "pretrained weights, evaluate both and predict a georeferenced change map. The default "
        "budget shows the pipeline working end to end, not the accuracy of a real run.",
    )
    parser.add_argument("--out", default="demo_out", help="demo folder (default: demo_out)")
    parser.add_argument("--num", type=int, default=60, help="scenes per dataset (default 60)")
    parser.add_argument("--size", type=int, default=96, help="scene size, multiple of 32 (96)")
    parser.add_argument("--backbone", default="resnet18", help="backbone (default resnet18)")
    parser.add_argument("--pretrain-steps", type=int, default=30, help="pretraining steps (30)")
    parser.add_argument("--finetune-steps", type=int, default=30, help="finetuning steps (30)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (8)")
    parser.add_argument("--label-fraction", type=float, default=0.5, help="labels used (0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where its outputs are."""
    from sdrl.demo import run_demo  # imported here: `sdrl --help` stays fast

    result = run_demo(
        args.out,
        num=args.num,
        size=args.size,
        seed=args.seed,
        overwrite=args.overwrite,
        backbone=args.backbone,
        pretrain_steps=args.pretrain_steps,
        finetune_steps=args.finetune_steps,
        batch_size=args.batch_size,
        label_fraction=args.label_fraction,
    )
    for name, path in result.datasets.items():
        print(f"{name} dataset: {path}")
    for path in result.previews:
        print(f"preview: {path}")
    print("test metrics of the change models (after a few steps: the pipeline, not the accuracy):")
    for init, metrics in result.metrics.items():
        print(f"  from {init:<10} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    print(f"change map: {result.change_map}")
    print("times: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    return 0
