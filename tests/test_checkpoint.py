"""The checkpoint header: round trip, schema versions, kinds, and no Lightning on import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sdrl.checkpoint import SCHEMA_VERSION, CheckpointHeader, read_header
from sdrl.errors import DataError


def header(**changes) -> CheckpointHeader:
    base = CheckpointHeader(
        kind="change", backbone="resnet18", in_channels=2, bands=["a", "b"],
        mean=[1.0, 2.0], std=[3.0, 4.0], model="siamese", extra={"threshold": 0.5},
    )  # fmt: skip
    return base.replace(**changes)


def test_round_trip_keeps_fields_and_task_extras(tmp_path):
    path = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}, "sdrl": header(wavelengths_nm=(490.0, None)).to_dict()}, path)
    stored = torch.load(path, weights_only=True)["sdrl"]
    assert stored["threshold"] == 0.5 and stored["schema_version"] == SCHEMA_VERSION
    assert stored["wavelengths_nm"] == [490.0, None]  # plain lists, not tuples
    read = read_header(path, kinds=("change",))
    assert read == header(wavelengths_nm=[490.0, None])
    assert read.extra == {"threshold": 0.5} and read.mean == [1.0, 2.0]


def test_newer_schema_wrong_kind_and_foreign_files_name_the_file(tmp_path):
    newer = tmp_path / "newer.ckpt"
    torch.save({"sdrl": {**header().to_dict(), "schema_version": SCHEMA_VERSION + 1}}, newer)
    with pytest.raises(DataError, match=r"newer\.ckpt.*schema 2, newer than this sdrl's 1"):
        read_header(newer)
    with pytest.raises(DataError, match="expected a pretraining checkpoint.*found a change"):
        read_header(_saved(tmp_path), kinds=("pretrain",))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(DataError, match="foreign.ckpt.*without one"):
        read_header(foreign)
    with pytest.raises(ValueError, match="shadow header fields"):
        CheckpointHeader("change", None, 1, ["a"], [0.0], [1.0], extra={"mean": 1})


def _saved(tmp_path):
    path = tmp_path / "change.ckpt"
    torch.save({"sdrl": header().to_dict()}, path)
    return path


def test_sdrl_0_1_checkpoints_read_as_schema_0(tmp_path):
    path = tmp_path / "old.ckpt"
    block = {
        "method": "sdrl", "backbone": "resnet18", "in_channels": 3, "bands": ["r", "g", "b"],
        "mean": [0.0] * 3, "std": [1.0] * 3, "classes": ["x"], "rng": {}, "version": "0.1.0",
    }  # fmt: skip
    torch.save({"sdrl": block}, path)
    read = read_header(path, kinds=("pretrain",))
    assert read.kind == "pretrain" and read.schema_version == 0 and "rng" not in read.extra


def test_inference_and_header_modules_do_not_import_lightning():
    code = (
        "import sys, sdrl, sdrl.checkpoint, sdrl.predict, sdrl.predict.model, sdrl.tasks, "
        "sdrl.tasks.registry, sdrl.cli\n"
        "heavy = [m for m in sys.modules if m.startswith(('pytorch_lightning', 'lightning'))]\n"
        "assert not heavy, heavy[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
