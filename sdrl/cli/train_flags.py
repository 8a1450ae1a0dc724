"""The flags every training command shares (``sdrl pretrain``, ``sdrl finetune``).

:func:`add_training_flags` registers them in named groups that each command then extends with
its own flags; :func:`config_values` collects them for the command's config dataclass;
:func:`parse_option` reads ``KEY=VALUE`` options; :func:`tame_lightning` quiets Lightning.
Nothing heavy is imported here, so that ``sdrl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Any

import yaml

from sdrl.errors import ConfigError

__all__ = ["add_training_flags", "config_values", "parse_option", "tame_lightning"]


def parse_option(text: str, flag: str = "--method-option") -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` (the value as YAML: ``0.1``, ``true``, ``[1, 2]``, ``c5``).

    Args:
        text: The flag's value.
        flag: The flag, for messages.

    Raises:
        ConfigError: No ``=`` or an unreadable value.
    """
    if "=" not in text:
        raise ConfigError(f"{flag}: expected KEY=VALUE, found {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"{flag} {text!r}: unreadable value ({error})") from None
    return key.strip().replace("-", "_"), value


def add_training_flags(
    parser: argparse.ArgumentParser,
    *,
    data_help: str,
    backbone_default: str | None,
    backbone_help: str,
    batch_size: int,
) -> dict[str, argparse._ArgumentGroup]:
    """Register the shared flags of a training command.

    Args:
        parser: The command's parser.
        data_help: Help of ``--data``.
        backbone_default: Default of ``--backbone``.
        backbone_help: Help of ``--backbone``.
        batch_size: Default of ``--batch-size``.

    Returns:
        The groups ``run``, ``optimisation``, ``devices``, ``data`` and ``logs``, for the
        command's own flags.
    """
    groups = {
        "run": parser.add_argument_group("run"),
        "optimisation": parser.add_argument_group("optimisation"),
        "devices": parser.add_argument_group("devices"),
        "data": parser.add_argument_group("data"),
        "logs": parser.add_argument_group("validation, checkpoints and logs"),
    }
    main = groups["run"]
    main.add_argument("--data", required=True, metavar="DIR", help=data_help)
    main.add_argument("--out", required=True, metavar="RUN", help="run folder")
    main.add_argument("--backbone", default=backbone_default, metavar="NAME", help=backbone_help)
    main.add_argument("--max-epochs", type=int, help="epochs (default 100 unless --max-steps)")
    main.add_argument("--max-steps", type=int, help="optimiser steps (wins over --max-epochs)")
    main.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"per process (default {batch_size})"
    )
    main.add_argument("--seed", type=int, default=0, help="(default 0)")
    main.add_argument("--resume", action="store_true", help="continue from RUN/last.ckpt")
    main.add_argument("--overwrite", action="store_true", help="start again in a used RUN")

    opt = groups["optimisation"]
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

    dev = groups["devices"]
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

    data = groups["data"]
    data.add_argument("--num-workers", type=int, help="loader processes (default up to 4)")
    data.add_argument("--crop-size", type=int, help="random crops of larger tiles (x32)")
    data.add_argument("--train-split", default="train")
    data.add_argument("--val-split", default="val", help="'none' for no validation")
    data.add_argument("--augment", default="full", choices=("full", "geometric", "none"))

    logs = groups["logs"]
    logs.add_argument("--val-every", type=int, help="validate every N steps (default: epochs)")
    logs.add_argument("--checkpoint-every", type=int, default=500, help="steps (default 500)")
    logs.add_argument("--log-every", type=int, default=10, help="steps (default 10)")
    logs.add_argument("--logger", default="csv", choices=("csv", "wandb"), help="CSV always")
    logs.add_argument("--wandb-online", action="store_true", help="sync W&B (offline default)")
    logs.add_argument("--wandb-project", default="sdrl")
    logs.add_argument(
        "--progress-bar", action=argparse.BooleanOptionalAction, help="default: on a terminal"
    )
    return groups


def config_values(args: argparse.Namespace, cls: type, skip: set[str]) -> dict[str, Any]:
    """The parsed flags that are fields of the dataclass ``cls`` (minus ``skip``).

    ``progress_bar`` left unset becomes "on a terminal, unless ``-q``".
    """
    names = {f.name for f in dataclasses.fields(cls)} - skip
    values: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names}
    if "progress_bar" in names and values.get("progress_bar") is None:
        values["progress_bar"] = not args.quiet and sys.stderr.isatty()
    return values


def _no_tips(record: logging.LogRecord) -> bool:
    return "Tip:" not in record.getMessage()


def tame_lightning(quiet: bool) -> None:
    """Drop Lightning's advertising tips; with ``-q`` its INFO lines too."""
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if _no_tips not in rank_zero.filters:
        rank_zero.addFilter(_no_tips)
    if quiet:
        for name in ("pytorch_lightning", "lightning_fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
