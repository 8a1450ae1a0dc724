"""Checkpoints: exact resume (after a crash, after SIGKILL), atomic writes, safe reads."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sdrl.checkpoint import read_checkpoint
from sdrl.cli import main
from sdrl.errors import DataError
from sdrl.tasks.checkpoints import AtomicCheckpointIO, RunCheckpoint
from tests.runs import pretrain_argv, synth_data

# One intra-op thread here and in the killed process (OMP_NUM_THREADS=1): same arithmetic, fast
# on busy CPUs.
pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 8  # 7 training tiles, batch 2: 3 steps per epoch, so resumes land mid-epoch


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synth_data(tmp_path_factory, "resume", "pretrain", num=8, size=32, bands=4, seed=0)


def argv(data: Path, run: Path, *extra: str) -> list[str]:
    return pretrain_argv(
        data, run, "--max-steps", str(STEPS),
        "--checkpoint-every", "1", "--log-every", "1", "--val-every", "4",
        "--hidden-dim", "32", "--output-dim", "16", "--seed", "7", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """An uninterrupted run of STEPS steps."""
    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(argv(data, run)) == 0
    return run


def assert_same_training_state(a: Path, b: Path) -> None:
    ca, cb = read_checkpoint(a / "last.ckpt"), read_checkpoint(b / "last.ckpt")
    assert ca["global_step"] == cb["global_step"] == STEPS
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][key]), key
    for sa, sb in zip(
        ca["optimizer_states"][0]["state"].values(),
        cb["optimizer_states"][0]["state"].values(),
        strict=True,
    ):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ca["lr_schedulers"] == cb["lr_schedulers"]


def logged_steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as file:
        return [int(r["step"]) for r in csv.DictReader(file) if r["train/loss_step"]]


def test_resume_after_a_crash_ends_with_the_same_weights(data, reference, tmp_path, monkeypatch):
    run = tmp_path / "run"
    save_last = RunCheckpoint._save_last

    def crash_after_step_4(self, trainer):
        save_last(self, trainer)
        if trainer.global_step == 4:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(RunCheckpoint, "_save_last", crash_after_step_4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(argv(data, run))
    monkeypatch.undo()
    state = read_checkpoint(run / "last.ckpt")
    assert state["global_step"] == 4
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "consumed": 1}
    ]
    assert main([*argv(data, run), "--resume"]) == 0
    assert_same_training_state(reference, run)
    # No step twice; the crash came between the checkpoint of step 4 and the log of its batch.
    assert logged_steps(run) == [0, 1, 2, *range(4, STEPS)]


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_the_same_weights(data, reference, tmp_path):
    run = tmp_path / "run"
    # Steps slowed down so that the kill lands mid-run; the weights do not depend on timing.
    script = (
        "import sys, time\n"
        "from sdrl.tasks.pretrain.module import PretrainModule\n"
        "step = PretrainModule.training_step\n"
        "PretrainModule.training_step = lambda *a: (time.sleep(0.4), step(*a))[1]\n"
        "from sdrl.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, *argv(data, run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "OMP_NUM_THREADS": "1",
        },
    )
    deadline = time.monotonic() + 120
    killed_at = None
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if (run / "last.ckpt").exists():
                killed_at = read_checkpoint(run / "last.ckpt")["global_step"]
                if killed_at >= 3:
                    break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = read_checkpoint(run / "last.ckpt")["global_step"]
    assert 3 <= killed_at < STEPS, "the run was not interrupted mid-way"
    assert main([*argv(data, run), "--resume"]) == 0
    assert_same_training_state(reference, run)


def test_a_failed_save_leaves_the_previous_checkpoint(reference, tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    target.write_bytes((reference / "last.ckpt").read_bytes())
    before = target.read_bytes()
    checkpoint = read_checkpoint(target)
    real_save = torch.save

    def dies_midway(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        file.truncate(file.tell() // 2)  # half written, then the "process dies"
        raise KeyboardInterrupt

    monkeypatch.setattr("sdrl.tasks.checkpoints.torch.save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint(checkpoint, target)
    monkeypatch.undo()
    assert target.read_bytes() == before and read_checkpoint(target)["global_step"] == STEPS
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left
    # A temporary file left by a real kill does not disturb the next save.
    (tmp_path / f".last.ckpt.{os.getpid()}.tmp").write_bytes(b"partial")
    AtomicCheckpointIO().save_checkpoint({"global_step": 9}, target)
    assert read_checkpoint(target) == {"global_step": 9}


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_checkpoints_are_read_without_running_code(data, reference, tmp_path, capsys):
    for name in ("last.ckpt", "best.ckpt"):  # everything saved is plain data
        torch.load(reference / name, weights_only=True)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"state_dict": {}, "payload": Evil()}, run / "last.ckpt")
    with pytest.raises(DataError, match="unreadable"):
        read_checkpoint(run / "last.ckpt")
    assert main([*argv(data, run), "--resume"]) == 2
    captured = capsys.readouterr()
    assert "code ran" not in captured.out and "unreadable" in captured.err
