"""The task harness: registry, generated flags, checkpoint order, logged steps, Python API."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import pydoc
from pathlib import Path

import pytest

import sdrl
from sdrl.cli import build_parser, main
from sdrl.models.backbones import BACKBONES
from sdrl.models.init import _MODELS
from sdrl.models.names import BACKBONE_NAMES, CHANGE_MODEL_NAMES, TEST_BACKBONES
from sdrl.ssl.methods import METHODS
from sdrl.tasks.checkpoints import RunCheckpoint
from sdrl.tasks.pretrain.config import METHOD_NAMES
from sdrl.tasks.registry import task_specs
from tests.runs import pretrain_argv, synth_data

pytestmark = pytest.mark.usefixtures("one_thread")

HEADS = ["--hidden-dim", "32", "--output-dim", "16"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synth_data(tmp_path_factory, "pre", "pretrain", num=8, size=64, bands=4, seed=0)


def test_light_name_lists_match_the_registries():
    assert set(BACKBONES) == set(BACKBONE_NAMES) | set(TEST_BACKBONES)
    assert set(_MODELS) == set(CHANGE_MODEL_NAMES)
    assert list(METHODS) == list(METHOD_NAMES)


def test_each_registered_task_is_a_command_with_generated_flags(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for spec in task_specs():
        *group, name = spec.command.split()  # "crop train": an action of `sdrl crop`
        choices = commands
        if group:
            sub = commands[group[0]]._subparsers._group_actions[0]  # type: ignore[union-attr]
            choices = sub.choices
        assert name in choices
        flags = {a.dest for a in choices[name]._actions}
        assert {"max_steps", "lr", "resume", "seed", "devices", "precision"} <= flags
        fields = {f.name for f in dataclasses.fields(spec.config) if f.metadata.get("flag")}
        assert fields <= flags
    for command in ("pretrain", "finetune"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "resnet18" in text and not any(name in text for name in TEST_BACKBONES)


def test_last_checkpoint_is_written_before_best_and_steps_agree(
    data, tmp_path, monkeypatch, capsys
):
    written: list[str] = []
    save_last = RunCheckpoint._save_last

    def record(self, trainer):
        save_last(self, trainer)
        written.append(f"last@{trainer.global_step}")

    import sdrl.tasks.checkpoints as checkpoints

    copy = checkpoints.atomic_copy

    def record_copy(source, target):
        copy(source, target)
        written.append(f"{Path(target).name}@copy")

    monkeypatch.setattr(RunCheckpoint, "_save_last", record)
    monkeypatch.setattr(checkpoints, "atomic_copy", record_copy)
    run = tmp_path / "run"
    argv = pretrain_argv(data, run, *HEADS, "--max-steps", "4", "--val-every", "2")
    assert main([*argv, "--checkpoint-every", "100", "--log-every", "1"]) == 0
    assert written[:2] == ["last@2", "best.ckpt@copy"]  # the first validation improves
    # The console's "at step N" is the step of the validation row in metrics.csv.
    line = capsys.readouterr().out
    best_step = int(line.rsplit("at step ", 1)[1].split(")")[0])
    with open(run / "metrics.csv", newline="") as file:
        rows = [r for r in csv.DictReader(file) if r.get("val/probe_acc")]
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert best_step in (2, 4)


def test_python_api_is_listed_by_help():
    importlib.import_module("sdrl.evaluation")  # the module must not shadow sdrl.evaluate
    text = pydoc.render_doc(sdrl)
    for name in ("pretrain", "finetune", "evaluate", "predict_from_checkpoint", "read_header"):
        assert name in text and hasattr(sdrl, name)
    assert sdrl.pretrain.__doc__ and sdrl.FinetuneConfig.__doc__ and callable(sdrl.evaluate)


def test_overwrite_keeps_the_earlier_run_until_the_new_one_is_built(data, tmp_path, capsys):
    run = tmp_path / "run"
    argv = pretrain_argv(data, run, *HEADS, "--max-steps", "1", "--val-split", "none")
    assert main(argv) == 0
    before = (run / "last.ckpt").read_bytes(), (run / "best.ckpt").read_bytes()
    bad = [a if a != str(data) else str(tmp_path / "typo") for a in argv]
    assert main([*bad, "--overwrite"]) == 2
    assert main([*argv, "--overwrite", "--backbone", "no_such_net"]) == 2
    assert ((run / "last.ckpt").read_bytes(), (run / "best.ckpt").read_bytes()) == before
    assert main([*argv, "--overwrite", "--seed", "1"]) == 0
    assert (run / "last.ckpt").read_bytes() != before[0]


@pytest.mark.parametrize(("every", "probed"), [("1", [1, 2, 3]), ("5", [1, 3])])
def test_probe_every_flag_sets_the_probed_validations(data, tmp_path, every, probed):
    run = tmp_path / "run"
    argv = pretrain_argv(data, run, *HEADS, "--max-steps", "3", "--val-every", "1")
    assert main([*argv, "--probe-every", every]) == 0
    with open(run / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["step"]) for r in rows if r.get("val/probe_acc")] == probed
    assert [int(r["step"]) for r in rows if r.get("val/loss")] == [1, 2, 3]
