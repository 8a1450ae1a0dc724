"""The rules of a run folder: start afresh, refuse to overwrite, or resume the same run.

``--resume`` needs ``RUN/last.ckpt``; a folder that already holds a run is only reused with
``--resume`` (continue) or ``--overwrite`` (start again; the checkpoints are removed). On
resume, the settings are compared with ``RUN/config.yaml``: another method or backbone is an
error, other differences are a warning (the continuation is exact only with equal settings).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from sdrl.errors import ConfigError
from sdrl.train.checkpoint import read_checkpoint
from sdrl.train.config import PretrainConfig
from sdrl.train.loggers import is_global_zero

__all__ = ["prepare_run_dir"]

log = logging.getLogger(__name__)

_MUST_MATCH = ("method", "backbone")
_HARMLESS = {
    "resume", "overwrite", "progress-bar", "num-workers", "log-every", "logger",
    "wandb-online", "wandb-project", "checkpoint-every",
}  # fmt: skip
"""Settings that do not change the trained weights: not compared on resume."""


def _checkpoint_step(path: Path) -> int:
    """The global step stored in a checkpoint (memory-mapped: tensors are not read)."""
    return int(read_checkpoint(path, mmap=True).get("global_step", 0))


def prepare_run_dir(config: PretrainConfig) -> int | None:
    """Check ``out`` against ``--resume``/``--overwrite``; the step resumed from, if any."""
    run_dir, last = config.run_dir, config.run_dir / "last.ckpt"
    if config.resume:
        if not last.is_file():
            raise ConfigError(
                f"{last}: --resume continues a run from its last.ckpt, found none; "
                f"start the run without --resume"
            )
        _compare_saved_config(config)
        return _checkpoint_step(last)
    if last.exists() or (run_dir / "best.ckpt").exists():
        if not config.overwrite:
            raise ConfigError(
                f"{run_dir} already holds a run (last.ckpt); pass --resume to continue it, "
                f"--overwrite to start it again, or choose another --out"
            )
        if is_global_zero():
            for name in ("last.ckpt", "best.ckpt"):
                (run_dir / name).unlink(missing_ok=True)
    return None


def _compare_saved_config(config: PretrainConfig) -> None:
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
    for key in _MUST_MATCH:
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
