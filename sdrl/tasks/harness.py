"""The harness: Trainer, run folder, loggers and checkpoints of a run, for any task.

A task's run function builds its data, model and :class:`~sdrl.tasks.base.BaseTask`, then
calls :func:`fit_task`, which prepares the run folder (fresh, ``--overwrite`` or
``--resume``), builds the ``pl.Trainer`` (devices, precision, steps, loggers, atomic
checkpoint I/O, ``last.ckpt``/``best.ckpt``, throughput), saves the config, fits and
describes the result. It knows no task: what differs comes in as arguments.

Under DDP every process runs the task's function (Lightning starts the others with the same
command line, or ``torchrun`` / SLURM start them); only global rank 0 writes files.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.utilities.exceptions import MisconfigurationException

from sdrl import __version__
from sdrl.checkpoint import CheckpointHeader, read_checkpoint
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.errors import ConfigError
from sdrl.tasks.base import BaseTask
from sdrl.tasks.checkpoints import AtomicCheckpointIO, RunCheckpoint
from sdrl.tasks.config import TrainConfig, resolve_precision
from sdrl.tasks.loggers import Throughput, build_loggers, is_global_zero, prepare_metrics_file
from sdrl.tasks.run_dir import RunStart

__all__ = ["RunResult", "build_trainer", "dataset_header", "fit_task", "parse_devices"]

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
    """What a training run produced.

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
    trained_steps: int | None = None

    def summary(self, verb: str = "trained") -> str:
        """One line for the command line: what was trained, where the checkpoints are."""
        if self.trained_steps == 0:
            head = (
                f"{self.run_dir} had already reached its limit (step {self.global_step}, "
                f"{self.epochs} epochs); nothing left to train"
            )
        else:
            head = f"{verb} {self.global_step} steps ({self.epochs} epochs) in {self.seconds:.1f} s"
        if self.best_score is None:
            best = f"{self.monitor} never computed: best.ckpt is the final last.ckpt"
        else:
            best = f"{self.monitor} {self.best_score:.4f} at step {self.best_step}"
        return f"{head}: {self.last_checkpoint}, {self.best_checkpoint} ({best})"


def parse_devices(text: str) -> Any:
    """``--devices`` for Lightning: ``"auto"``, a count (``"2"``) or ids (``"0,1"``)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if "," in text:
        return [int(d) for d in text.split(",") if d.strip()]
    return text


def build_trainer(
    config: TrainConfig,
    callbacks: list,
    validate: bool,
    strategy: str | None = None,
    resuming: bool = False,
) -> pl.Trainer:
    """The ``pl.Trainer`` of a training run (shared by pretraining and finetuning).

    Args:
        config: The run's settings (devices, precision, steps, logging...).
        callbacks: Lightning callbacks (the run's checkpoint writer first).
        validate: Whether the run has a validation loader.
        strategy: Overrides ``config.strategy`` (e.g. DDP with unused parameters allowed).
        resuming: The run continues from ``last.ckpt`` (the W&B run continues too).

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
            config.run_dir,
            config.logger,
            config.wandb_project,
            config.wandb_online,
            resuming,
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


def fit_task(
    config: TrainConfig,
    module: BaseTask,
    data: pl.LightningDataModule,
    start: RunStart,
    monitor: str,
    mode: str,
    *,
    validate: bool,
    callbacks: Sequence[pl.Callback] = (),
    strategy: str | None = None,
) -> RunResult:
    """Build the Trainer, save the config, fit (resuming when asked) and describe the result.

    Args:
        config: The run's settings (saved as ``RUN/config.yaml`` by global rank 0).
        module: The task.
        data: Its data module.
        start: From :func:`~sdrl.tasks.run_dir.prepare_run_dir` (called before building
            anything else, so that a bad run folder fails fast).
        monitor: The metric that selects ``best.ckpt``.
        mode: ``"max"`` or ``"min"``.
        validate: Whether the run has validation loaders.
        callbacks: The task's own callbacks (e.g. early stopping).
        strategy: Overrides ``config.strategy``.

    Raises:
        ConfigError: Lightning refuses the device, precision or strategy settings.
    """
    checkpoints = RunCheckpoint(config.run_dir, config.checkpoint_every, monitor, mode)
    trainer = build_trainer(
        config,
        [checkpoints, Throughput(config.batch_size), *callbacks],
        validate=validate,
        strategy=strategy,
        resuming=start.resume_step is not None,
    )
    start.remove_replaced()  # --overwrite: only now that everything was built
    if is_global_zero():
        config.save(config.run_dir / "config.yaml")
        prepare_metrics_file(config.run_dir, start.resume_step)
    last = config.run_dir / "last.ckpt"
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            trainer.fit(
                module,
                datamodule=data,
                ckpt_path=str(last) if start.resume_step is not None else None,
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
    trained = step - (start.resume_step or 0)
    if trained == 0 and start.resume_step is not None:
        log.info("%s had already reached its limit at step %d: nothing to train", last, step)
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
        seconds=time.perf_counter() - start.time,
        trained_steps=trained,
    )


def dataset_header(
    kind: str,
    config: TrainConfig,
    dataset: ChangeDataset | PretrainPairDataset,
    **fields: Any,
) -> CheckpointHeader:
    """The checkpoint header of a run on ``dataset``: its bands, normalisation and classes.

    Args:
        kind: The task's header kind.
        config: The run's settings (backbone, data).
        dataset: The training dataset.
        **fields: The task's fields (``method``, ``model``...; others go to ``extra``).
    """
    meta = dataset.meta
    wavelengths = meta.provenance.get("wavelengths_nm")
    base = CheckpointHeader(
        kind=kind,
        backbone=config.backbone,
        in_channels=dataset.num_bands,
        bands=list(meta.bands),
        mean=[float(v) for v in meta.mean or []],
        std=[float(v) for v in meta.std or []],
        classes=list(meta.classes),
        wavelengths_nm=list(wavelengths) if wavelengths is not None else None,
        data=str(config.data),
        version=__version__,
    )
    return base.replace(**fields)
