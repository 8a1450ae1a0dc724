"""The rules of a run folder: start afresh, refuse to overwrite, or resume the same run.

``--resume`` continues from ``RUN/last.ckpt``, and starts the run (saying so) when there is
none yet, so that a cluster job that is requeued can run the same command every time; a
folder that already holds a run is only reused with ``--resume`` (continue) or
``--overwrite`` (start again; the checkpoints are removed). On
resume, the settings are compared with ``RUN/config.yaml``: a change of a setting that shapes
the network (the config's ``RESUME_MUST_MATCH``: method or model, backbone...) is an error, other
differences are a warning (the continuation is exact only with equal settings), and a
``last.ckpt`` of another kind of run (a pretraining run resumed by ``sdrl finetune`` or the
reverse) is an error.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sdrl.checkpoint import COMMANDS, HEADER_KEY, header_kind, read_checkpoint
from sdrl.errors import ConfigError, DataError
from sdrl.tasks.config import TrainConfig
from sdrl.tasks.loggers import is_global_zero

__all__ = ["RunStart", "prepare_run_dir"]

log = logging.getLogger(__name__)

_HARMLESS = {
    "resume", "overwrite", "progress-bar", "num-workers", "log-every", "logger",
    "wandb-online", "wandb-project", "checkpoint-every",
}  # fmt: skip
"""Settings that do not change the trained weights: not compared on resume."""


@dataclass(frozen=True)
class RunStart:
    """How a run starts.

    Attributes:
        resume_step: Global step of the ``last.ckpt`` resumed from; ``None`` for a fresh start.
        time: ``time.perf_counter()`` when the run was asked for.
        replaced: Checkpoints of an earlier run that ``--overwrite`` replaces: removed by the
            harness only once the new run's data, model and trainer are built, so that a bad
            setting (a typo in ``--data``) never costs the earlier run.
    """

    resume_step: int | None = None
    time: float = field(default_factory=time.perf_counter)
    replaced: tuple[Path, ...] = ()

    def remove_replaced(self) -> None:
        """Remove the earlier run's checkpoints (global rank 0)."""
        if is_global_zero():
            for path in self.replaced:
                path.unlink(missing_ok=True)


def _checkpoint_step(path: Path, expected_kind: str) -> int:
    """The global step stored in a checkpoint (memory-mapped: tensors are not read)."""
    checkpoint = read_checkpoint(path, mmap=True)
    block = checkpoint.get(HEADER_KEY)
    kind = header_kind(block) if isinstance(block, dict) else None
    if expected_kind and kind is not None and kind != expected_kind:
        raise ConfigError(
            f"{path}: --resume expected a {expected_kind} run, found the last.ckpt of a {kind} "
            f"run; resume it with `{COMMANDS.get(kind, kind)} --resume`, or choose another --out"
        )
    return int(checkpoint.get("global_step", 0))


def prepare_run_dir(config: TrainConfig) -> RunStart:
    """Check ``out`` against ``--resume``/``--overwrite``; say whether and where the run resumes.

    Global rank 0 then creates the folder (a clear error when it cannot).
    """
    started = time.perf_counter()
    run_dir, last = config.run_dir, config.run_dir / "last.ckpt"
    step = None
    replaced: tuple[Path, ...] = ()
    if config.resume and last.is_file():
        step = _checkpoint_step(last, config.RUN_KIND)  # the kind first: the clearer error
        _compare_saved_config(config)
        log.info("resuming %s from step %d", last, step)
    elif config.resume:
        if is_global_zero():
            log.info("%s: no checkpoint yet, starting the run (--resume)", last)
            (run_dir / "best.ckpt").unlink(missing_ok=True)  # of a start killed before last
    elif last.exists() or (run_dir / "best.ckpt").exists():
        if not config.overwrite:
            raise ConfigError(
                f"{run_dir} already holds a run (last.ckpt); pass --resume to continue it, "
                f"--overwrite to start it again, or choose another --out"
            )
        replaced = (last, run_dir / "best.ckpt")
    if is_global_zero():
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(run_dir, "a run folder that can be created", f"'{error}'") from None
        if not os.access(run_dir, os.W_OK | os.X_OK):
            raise DataError(run_dir, "a writable run folder", "no write permission")
    return RunStart(step, started, replaced)


def _compare_saved_config(config: TrainConfig) -> None:
    path = config.run_dir / "config.yaml"
    if not path.is_file():
        return
    saved = yaml.safe_load(path.read_text()) or {}
    now = config.to_flat()
    changed = {
        k: (saved.get(k), now.get(k))
        for k in sorted(set(saved) | set(now))
        if saved.get(k) != now.get(k) and k not in _HARMLESS
    }
    for key in (k.replace("_", "-") for k in config.RESUME_MUST_MATCH):
        if key in changed:
            old, new = changed[key]
            raise ConfigError(f"{path}: the run was made with {key} {old!r}, found {new!r}")
    if changed:
        text = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        log.warning(
            "resuming with settings that differ from %s (%s); the continuation is exact only "
            "with the same settings",
            path,
            text,
        )
