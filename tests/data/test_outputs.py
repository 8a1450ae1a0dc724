"""The shared output check: an output never is, holds or lies inside an input; unwritable paths."""

from __future__ import annotations

import os

import pytest

from sdrl.data.outputs import check_output
from sdrl.errors import DataError


@pytest.fixture
def inputs(tmp_path):
    data = tmp_path / "data"
    (data / "A").mkdir(parents=True)
    (data / "A" / "t.tif").write_bytes(b"x")
    model = tmp_path / "run" / "best.ckpt"
    model.parent.mkdir()
    model.write_bytes(b"y")
    return data, model


@pytest.mark.parametrize(
    ("out", "folder", "found"),
    [
        ("run/best.ckpt", False, "found the input"),  # evaluate --out CKPT
        ("run", True, "a folder holding the input"),  # finetune --out RUN --init RUN/best.ckpt
        (".", True, "a folder holding the input"),  # prep --out . --overwrite
        ("data", True, "the input"),
        ("data/A", True, "a path inside the input folder"),  # --save-predictions DATA/A
        ("data/A/t.tif", False, "the input"),
        ("data/metrics.json", False, "a path inside the input folder"),
    ],
)
def test_an_output_that_is_holds_or_lies_in_an_input_is_refused(
    inputs, tmp_path, monkeypatch, out, folder, found
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=found) as error:
        check_output(out, inputs, folder=folder, flag="--out")
    assert "Inputs are never overwritten" in str(error.value)


def test_symlinks_and_relative_spellings_are_seen_through(inputs, tmp_path, monkeypatch):
    data, model = inputs
    (tmp_path / "link").symlink_to(data, target_is_directory=True)
    with pytest.raises(DataError, match="the input"):
        check_output(tmp_path / "link", [data], folder=True)
    monkeypatch.chdir(model.parent)
    with pytest.raises(DataError, match="the input"):
        check_output("../run/./best.ckpt", [model], folder=False)


def test_outputs_beside_the_inputs_pass(inputs, tmp_path):
    data, model = inputs
    assert check_output(tmp_path / "out" / "m.json", [data, model, None], folder=False).name
    assert check_output(tmp_path / "run" / "metrics.json", [data, model], folder=False)
    assert check_output(tmp_path / "pred", [data, model], folder=True)


def test_unwritable_paths_fail_before_any_work(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(DataError, match="found a regular file"):
        check_output(blocker / "deeper" / "out.tif", folder=False)
    with pytest.raises(DataError, match="an output folder, found a file"):
        check_output(blocker, folder=True)
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataError, match="an output file, found a folder"):
        check_output(tmp_path / "dir", folder=False)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # as a non-root user
    with pytest.raises(DataError, match="no write permission"):
        check_output(tmp_path / "new" / "out", folder=True)
    assert not (tmp_path / "new").exists()  # nothing is created by the check
