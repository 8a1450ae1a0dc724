"""Run logs: CSV always, Weights & Biases on request (offline by default), throughput.

``RUN/metrics.csv`` is written by Lightning's CSV logger, adapted so that a resumed run appends
to the file instead of deleting it; rows logged after the checkpoint it resumes from (by a run
that was killed) are dropped first, so every step appears once. W&B runs offline unless asked
otherwise: it writes ``RUN/wandb/offline-run-*`` (``wandb sync RUN/wandb/offline-run-*``
uploads it later), never prompts and needs no network.
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only

from sdrl.errors import ConfigError

__all__ = ["Throughput", "build_loggers", "is_global_zero", "prepare_metrics_file"]

METRICS_FILE = "metrics.csv"


def is_global_zero() -> bool:
    """Whether this process is global rank 0, the one that writes files.

    Read from the launcher's environment (``RANK``, ``LOCAL_RANK``, ``SLURM_PROCID``), so it
    holds before any process group exists.
    """
    return getattr(rank_zero_only, "rank", 0) == 0


def prepare_metrics_file(run_dir: Path, resume_step: int | None) -> None:
    """Get ``RUN/metrics.csv`` ready: removed for a fresh run, trimmed to the checkpoint on resume.

    Args:
        run_dir: The run folder.
        resume_step: Global step of the checkpoint being resumed; ``None`` for a fresh run.
    """
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return
    if resume_step is None:
        path.unlink()
        return
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if _before(r, resume_step)]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _before(row: dict[str, str], resume_step: int) -> bool:
    """Whether a metrics row was logged before the checkpoint of ``resume_step`` was saved.

    Training rows carry the 0-based index of their step (kept below ``resume_step``),
    validation rows the step of the weights they validated (kept up to ``resume_step``).
    """
    if not row.get("step"):
        return True
    step = int(float(row["step"]))
    validation = any(v for k, v in row.items() if k.startswith("val/"))
    return step <= resume_step if validation else step < resume_step


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, appending to an existing ``metrics.csv`` with its header."""

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with open(path, newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])


class _RunCSVLogger(CSVLogger):
    """A CSV logger writing ``RUN/metrics.csv`` directly (no version sub-folders)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The writer (created on first use, rank zero only)."""
        if not isinstance(self._experiment, _AppendingWriter):
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def _wandb_logger(run_dir: Path, project: str, online: bool, resume: bool) -> Logger:
    try:
        from pytorch_lightning.loggers import WandbLogger
    except ImportError as error:  # pragma: no cover - wandb is a dependency
        raise ConfigError(f"--logger wandb needs the wandb package ({error})") from None
    import wandb

    id_file = run_dir / "wandb-id.txt"
    run_id = id_file.read_text().strip() if resume and id_file.is_file() else None
    if run_id is None:
        run_id = uuid.uuid4().hex[:12]
        if is_global_zero():
            id_file.write_text(run_id + "\n")
    logger = WandbLogger(
        name=run_dir.resolve().name,
        save_dir=str(run_dir),
        id=run_id,
        project=project,
        mode="online" if online else "offline",
        settings=wandb.Settings(silent=True, console="off", disable_git=True),
    )
    # Lightning always passes anonymous=None, which wandb >= 0.19 warns about.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def build_loggers(
    run_dir: Path, logger: str, project: str = "sdrl", online: bool = False, resume: bool = False
) -> list[Logger]:
    """The run's loggers: CSV, plus W&B when ``logger == "wandb"``.

    Args:
        run_dir: The run folder.
        logger: ``csv`` or ``wandb``.
        project: W&B project.
        online: Sync W&B online (it is offline otherwise).
        resume: Continue the W&B run of an earlier start (id in ``RUN/wandb-id.txt``).

    Returns:
        Loggers for ``pl.Trainer``.
    """
    loggers: list[Logger] = [_RunCSVLogger(save_dir=str(run_dir), name="", version="")]
    if logger == "wandb":
        loggers.append(_wandb_logger(run_dir, project, online, resume))
    return loggers


class Throughput(pl.Callback):
    """Logs ``train/samples_per_s``: samples of all processes per second of wall time.

    The time of a step runs from the end of the previous one, so data loading counts.
    Lightning's ``ThroughputMonitor`` is not used: it reports a rate only once a window of
    batches (100 by default) is full, so short runs and the first minutes of long ones show
    none; it logs outside ``self.log`` (no progress-bar entry, no per-epoch value) under
    ``train|samples_per_sec``-style keys; and its FLOP counts need device tables that CPUs
    and many accelerators lack. This callback keeps the one number users watch, every step.

    Args:
        batch_size: Samples per batch and process.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._last: float | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        """Start the clock at the first batch of a fit."""
        if self._last is None:
            self._last = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        """Log the rate of this batch."""
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            rate = self.batch_size * trainer.world_size / (now - self._last)
            pl_module.log("train/samples_per_s", rate, on_step=True, prog_bar=True)
        self._last = now

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Do not count validation time in the next training step."""
        self._last = time.perf_counter()
