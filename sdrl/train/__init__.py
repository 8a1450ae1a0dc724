"""Training harness: pretraining and change-detection finetuning runs on PyTorch Lightning.

:func:`~sdrl.train.run.pretrain` runs one pretraining job from a
:class:`~sdrl.train.config.PretrainConfig` (what ``sdrl pretrain`` calls): deterministic,
resumable data loading (:mod:`sdrl.train.datamodule`), two views per batch built on the device
(:mod:`sdrl.train.views`), the method's loss in a LightningModule
(:mod:`sdrl.train.pretrain_module`), optimisers and schedules (:mod:`sdrl.train.optim`), a
region probe at validation (:mod:`sdrl.train.probe`), atomic checkpoints
(:mod:`sdrl.train.checkpoint`) and CSV / W&B logs (:mod:`sdrl.train.loggers`).

:func:`sdrl.train.finetune.finetune` runs one change-detection finetuning job from a
:class:`~sdrl.train.finetune_config.FinetuneConfig` (what ``sdrl finetune`` calls) on the same
harness: :mod:`sdrl.train.finetune_module` (LightningModule), :mod:`sdrl.train.change_loss`
(weighted CE / BCE + Dice) and :mod:`sdrl.train.change_checkpoint` (the checkpoint's ``sdrl``
block and :func:`~sdrl.train.change_checkpoint.load_change_model` for evaluate and predict).

The names below are imported on first use, so that ``sdrl.train.config`` (imported by the
command line) does not pull in Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdrl.train.checkpoint import read_checkpoint
    from sdrl.train.config import PretrainConfig
    from sdrl.train.finetune_config import FinetuneConfig
    from sdrl.train.pretrain_module import TrainingError
    from sdrl.train.run import RunResult, pretrain

__all__ = [
    "FinetuneConfig",
    "PretrainConfig",
    "RunResult",
    "TrainingError",
    "pretrain",
    "read_checkpoint",
]

_HOMES = {
    "FinetuneConfig": "sdrl.train.finetune_config",
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
