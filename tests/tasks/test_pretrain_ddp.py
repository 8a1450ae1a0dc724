"""Distributed pretraining: two CPU processes (DDP over gloo) through the command line."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdrl.checkpoint import read_checkpoint
from sdrl.data.synth import generate_dataset
from tests.runs import pretrain_argv

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tmp_path):
    data = tmp_path / "data"
    generate_dataset(data, kind="pretrain", num=10, size=32, bands=4, seed=0)
    run = tmp_path / "run"
    # Lightning starts the second process by re-running this command line with LOCAL_RANK=1.
    argv = pretrain_argv(
        data, run, "--method", "sdrl", "--max-steps", "3", "--log-every", "1",
        "--hidden-dim", "32", "--output-dim", "16",
        "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
    )  # fmt: skip
    command = [sys.executable, "-m", "sdrl", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pretrained 3 steps" in done.stdout and done.stdout.count("pretrained") == 1
    checkpoint = read_checkpoint(run / "last.ckpt")
    assert checkpoint["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    assert (run / "best.ckpt").is_file()
    with open(run / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    losses = [float(r["train/loss_step"]) for r in rows if r["train/loss_step"]]
    # 9 training tiles over 2 processes of batch 2: 2 batches per process and epoch.
    assert len(losses) == 3 and all(v == v for v in losses)
    assert [float(r["val/probe_acc"]) for r in rows if r["val/probe_acc"]]
