"""``pretrain(config)``: one self-supervised pretraining run, from dataset folder to checkpoints.

The library function behind ``sdrl pretrain``; a notebook or a script calls it the same way::

    from sdrl.train import PretrainConfig, pretrain
    result = pretrain(PretrainConfig(data="data/pre", out="runs/sdrl", backbone="resnet18",
                                     max_steps=1000, method_options={"decouple_weight": 0.5}))
    print(result.best_checkpoint, result.metrics["val/probe_acc"])

Under DDP every process runs this function (Lightning starts the others with the same command
line, or ``torchrun`` / SLURM start them); only global rank 0 writes files.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.utilities.exceptions import MisconfigurationException

from sdrl import __version__
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.errors import ConfigError, DataError
from sdrl.models import build_backbone
from sdrl.ssl.methods import PretrainMethod, build_method
from sdrl.train.checkpoint import AtomicCheckpointIO, RunCheckpoint, read_checkpoint
from sdrl.train.checks import check_tile_size, warn_about_masks
from sdrl.train.config import PretrainConfig, TrainConfig, resolve_precision
from sdrl.train.datamodule import PretrainDataModule
from sdrl.train.loggers import Throughput, build_loggers, is_global_zero, prepare_metrics_file
from sdrl.train.optim import OptimSettings
from sdrl.train.pretrain_module import PretrainModule, reseed
from sdrl.train.probe import RegionProbe
from sdrl.train.run_dir import prepare_run_dir
from sdrl.train.views import ViewMaker, build_augment

__all__ = ["RunResult", "build_trainer", "fit_run", "parse_devices", "pretrain"]

log = logging.getLogger(__name__)

_QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
    ".*overridden `on_after_batch_transfer` in `LightningModule` but have passed in a.*",
    ".*torch.distributed.nn.functional.all_gather is deprecated.*",
    ".*is not supported by the model summary.*",
    ".*module\\(s\\) in eval mode at the start of training.*",  # frozen encoders, on purpose
)


@dataclass
class RunResult:
    """What a pretraining run produced.

    Attributes:
        run_dir: The run folder.
        last_checkpoint: ``RUN/last.ckpt``.
        best_checkpoint: ``RUN/best.ckpt``.
        monitor: The metric that picked ``best.ckpt``.
        best_score: Its best value (``None`` when it was never computed).
        best_step: The step of ``best.ckpt``.
        global_step: Optimiser steps done (in total, including before a resume).
        epochs: Epochs completed (Lightning's ``current_epoch``).
        metrics: The last value of every logged metric.
        seconds: Wall time of this call.
    """

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    monitor: str
    best_score: float | None
    best_step: int | None
    global_step: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def _build_method(config: PretrainConfig, dataset: PretrainPairDataset) -> PretrainMethod:
    bands = dataset.num_bands
    try:
        backbone = build_backbone(config.backbone, bands, weights=config.weights)
    except DataError as error:
        raise DataError(
            error.path,
            error.expected,
            error.found,
            f"{error.hint + ' ' if error.hint else ''}(--weights for --data {dataset.folder.root} "
            f"with {bands} bands {dataset.meta.bands}; 3-band RGB weights are adapted to any "
            f"band count automatically)",
        ) from None
    except ValueError as error:
        raise ConfigError(f"--backbone {config.backbone}: {error}") from None
    num_classes = dataset.meta.num_classes
    if num_classes < 1:
        raise DataError(dataset.folder.meta_path, "class names of the masks", "no classes")
    try:
        return build_method(config.method, backbone, num_classes, **config.method_options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--method {config.method}: {error}") from None


def parse_devices(text: str) -> Any:
    """``--devices`` for Lightning: ``"auto"``, a count (``"2"``) or ids (``"0,1"``)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if "," in text:
        return [int(d) for d in text.split(",") if d.strip()]
    return text


def build_trainer(
    config: TrainConfig, callbacks: list, validate: bool, strategy: str | None = None
) -> pl.Trainer:
    """The ``pl.Trainer`` of a training run (shared by pretraining and finetuning).

    Args:
        config: The run's settings (devices, precision, steps, logging...).
        callbacks: Lightning callbacks (the run's checkpoint writer first).
        validate: Whether the run has a validation loader.
        strategy: Overrides ``config.strategy`` (e.g. DDP with unused parameters allowed).

    Raises:
        ConfigError: Lightning refuses the device, precision or strategy settings.
    """
    progress = config.progress_bar if config.progress_bar is not None else sys.stderr.isatty()
    max_epochs = config.max_epochs
    if max_epochs is None:
        max_epochs = -1 if config.max_steps else 100
    kwargs: dict[str, Any] = {
        "accelerator": config.accelerator,
        "devices": parse_devices(config.devices),
        "num_nodes": config.num_nodes,
        "strategy": strategy or config.strategy,
        "precision": resolve_precision(config.precision, config.accelerator),
        "max_epochs": max_epochs,
        "max_steps": config.max_steps or -1,
        "accumulate_grad_batches": config.accumulate_grad_batches,
        "gradient_clip_val": config.grad_clip,
        "logger": build_loggers(
            config.run_dir, config.logger, config.wandb_project, config.wandb_online, config.resume
        ),
        "callbacks": callbacks,
        "enable_checkpointing": False,
        "plugins": [AtomicCheckpointIO()],
        "use_distributed_sampler": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": config.log_every,
        "enable_progress_bar": progress,
        "enable_model_summary": True,
        "default_root_dir": str(config.run_dir),
        "limit_val_batches": None if validate else 0,
    }
    if config.deterministic:
        kwargs["deterministic"] = True
    if validate and config.val_every:
        kwargs["val_check_interval"] = config.val_every * config.accumulate_grad_batches
        kwargs["check_val_every_n_epoch"] = None
    try:
        return pl.Trainer(**kwargs)
    except (MisconfigurationException, ValueError) as error:
        raise ConfigError(f"cannot set up training: {error}") from None


def fit_run(
    config: TrainConfig,
    trainer: pl.Trainer,
    module: pl.LightningModule,
    data: pl.LightningDataModule,
    checkpoints: RunCheckpoint,
    resume_step: int | None,
    start: float,
) -> RunResult:
    """Save the config, run ``trainer.fit`` (resuming when asked) and describe the result.

    Args:
        config: The run's settings (saved as ``RUN/config.yaml`` by global rank 0).
        trainer: From :func:`build_trainer`.
        module: The LightningModule.
        data: The LightningDataModule.
        checkpoints: The run's :class:`RunCheckpoint` (among the trainer's callbacks).
        resume_step: Step of the checkpoint resumed from (``prepare_run_dir``), or ``None``.
        start: ``time.perf_counter()`` at the start of the run.
    """
    if is_global_zero():
        config.save(config.run_dir / "config.yaml")
        prepare_metrics_file(config.run_dir, resume_step)
    last = config.run_dir / "last.ckpt"
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            trainer.fit(
                module,
                datamodule=data,
                ckpt_path=str(last) if config.resume else None,
                weights_only=True,
            )
    finally:
        if config.logger == "wandb" and is_global_zero():
            import wandb

            wandb.finish()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    step, epochs, best = trainer.global_step, trainer.current_epoch, checkpoints.state_dict()
    if step == 0 and last.is_file():  # ddp_spawn: the training ran in other processes
        saved = read_checkpoint(last, mmap=True)
        step, epochs = int(saved["global_step"]), int(saved["epoch"])
        best = saved.get("callbacks", {}).get(checkpoints.state_key, best)
    return RunResult(
        run_dir=config.run_dir,
        last_checkpoint=last,
        best_checkpoint=checkpoints.best_path,
        monitor=checkpoints.monitor,
        best_score=best["best_score"],
        best_step=best["best_step"],
        global_step=step,
        epochs=epochs,
        metrics=metrics,
        seconds=time.perf_counter() - start,
    )


def pretrain(config: PretrainConfig) -> RunResult:
    """Run self-supervised pretraining as configured.

    Args:
        config: The run's settings.

    Returns:
        Where the checkpoints are and the final metrics.

    Raises:
        ConfigError: Inconsistent settings, or a run folder that holds a run already.
        DataError: The dataset or ``--weights`` does not fit.
        TrainingError: Non-finite input values or a non-finite loss during training.
    """
    start = time.perf_counter()
    zero = is_global_zero()
    resume_step = prepare_run_dir(config)
    reseed(config.seed)
    probe_on = config.probe != "none"
    data = PretrainDataModule(
        config.data,
        config.batch_size,
        config.seed,
        config.workers,
        config.crop_size,
        config.train_split,
        config.val_split,
        config.probe_tiles if probe_on else 0,
    )
    dataset = data.train_set
    check_tile_size(dataset, config.crop_size)
    if data.val_set is not None:
        check_tile_size(data.val_set, config.crop_size)
    method = _build_method(config, dataset)
    if zero:
        warn_about_masks(dataset, config.method, method.needs_masks)
        if config.views == "dates" and not dataset.bitemporal:
            log.info("%s has no B/ images: the two views are augmentations of A", config.data)
    views = ViewMaker(
        build_augment(config.augment, dataset.num_bands), config.views, dataset.bitemporal
    )
    optim = OptimSettings.from_config(config)
    probe = None
    if config.probe != "none" and data.val_set is not None:
        probe = RegionProbe(config.probe)
    module = PretrainModule(
        method,
        views,
        optim,
        seed=config.seed,
        probe=probe,
        val_roles=data.val_roles,
        meta=_meta(config, dataset),
    )
    if module.probe is not None:
        monitor, mode = "val/probe_acc", "max"
    elif data.val_set is not None:
        monitor, mode = "val/loss", "min"
    else:
        monitor, mode = "train/loss_epoch", "min"
    checkpoints = RunCheckpoint(config.run_dir, config.checkpoint_every, monitor, mode)
    callbacks = [checkpoints, Throughput(config.batch_size)]
    trainer = build_trainer(config, callbacks, validate=bool(module.val_roles))
    return fit_run(config, trainer, module, data, checkpoints, resume_step, start)


def data_block(config: TrainConfig, dataset: ChangeDataset | PretrainPairDataset) -> dict[str, Any]:
    """What a checkpoint records of its data and backbone, shared by pretraining and finetuning.

    Plain data only (checkpoints are read with ``weights_only=True``).
    """
    meta = dataset.meta
    return {
        "version": __version__,
        "backbone": config.backbone,
        "in_channels": dataset.num_bands,
        "bands": list(meta.bands),
        "mean": list(meta.mean or []),
        "std": list(meta.std or []),
        "classes": list(meta.classes),
        "data": str(config.data),
        "wavelengths_nm": meta.provenance.get("wavelengths_nm"),
    }


def _meta(config: PretrainConfig, dataset: PretrainPairDataset) -> dict[str, Any]:
    """The run's description stored in every checkpoint (plain data, for export)."""
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in config.method_options.items()}
    block = {"kind": "pretrain", "method": config.method, "method_options": options}
    return block | data_block(config, dataset)
