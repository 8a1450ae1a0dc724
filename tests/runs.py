"""Tiny synthetic datasets, tiny `sdrl pretrain` / `sdrl finetune` runs and `sdrl predict`.

No tests here: helpers only. Each function adds just what every caller passes; the flags a test
cares about (steps, crop size, validation, heads, ...) stay in the test as ``extra``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sdrl.cli import main
from sdrl.data.synth import generate_dataset

# A small backbone, batch 2, no loader processes: a fraction of a second per step on a CPU.
TINY = ["--backbone", "resnet_tiny", "--batch-size", "2", "--num-workers", "0"]
# Finetuning also gets a narrow decoder.
TINY_CHANGE = [*TINY, "--model-option", "decoder_channels=16"]


def synth_data(
    tmp_path_factory: pytest.TempPathFactory, prefix: str, kind: str, **options: int
) -> Path:
    """``generate_dataset`` into ``<new temp folder named prefix>/data``; returns that folder."""
    out = tmp_path_factory.mktemp(prefix) / "data"
    generate_dataset(out, kind=kind, **options)
    return out


def pretrain_argv(data: Path, run: Path, *extra: str) -> list[str]:
    """Argv of ``sdrl pretrain`` (tiny backbone) from ``data`` into ``run``, then ``extra``."""
    return ["pretrain", "--data", str(data), "--out", str(run), *TINY, *extra]


def finetune_argv(data: Path, run: Path, *extra: str) -> list[str]:
    """Argv of ``sdrl finetune`` (tiny model) from ``data`` into ``run``, then ``extra``."""
    return ["finetune", "--data", str(data), "--out", str(run), *TINY_CHANGE, *extra]


def tiny_pretrain(data: Path, run: Path, *extra: str, checkpoint: str = "best.ckpt") -> Path:
    """Run :func:`pretrain_argv` to success; returns ``run / checkpoint``."""
    assert main(pretrain_argv(data, run, *extra)) == 0
    return run / checkpoint


def tiny_finetune(data: Path, run: Path, *extra: str, checkpoint: str = "best.ckpt") -> Path:
    """Run :func:`finetune_argv` to success; returns ``run / checkpoint``."""
    assert main(finetune_argv(data, run, *extra)) == 0
    return run / checkpoint


def predict(checkpoint: Path, before: Path, after: Path, out: Path, *extra: str) -> int:
    """Exit status of ``sdrl predict`` of ``checkpoint`` on ``before``/``after`` into ``out``."""
    argv = ["predict", "--before", str(before), "--after", str(after)]
    return main([*argv, "--checkpoint", str(checkpoint), "--out", str(out), *extra])
