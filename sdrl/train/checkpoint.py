"""Checkpoints of a run: atomic writes, safe reads, ``last.ckpt`` and ``best.ckpt``.

**Atomic**: :class:`AtomicCheckpointIO` serialises the checkpoint into a temporary file in the
run folder itself, flushes and syncs it to disk, then renames it over the target with
``os.replace`` (atomic on POSIX and Windows within one file system) and syncs the folder. A
crash or a kill at any moment leaves either the previous checkpoint or the new one, never a
truncated file. (Lightning's own writer goes through an fsspec transaction whose temporary
file lives in the system temp folder; when that is another file system the final move is a
copy, which a kill can cut short.)

**Safe reads**: checkpoints are read with ``torch.load(..., weights_only=True)``: tensors and
plain Python containers only, no code runs. Lightning's resume path
(``trainer.fit(ckpt_path=...)``) reads through the same class, so it is safe too. Everything
this package puts in a checkpoint is plain data (the RNG states included).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from sdrl.errors import DataError

__all__ = [
    "AtomicCheckpointIO",
    "RunCheckpoint",
    "atomic_copy",
    "read_checkpoint",
    "restore_rng_state",
    "rng_state",
    "write_json_atomic",
]

log = logging.getLogger(__name__)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform opens folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_copy(source: str | Path, target: str | Path) -> None:
    """Copy a file so that ``target`` is always either the old file or a complete copy."""
    with open(source, "rb") as src:
        _write_atomic(Path(target), lambda dst: shutil.copyfileobj(src, dst, 1 << 20))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON so that ``path`` is never a partial file."""
    text = json.dumps(data, indent=2) + "\n"
    _write_atomic(Path(path), lambda file: file.write(text.encode()))
    return Path(path)


def read_checkpoint(
    path: str | Path, map_location: Any = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint without executing code (``weights_only=True``).

    Args:
        path: The checkpoint file.
        map_location: Where tensors go (``torch.load``'s argument).
        mmap: Memory-map the file: tensors are read only when used.

    Raises:
        DataError: The file is missing, truncated, or holds objects other than plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "a checkpoint file", "nothing at this path")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch raises many types for a bad file
        raise DataError(
            path, "a checkpoint of plain tensors and containers", f"unreadable ({error})"
        ) from None
    if not isinstance(checkpoint, dict):
        raise DataError(path, "a checkpoint dict", f"a {type(checkpoint).__name__}")
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO with atomic local writes and code-free reads (see module doc)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically."""
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        _write_atomic(Path(path), lambda file: torch.save(checkpoint, file))

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read a checkpoint with ``weights_only=True`` whatever is asked."""
        return read_checkpoint(path, map_location if map_location is not None else "cpu")


def rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch (CPU and CUDA) generator states, as plain data."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    assert isinstance(keys, np.ndarray)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs than when saved
            torch.cuda.set_rng_state_all(state["cuda"])


class RunCheckpoint(pl.Callback):
    """Writes ``last.ckpt`` and ``best.ckpt`` into the run folder.

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
        """Save ``best.ckpt`` when the monitored validation metric improved."""
        if trainer.sanity_checking or self.monitor.startswith("train/"):
            return
        if self._improved(trainer):
            trainer.save_checkpoint(self.best_path, weights_only=False)

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
