"""``sdrl demo``: does sdrl pretraining help? The whole story on the built-in data engine."""

from __future__ import annotations

import argparse

from sdrl.cli.types import positive_int, probability


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="does sdrl pretraining help? The whole story on built-in data (under 10 min on a "
        "laptop CPU)",
        description="Generate bitemporal scenes with the data engine, preview augmented "
        "batches, pretrain with sdrl and with the DetCon baseline (same steps), export the "
        "sdrl backbone, finetune change detection on a small label fraction from random, "
        "DetCon and sdrl weights (same budget, one run per seed), evaluate them on the test "
        "split, predict a change map and write report.md: data, budget, seeds, machine, F1/IoU "
        "per initialisation, figures and an answer computed from the scores. The default "
        "budget is a smoke test (under 10 minutes on 2 CPU cores), which the report says.",
    )
    parser.add_argument("--out", default="demo_out", help="demo folder (default: demo_out)")
    parser.add_argument(
        "--num", type=positive_int, default=100, help="scenes per dataset (default 100)"
    )
    parser.add_argument(
        "--size", type=positive_int, default=64, help="scene size, multiple of 32 (64)"
    )
    parser.add_argument("--backbone", default="resnet18", help="backbone (default resnet18)")
    parser.add_argument(
        "--pretrain-steps",
        type=positive_int,
        default=300,
        help="steps of each pretraining, sdrl and DetCon (300)",
    )
    parser.add_argument(
        "--finetune-steps", type=positive_int, default=60, help="steps of each finetuning (60)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="batch size (8; finetuning: at most the labelled tiles)",
    )
    parser.add_argument(
        "--label-fraction",
        type=probability,
        default=0.2,
        help="share of the change training tiles with labels (0.2)",
    )
    parser.add_argument(
        "--finetune-seeds",
        type=positive_int,
        default=2,
        help="finetuning runs per initialisation, seeds SEED, SEED+1... (2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data, pretraining, first finetuning")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its answer, its table and where its outputs are."""
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
        finetune_seeds=args.finetune_seeds,
    )
    for name, path in result.datasets.items():
        print(f"{name} dataset: {path}")
    for path in result.previews:
        print(f"preview: {path}")
    seeds = ", ".join(map(str, result.settings.seeds))
    print(f"test scores of the change models (mean over finetuning seeds {seeds}):")
    labels = {"random": "from random weights", "sdrl": "from pretrained sdrl"}
    for init, metrics in result.metrics.items():
        label = labels.get(init, f"from pretrained {init}")
        print(f"  {label:<24} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    print(result.verdict.replace("**", ""))
    print(f"sdrl backbone export: {result.export}")
    print(f"change map: {result.change_map}")
    print(f"report: {result.report} (figures: {', '.join(str(p) for p in result.figures)})")
    print("times: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    return 0
