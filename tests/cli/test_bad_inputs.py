"""Every sub-command with bad inputs: exit 2, one line on stderr, no traceback, inputs untouched."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from sdrl.cli import main
from sdrl.data.folder import write_split
from sdrl.data.synth import dataset as synth_dataset
from sdrl.data.synth import generate_dataset
from tests.data.test_prep_datasets import make_levir

pytestmark = pytest.mark.usefixtures("one_thread")


class NotPlainData:
    """Pickled into a checkpoint: refused by ``torch.load(weights_only=True)``."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Tiny inputs of every command (all under one folder, hashed before and after)."""
    root = tmp_path_factory.mktemp("inputs")
    generate_dataset(root / "cd", kind="change", num=4, size=32, bands=3, seed=0)
    generate_dataset(root / "pre", kind="pretrain", num=4, size=32, bands=3, seed=0)
    make_levir(root / "levir", {"train": ["train_1"]}, size=64)
    (root / "oscd" / "images").mkdir(parents=True)
    for name in ("train.txt", "test.txt"):
        (root / "oscd" / "images" / name).write_text("")
    torch.save({"state_dict": {}, "sdrl": NotPlainData()}, root / "code.ckpt")
    (root / "run").mkdir()
    shutil.copy(root / "code.ckpt", root / "run" / "best.ckpt")
    shutil.copytree(root / "cd", root / "bad_list")
    write_split(root / "bad_list", "val", ["000001", "missing"])
    shutil.copytree(root / "cd", root / "bad_meta")
    meta = json.loads((root / "bad_meta" / "dataset.json").read_text())
    meta["label_values"] = [0, 1]
    (root / "bad_meta" / "dataset.json").write_text(json.dumps(meta))
    (root / "blocker").write_text("a regular file\n")
    (root / "list.yaml").write_text("num: [1, 2]\n")
    (root / "train.yaml").write_text("max-steps: [1, 2]\nbackbone: resnet_tiny\n")
    (root / "broken.yaml").write_text("size: [1,\n  2\nkind: change\n")
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``main(argv)`` with the logging of a fresh process (its INFO lines go to stderr)."""
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    try:
        code = main(argv)
    finally:
        root.handlers, root.level = handlers, level
    return code, capsys.readouterr().err


CASES = {
    "synth": [
        "synth --kind change --out {in}/blocker/x --num 2 --size 32",
        "synth --kind change --out {out}/s --num 0",
        "synth --kind change --out {out}/s --size 32 --bands -1",
        "synth --config {in}/list.yaml --kind change --out {out}/s",
        "synth --config {in}/broken.yaml --out {out}/s",
    ],
    "prep pairs": [
        "prep pairs --before {in}/cd/A/000000.tif --after {in}/cd/B/000000.tif --masks kmeans:2"
        " --tile 16 --out {in}/cd --overwrite",
        "prep pairs --before {in}/cd/A/000000.tif --after {in}/cd/B/000000.tif --masks kmeans:2"
        " --tile 0 --out {out}/p",
        "prep pairs --before {in}/cd/A/000000.tif --after {in}/cd/B/000000.tif --masks kmeans:1"
        " --out {out}/p",
        "prep pairs --before {in}/cd/A/000000.tif --after {in}/nothing.tif --masks indices"
        " --out {out}/p",
    ],
    "prep levir": [
        "prep levir --src {in}/levir --out {in}/levir --overwrite --tile 32",
        "prep levir --src {in}/levir --out {in}/levir/train/A --overwrite --tile 32",
        "prep levir --src {in}/levir --out {out}/l --tile 0",
        "prep levir --src {in}/levir --out {out}/l --tile 128",
    ],
    "prep whu": [
        "prep whu --src {in}/levir --out {out}/w --tile -5",
        "prep whu --src {in}/levir --out {out}/w --split-block 0",
        "prep whu --src {in}/levir --out {in}/levir/train --overwrite",
    ],
    "prep oscd": [
        "prep oscd --src {in}/oscd --out {out}/o",
        "prep oscd --src {in}/oscd --out {out}/o --tile 0",
        "prep oscd --src {in}/cd --out {out}/o",
    ],
    "info": [
        "info {in}/cd --max-tiles -1",
        "info {in}/bad_list",
        "info {in}/bad_meta",
        "info {in}/nothing",
    ],
    "pretrain": [
        "pretrain --data {in}/nothing --out {out}/p",
        "pretrain --config {in}/train.yaml --data {in}/pre --out {out}/p",
        "pretrain --data {in}/pre --out {in}/pre/run",
        "pretrain --data {in}/pre --out {out}/p --weights {in}/code.ckpt --backbone resnet_tiny"
        " --batch-size 2",
    ],
    "finetune": [
        "finetune --data {in}/cd --out {in}/run --init {in}/run/best.ckpt --overwrite",
        "finetune --data {in}/cd --out {out}/f --init {in}/code.ckpt --backbone resnet_tiny"
        " --batch-size 2",
        "finetune --data {in}/cd --out {out}/f --max-steps 0",
        "finetune --config {in}/train.yaml --data {in}/cd --out {out}/f",
        "finetune --data {in}/pre --out {out}/f",
    ],
    "evaluate": [
        "evaluate --data {in}/cd --checkpoint {in}/run/best.ckpt --out {in}/run/best.ckpt",
        "evaluate --data {in}/cd --checkpoint {in}/run/best.ckpt --out {out}/m.json"
        " --save-predictions {in}/cd/A",
        "evaluate --data {in}/cd --checkpoint {in}/code.ckpt --out {out}/m.json",
        "evaluate --data {in}/cd --checkpoint {in}/run/best.ckpt --out {in}/blocker/m.json",
        "evaluate --data {in}/cd --checkpoint {in}/code.ckpt --out {out}/m.json --tile 0",
    ],
    "predict": [
        "predict --before {in}/cd/A/000000.tif --after {in}/cd/B/000000.tif"
        " --checkpoint {in}/code.ckpt --out {in}/cd/A/000000.tif",
        "predict --before {in}/cd/A/000000.tif --after {in}/cd/B/000000.tif"
        " --checkpoint {in}/code.ckpt --out {out}/map.tif",
        "predict --before {in}/cd/A/000000.tif --after {in}/cd/B/000000.tif"
        " --checkpoint {in}/code.ckpt --out {out}/map.tif --tile 0",
        "predict --before {in}/cd/A/000000.tif --after {in}/cd/B/000000.tif"
        " --checkpoint {in}/code.ckpt --out {in}/blocker/map.tif",
    ],
    "demo": [
        "demo --out {out}/d --size 48",
        "demo --out {out}/d --num 4",
        "demo --out {in}/blocker",
        "demo --out {out}/d --backbone nope",
        "demo --out {out}/d --label-fraction 0",
    ],
}


@pytest.mark.parametrize("command", list(CASES))
def test_bad_inputs_exit_2_with_one_line_and_leave_inputs_untouched(
    command, inputs, tmp_path, capsys
):
    before = _hashes(inputs)
    for template in CASES[command]:
        argv = template.format(**{"in": inputs, "out": tmp_path}).split()
        code, err = _run(argv, capsys)
        assert code == 2, (template, err)
        assert err.startswith("sdrl: error: ") and err.count("\n") == 1, (template, err)
        assert "Traceback" not in err, template
        assert _hashes(inputs) == before, template  # not one byte changed, nothing added
        assert not (tmp_path / "d").exists(), template  # demo checks everything first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial output


def test_os_errors_are_one_line_naming_the_path(inputs, tmp_path, capsys, monkeypatch):
    def denied(self: object, tile_id: str, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", f"{tmp_path}/s/A/{tile_id}.tif")

    monkeypatch.setattr(synth_dataset.DatasetWriter, "add", denied)
    code, err = _run(["synth", "--kind", "change", "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"{tmp_path}/s/A/000000.tif: Permission denied. Check the permissions" in err
    assert list(tmp_path.iterdir()) == []

    def full(self: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(synth_dataset.DatasetWriter, "add", full)
    code, err = _run(["synth", "--kind", "change", "--out", str(tmp_path / "s")], capsys)
    assert err == "sdrl: error: No space left on device. Free some space or write somewhere else\n"
    assert list(tmp_path.iterdir()) == []
