"""``sdrl pretrain``: self-supervised pretraining on a dataset folder (PyTorch Lightning)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Any

import yaml

from sdrl.errors import ConfigError
from sdrl.train.config import METHOD_NAMES, METHOD_OPTIONS, PretrainConfig

_FLOAT_OPTIONS = {"temperature", "decouple_weight", "margin", "swap_weight", "momentum"}
_INT_OPTIONS = {"hidden_dim", "output_dim", "memory_bank_size", "fpn_channels"}
_CHOICES = {
    "decouple": ("cos", "hinge", "orthogonal"),
    "anchors": ("all", "foreground"),
    "level": ("p2", "c5"),
    "form": ("contrastive", "predictor"),
    "target": ("momentum", "stopgrad"),
    "variant": ("s", "b"),
    "rule": ("soft", "majority", "min_fraction"),
}


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, found {text!r}"
        ) from None


def parse_method_option(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` (the value as YAML: ``0.1``, ``true``, ``[1, 2]``, ``c5``).

    Raises:
        ConfigError: No ``=`` or an unreadable value.
    """
    if "=" not in text:
        raise ConfigError(f"--method-option: expected KEY=VALUE, found {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--method-option {text!r}: unreadable value ({error})") from None
    return key.strip().replace("-", "_"), value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl pretrain``."""
    parser = subparsers.add_parser(
        "pretrain",
        help="self-supervised pretraining (sdrl, SimCLR, MoCo, BYOL, DetCon)",
        description=(
            "Pretrain a backbone on a pretraining dataset folder. RUN receives config.yaml "
            "(the resolved settings, a valid --config), last.ckpt, best.ckpt (best val "
            "probe accuracy; val loss without a probe; train loss without validation), "
            "metrics.csv and, with --logger wandb, wandb/. --resume continues exactly. "
            "Multi-GPU / multi-node: the same command under torchrun or srun, with --devices "
            "and --num-nodes."
        ),
    )
    main = parser.add_argument_group("run")
    main.add_argument("--data", required=True, metavar="DIR", help="pretraining dataset folder")
    main.add_argument("--out", required=True, metavar="RUN", help="run folder")
    main.add_argument("--method", default="sdrl", choices=METHOD_NAMES, help="(default sdrl)")
    main.add_argument(
        "--backbone",
        default="resnet18",
        metavar="NAME",
        help="resnet18 (default), resnet50, swin_t, or a test size: resnet_tiny, swin_tiny_test",
    )
    main.add_argument(
        "--weights",
        metavar="PATH",
        help="initial backbone weights: a local state dict, checkpoint, .safetensors or sdrl "
        "export; 3-band weights are adapted to the data's band count",
    )
    main.add_argument("--max-epochs", type=int, help="epochs (default 100 unless --max-steps)")
    main.add_argument("--max-steps", type=int, help="optimiser steps (wins over --max-epochs)")
    main.add_argument("--batch-size", type=int, default=32, help="per process (default 32)")
    main.add_argument("--seed", type=int, default=0, help="(default 0)")
    main.add_argument("--resume", action="store_true", help="continue from RUN/last.ckpt")
    main.add_argument("--overwrite", action="store_true", help="start again in a used RUN")

    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--optimizer", default="adamw", choices=("sgd", "adamw", "lars"))
    opt.add_argument("--lr", type=float, help="peak lr (default sgd 0.05, adamw 1e-3, lars 0.3)")
    opt.add_argument("--weight-decay", type=float, help="(default sgd 1e-4, adamw 0.05, lars 1e-6)")
    opt.add_argument("--sgd-momentum", type=float, default=0.9, help="SGD/LARS momentum")
    opt.add_argument("--warmup-steps", type=int, help="linear warm-up steps")
    opt.add_argument(
        "--warmup-fraction", type=float, default=0.05, help="warm-up share without --warmup-steps"
    )
    opt.add_argument("--schedule", default="cosine", choices=("cosine", "poly", "constant"))
    opt.add_argument("--min-lr-ratio", type=float, default=0.0, help="final lr / peak lr")
    opt.add_argument("--poly-power", type=float, default=0.9)
    opt.add_argument("--grad-clip", type=float, help="clip the gradient norm")
    opt.add_argument("--accumulate-grad-batches", type=int, default=1)

    dev = parser.add_argument_group("devices")
    dev.add_argument(
        "--precision",
        default="auto",
        help="Lightning precision; auto: bf16-mixed on bf16 GPUs, 16-mixed on older GPUs, "
        "32-true on CPU (bf16-mixed also works on CPU)",
    )
    dev.add_argument("--accelerator", default="auto", help="auto, cpu, gpu, mps...")
    dev.add_argument("--devices", default="auto", help="auto, a count or ids like 0,1")
    dev.add_argument("--num-nodes", type=int, default=1)
    dev.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, fsdp...")
    dev.add_argument("--deterministic", action="store_true", help="deterministic algorithms")

    data = parser.add_argument_group("data")
    data.add_argument("--num-workers", type=int, help="loader processes (default up to 4)")
    data.add_argument("--crop-size", type=int, help="random crops of larger tiles (x32)")
    data.add_argument("--train-split", default="train")
    data.add_argument("--val-split", default="val", help="'none' for no validation")
    data.add_argument(
        "--views",
        default="dates",
        choices=("dates", "single"),
        help="dates: view 1 from A, view 2 from B; single: two views of A",
    )
    data.add_argument("--augment", default="full", choices=("full", "geometric", "none"))

    logs = parser.add_argument_group("validation, checkpoints and logs")
    logs.add_argument("--probe", default="knn", choices=("knn", "logreg", "none"))
    logs.add_argument("--probe-tiles", type=int, default=256, help="training tiles of the probe")
    logs.add_argument("--val-every", type=int, help="validate every N steps (default: epochs)")
    logs.add_argument("--checkpoint-every", type=int, default=500, help="steps (default 500)")
    logs.add_argument("--log-every", type=int, default=10, help="steps (default 10)")
    logs.add_argument("--logger", default="csv", choices=("csv", "wandb"), help="CSV always")
    logs.add_argument("--wandb-online", action="store_true", help="sync W&B (offline default)")
    logs.add_argument("--wandb-project", default="sdrl")
    logs.add_argument(
        "--progress-bar", action=argparse.BooleanOptionalAction, help="default: on a terminal"
    )

    options = parser.add_argument_group("method options (each method's default when omitted)")
    for name, text in METHOD_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        if name == "foreground_ids":
            options.add_argument(flag, type=_int_list, metavar="IDS", help=text)
        elif name in _CHOICES:
            options.add_argument(flag, choices=_CHOICES[name], help=text)
        elif name in _FLOAT_OPTIONS:
            options.add_argument(flag, type=float, help=text)
        elif name in _INT_OPTIONS:
            options.add_argument(flag, type=int, help=text)
        else:
            options.add_argument(flag, help=text)
    options.add_argument(
        "--method-option",
        action="append",
        metavar="KEY=VALUE",
        help="any other method option, value as YAML (repeatable), e.g. min_area=2",
    )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The :class:`PretrainConfig` of parsed ``sdrl pretrain`` flags."""
    names = {f.name for f in dataclasses.fields(PretrainConfig)} - {"method_options"}
    values: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names}
    options = {k: getattr(args, k) for k in METHOD_OPTIONS if getattr(args, k, None) is not None}
    for text in args.method_option or []:
        key, value = parse_method_option(text)
        options[key] = value
    if values.get("progress_bar") is None:
        values["progress_bar"] = not args.quiet and sys.stderr.isatty()
    return PretrainConfig(**values, method_options=options)


def _no_tips(record: logging.LogRecord) -> bool:
    return "Tip:" not in record.getMessage()


def _tame_lightning(quiet: bool) -> None:
    """Drop Lightning's advertising tips; with ``-q`` its INFO lines too."""
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if _no_tips not in rank_zero.filters:
        rank_zero.addFilter(_no_tips)
    if quiet:
        for name in ("pytorch_lightning", "lightning_fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    """Run the pretraining and print where the results are."""
    from sdrl.train.loggers import is_global_zero
    from sdrl.train.run import pretrain

    _tame_lightning(args.quiet)
    result = pretrain(config_from_args(args))
    if is_global_zero():
        score = "n/a" if result.best_score is None else f"{result.best_score:.4f}"
        print(
            f"pretrained {result.global_step} steps ({result.epochs} epochs) in "
            f"{result.seconds:.1f} s: {result.last_checkpoint}, {result.best_checkpoint} "
            f"({result.monitor} {score} at step {result.best_step})"
        )
    return 0
