"""sdrl: self-supervised semantic-decoupled pretraining for remote-sensing change detection.

The Python API (what the command line calls; each has a docstring)::

    import sdrl
    data = sdrl.generate_dataset("data/pre", kind="pretrain", num=64)   # sdrl synth
    run = sdrl.pretrain(sdrl.PretrainConfig(data="data/pre", out="runs/pre", max_steps=500))
    cd = sdrl.finetune(sdrl.FinetuneConfig(data="data/cd", out="runs/cd",
                                           init=str(run.best_checkpoint), max_steps=500))
    metrics = sdrl.evaluate("data/cd", cd.best_checkpoint, "runs/cd/metrics.json")
    sdrl.predict_from_checkpoint("runs/cd/best.ckpt", "before.tif", "after.tif", "change.tif")

Training
    :func:`pretrain` with :class:`PretrainConfig`, :func:`finetune` with
    :class:`FinetuneConfig`; both return a :class:`RunResult`.
Inference
    :func:`evaluate` (``metrics.json`` of a split), :func:`predict_from_checkpoint` (a
    georeferenced change map of two rasters of any size), :func:`load_change_model` (the model
    of a checkpoint).
Checkpoints
    :func:`read_header` and :class:`CheckpointHeader`: what a checkpoint holds, read without
    Lightning.
Export
    :func:`export_backbone` (``sdrl export``: torchvision weights + meta.json, re-mapped to other
    bands or inflated to a video Swin), :func:`load_torchvision` (the ready torchvision model
    of an export folder).
Data
    :class:`ChangeDataset`, :class:`PretrainPairDataset` (dataset folders),
    :func:`generate_dataset` (the built-in data engine).

The names are imported on first use, so ``import sdrl`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sdrl.checkpoint import CheckpointHeader, read_header
    from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
    from sdrl.data.synth import generate_dataset
    from sdrl.evaluation import evaluate
    from sdrl.export import export_backbone, load_torchvision
    from sdrl.predict.from_checkpoint import predict_from_checkpoint
    from sdrl.predict.model import load_change_model
    from sdrl.tasks.change.config import FinetuneConfig
    from sdrl.tasks.change.run import finetune
    from sdrl.tasks.harness import RunResult
    from sdrl.tasks.pretrain.config import PretrainConfig
    from sdrl.tasks.pretrain.run import pretrain

_HOMES = {
    "ChangeDataset": ("sdrl.data.datasets", "ChangeDataset"),
    "CheckpointHeader": ("sdrl.checkpoint", "CheckpointHeader"),
    "FinetuneConfig": ("sdrl.tasks.change.config", "FinetuneConfig"),
    "PretrainConfig": ("sdrl.tasks.pretrain.config", "PretrainConfig"),
    "PretrainPairDataset": ("sdrl.data.datasets", "PretrainPairDataset"),
    "RunResult": ("sdrl.tasks.harness", "RunResult"),
    "evaluate": ("sdrl.evaluation", "evaluate"),
    "export_backbone": ("sdrl.export", "export_backbone"),
    "finetune": ("sdrl.tasks.change.run", "finetune"),
    "generate_dataset": ("sdrl.data.synth", "generate_dataset"),
    "load_change_model": ("sdrl.predict.model", "load_change_model"),
    "load_torchvision": ("sdrl.export", "load_torchvision"),
    "predict_from_checkpoint": ("sdrl.predict.from_checkpoint", "predict_from_checkpoint"),
    "pretrain": ("sdrl.tasks.pretrain.run", "pretrain"),
    "read_header": ("sdrl.checkpoint", "read_header"),
}

__all__ = [
    "ChangeDataset",
    "CheckpointHeader",
    "FinetuneConfig",
    "PretrainConfig",
    "PretrainPairDataset",
    "RunResult",
    "evaluate",
    "export_backbone",
    "finetune",
    "generate_dataset",
    "load_change_model",
    "load_torchvision",
    "predict_from_checkpoint",
    "pretrain",
    "read_header",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        module, attr = _HOMES[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'sdrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
