"""``sdrl pretrain``: self-supervised pretraining on a dataset folder (PyTorch Lightning)."""

from __future__ import annotations

import argparse
from typing import Any

from sdrl.cli.train_flags import add_training_flags, config_values, parse_option, tame_lightning
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
    return parse_option(text, "--method-option")


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
    groups = add_training_flags(
        parser,
        data_help="pretraining dataset folder",
        backbone_default="resnet18",
        backbone_help="resnet18 (default), resnet50, swin_t, or a test size: resnet_tiny, "
        "swin_tiny_test",
        batch_size=32,
    )
    main = groups["run"]
    main.add_argument("--method", default="sdrl", choices=METHOD_NAMES, help="(default sdrl)")
    main.add_argument(
        "--weights",
        metavar="PATH",
        help="initial backbone weights: a local state dict, checkpoint, .safetensors or sdrl "
        "export; 3-band weights are adapted to the data's band count",
    )
    groups["data"].add_argument(
        "--views",
        default="dates",
        choices=("dates", "single"),
        help="dates: view 1 from A, view 2 from B; single: two views of A",
    )
    logs = groups["logs"]
    logs.add_argument("--probe", default="knn", choices=("knn", "logreg", "none"))
    logs.add_argument("--probe-tiles", type=int, default=256, help="training tiles of the probe")

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
    values = config_values(args, PretrainConfig, {"method_options"})
    options = {k: getattr(args, k) for k in METHOD_OPTIONS if getattr(args, k, None) is not None}
    for text in args.method_option or []:
        key, value = parse_method_option(text)
        options[key] = value
    return PretrainConfig(**values, method_options=options)


def run(args: argparse.Namespace) -> int:
    """Run the pretraining and print where the results are."""
    from sdrl.train.loggers import is_global_zero
    from sdrl.train.run import pretrain

    tame_lightning(args.quiet)
    result = pretrain(config_from_args(args))
    if is_global_zero():
        score = "n/a" if result.best_score is None else f"{result.best_score:.4f}"
        print(
            f"pretrained {result.global_step} steps ({result.epochs} epochs) in "
            f"{result.seconds:.1f} s: {result.last_checkpoint}, {result.best_checkpoint} "
            f"({result.monitor} {score} at step {result.best_step})"
        )
    return 0
