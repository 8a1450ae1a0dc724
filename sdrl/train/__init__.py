"""Training harness: pretraining runs on PyTorch Lightning.

:func:`~sdrl.train.run.pretrain` runs one pretraining job from a
:class:`~sdrl.train.config.PretrainConfig` (what ``sdrl pretrain`` calls): deterministic,
resumable data loading (:mod:`sdrl.train.datamodule`), two views per batch built on the device
(:mod:`sdrl.train.views`), the method's loss in a LightningModule
(:mod:`sdrl.train.pretrain_module`), optimisers and schedules (:mod:`sdrl.train.optim`), a
region probe at validation (:mod:`sdrl.train.probe`), atomic checkpoints
(:mod:`sdrl.train.checkpoint`) and CSV / W&B logs (:mod:`sdrl.train.loggers`).

The names below are imported on first use, so that ``sdrl.train.config`` (imported by the
command line) does not pull in Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdrl.train.checkpoint import read_checkpoint
    from sdrl.train.config import PretrainConfig
    from sdrl.train.pretrain_module import TrainingError
    from sdrl.train.run import RunResult, pretrain

__all__ = ["PretrainConfig", "RunResult", "TrainingError", "pretrain", "read_checkpoint"]

_HOMES = {
    "PretrainConfig": "sdrl.train.config",
    "RunResult": "sdrl.train.run",
    "TrainingError": "sdrl.train.pretrain_module",
    "pretrain": "sdrl.train.run",
    "read_checkpoint": "sdrl.train.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'sdrl.train' has no attribute {name!r}")
