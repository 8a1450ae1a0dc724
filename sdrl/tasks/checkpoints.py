"""Checkpoints of a run: atomic writes, safe reads, ``last.ckpt`` and ``best.ckpt``.

**Atomic**: :class:`AtomicCheckpointIO` serialises the checkpoint into a temporary file in the
run folder itself, flushes and syncs it to disk, then renames it over the target
(:func:`~sdrl.data.staging.write_atomic`). A crash or a kill at any moment leaves either
the previous checkpoint or the new one, never a truncated file. (Lightning's own writer goes
through an fsspec transaction whose temporary file lives in the system temp folder; when that
is another file system the final move is a copy, which a kill can cut short.)

**Safe reads**: checkpoints are read with ``torch.load(..., weights_only=True)``: tensors and
plain Python containers only, no code runs (:func:`~sdrl.checkpoint.read_checkpoint`).
Lightning's resume path (``trainer.fit(ckpt_path=...)``) reads through the same class, so it
is safe too. Everything this package puts in a checkpoint is plain data (RNG states included).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from sdrl.checkpoint import read_checkpoint
from sdrl.data.staging import atomic_copy, write_atomic

__all__ = ["AtomicCheckpointIO", "RunCheckpoint"]

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO with atomic local writes and code-free reads (see module doc)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically."""
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        write_atomic(Path(path), lambda file: torch.save(checkpoint, file))

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read a checkpoint with ``weights_only=True`` whatever is asked."""
        return read_checkpoint(path, map_location if map_location is not None else "cpu")


class RunCheckpoint(pl.Callback):
    """Writes ``last.ckpt`` and ``best.ckpt`` into the run folder.

    Lightning's ``ModelCheckpoint`` is not used: in one validation it writes the best file
    before ``last.ckpt`` (a kill between the two leaves a best model of a run that cannot be
    resumed from that step), it cannot make the best file a copy of the last one when the
    monitored metric was never computed, and it serialises the checkpoint once per file. Here
    ``best.ckpt`` is always a byte copy of a ``last.ckpt`` written just before it.

    ``last.ckpt`` is written every ``every_n_steps`` optimiser steps (right after the step), at
    the end of each epoch and at the last step. ``best.ckpt`` is written when ``monitor``
    improves: ``val/probe_acc`` (higher is better) when validation has a probe, ``val/loss``
    (lower) without one, ``train/loss_epoch`` (lower) without validation. When the monitored
    value was never computed (a run shorter than its first validation), ``best.ckpt`` is a copy
    of the final ``last.ckpt``.

    Args:
        run_dir: The run folder.
        every_n_steps: Steps between ``last.ckpt`` writes.
        monitor: Metric that selects ``best.ckpt``.
        mode: ``"max"`` or ``"min"``.
    """

    def __init__(self, run_dir: str | Path, every_n_steps: int, monitor: str, mode: str) -> None:
        self.run_dir = Path(run_dir)
        self.every_n_steps = every_n_steps
        self.monitor = monitor
        self.mode = mode
        self.best_score: float | None = None
        self.best_step: int | None = None
        self._saved_step = -1

    @property
    def last_path(self) -> Path:
        """``RUN/last.ckpt``."""
        return self.run_dir / "last.ckpt"

    @property
    def best_path(self) -> Path:
        """``RUN/best.ckpt``."""
        return self.run_dir / "best.ckpt"

    def state_dict(self) -> dict[str, Any]:
        """Best score and step, saved in every checkpoint."""
        return {"best_score": self.best_score, "best_step": self.best_step, "monitor": self.monitor}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the best score (only if it was for the same metric)."""
        if state_dict.get("monitor") == self.monitor:
            self.best_score = state_dict.get("best_score")
            self.best_step = state_dict.get("best_step")

    def _save_last(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.last_path, weights_only=False)
        self._saved_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        """Save ``last.ckpt`` after every ``every_n_steps``-th and the final step."""
        step = trainer.global_step
        if step == self._saved_step or step == 0:
            return
        final = 0 < trainer.max_steps <= step
        if final:
            trainer.should_stop = True  # so that validation runs once more at the final step
        if final or step % self.every_n_steps == 0:
            self._save_last(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save ``last.ckpt`` (unless this step's is written) and, without validation, best."""
        improved = self.monitor.startswith("train/") and self._improved(trainer)
        if improved or trainer.global_step != self._saved_step:
            self._save_last(trainer)
        if improved and trainer.is_global_zero:
            atomic_copy(self.last_path, self.best_path)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """When the monitored metric improved: ``last.ckpt`` (with the new best), then best."""
        if trainer.sanity_checking or self.monitor.startswith("train/"):
            return
        if self._improved(trainer):
            self._save_last(trainer)
            if trainer.is_global_zero:
                atomic_copy(self.last_path, self.best_path)
            trainer.strategy.barrier("sdrl-best-checkpoint")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Make sure both files exist at the end of training."""
        if trainer.global_step != self._saved_step:
            self._save_last(trainer)
        if not self.best_path.exists() and trainer.is_global_zero and self.last_path.exists():
            log.info("%s was never computed: best.ckpt is the final last.ckpt", self.monitor)
            atomic_copy(self.last_path, self.best_path)

    def _improved(self, trainer: pl.Trainer) -> bool:
        """Whether the monitored metric beats the best so far (which it then becomes)."""
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not torch.isfinite(torch.as_tensor(value)):
            return False
        score = float(value)
        if self.best_score is not None and (
            score <= self.best_score if self.mode == "max" else score >= self.best_score
        ):
            return False
        self.best_score, self.best_step = score, trainer.global_step
        return True
