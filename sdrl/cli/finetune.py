"""``sdrl finetune``: change-detection finetuning on a change dataset folder (Lightning)."""

from __future__ import annotations

import argparse

from sdrl.cli.train_flags import add_training_flags, config_values, parse_option, tame_lightning
from sdrl.train.finetune_config import FinetuneConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl finetune``."""
    parser = subparsers.add_parser(
        "finetune",
        help="finetune a change-detection model (siamese or early-fusion U-Net)",
        description=(
            "Train a change model on a change dataset folder (A/ B/ label/). RUN receives "
            "config.yaml (the resolved settings, a valid --config), last.ckpt, best.ckpt (best "
            "val F1; train loss without validation), metrics.csv, train_subset.json (the "
            "training tiles of --label-fraction) and, with --logger wandb, wandb/. --resume "
            "continues exactly. The checkpoints feed sdrl evaluate and sdrl predict."
        ),
    )
    groups = add_training_flags(
        parser,
        data_help="change dataset folder",
        backbone_default=None,
        backbone_help="siamese encoder: resnet18, resnet50, swin_t, or a test size "
        "(resnet_tiny); default: the one of --init, else resnet18",
        batch_size=8,
    )
    main = groups["run"]
    main.add_argument(
        "--init",
        default="random",
        metavar="random|PATH",
        help="encoder initialisation: random (default), an sdrl pretraining or finetuning "
        "checkpoint, an sdrl export folder or a torchvision state-dict file",
    )
    model = parser.add_argument_group("model and loss")
    model.add_argument("--model", default="siamese", choices=("siamese", "unet"))
    model.add_argument(
        "--fusion", choices=("absdiff", "concat"), help="siamese fusion (default absdiff)"
    )
    model.add_argument(
        "--head",
        choices=("fpn", "linear"),
        help="siamese head: fpn (default) or linear (linear probe: encoder frozen throughout)",
    )
    model.add_argument(
        "--model-option",
        action="append",
        metavar="KEY=VALUE",
        help="further model option, value as YAML (repeatable), e.g. decoder_channels=64, "
        "base_width=16 (unet)",
    )
    model.add_argument(
        "--freeze-encoder-epochs", type=int, default=0, help="epochs with a frozen encoder first"
    )
    model.add_argument(
        "--loss",
        default="ce",
        choices=("ce", "bce-dice"),
        help="ce: 2-class cross-entropy (default); bce-dice: 1 logit, BCE + soft Dice",
    )
    model.add_argument(
        "--change-weight",
        default="auto",
        metavar="auto|none|W",
        help="weight of the change class: auto = sqrt(unchanged/changed pixels of the "
        "training labels), none = 1, or a number",
    )
    data = groups["data"]
    data.add_argument(
        "--label-fraction",
        type=float,
        default=1.0,
        metavar="F",
        help="share of the training tiles used, 0 < F <= 1 (deterministic for the seed)",
    )
    data.add_argument("--label-seed", type=int, help="seed of the tile subset (default --seed)")
    data.add_argument(
        "--cache-stats",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write computed band statistics into DIR/dataset.json (default on)",
    )
    groups["logs"].add_argument(
        "--early-stopping-patience",
        type=int,
        metavar="N",
        help="stop after N validations without a better val F1",
    )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    """The :class:`FinetuneConfig` of parsed ``sdrl finetune`` flags."""
    values = config_values(args, FinetuneConfig, {"model_options"})
    options = dict(parse_option(t, "--model-option") for t in args.model_option or [])
    return FinetuneConfig(**values, model_options=options)


def run(args: argparse.Namespace) -> int:
    """Run the finetuning and print where the results are."""
    from sdrl.train.finetune import finetune
    from sdrl.train.loggers import is_global_zero

    tame_lightning(args.quiet)
    result = finetune(config_from_args(args))
    if is_global_zero():
        score = "n/a" if result.best_score is None else f"{result.best_score:.4f}"
        print(
            f"finetuned {result.global_step} steps ({result.epochs} epochs) in "
            f"{result.seconds:.1f} s: {result.last_checkpoint}, {result.best_checkpoint} "
            f"({result.monitor} {score} at step {result.best_step})"
        )
    return 0
