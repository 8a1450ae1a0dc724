"""experiments/oscd_folds.py: folds hold every city out once; fold folders; the aggregate."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.experiments_scripts import load_experiment

CITIES = ["abudhabi", "beihai", "mumbai", "paris", "pisa"]


@pytest.fixture(scope="module")
def folds() -> ModuleType:
    return load_experiment("oscd_folds")


@pytest.mark.parametrize("count", [2, 3, 5])
def test_every_city_is_held_out_exactly_once(folds, count):
    held = [c for k in range(count) for c in folds.held_out(CITIES, count, k)]
    assert sorted(held) == sorted(CITIES)


def _folder(root: Path, ids: list[str]) -> None:
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
        for tile in ids:
            (root / sub / f"{tile}.tif").write_bytes(b"")
    (root / "dataset.json").write_text(json.dumps({"kind": "change", "provenance": {}}))


def test_fold_folders_split_tiles_by_city(folds, tmp_path):
    tiles = [f"{c}_{y:04d}_0000" for c in CITIES for y in (0, 96)]
    _folder(tmp_path / "tiles", tiles)
    _folder(tmp_path / "whole", CITIES)
    root = folds.write_fold(tmp_path, CITIES, 2, 1)
    test = (root / "whole" / "list" / "test.txt").read_text().split()
    train = (root / "tiles" / "list" / "train.txt").read_text().split()
    assert test == folds.held_out(CITIES, 2, 1) == ["beihai", "paris"]
    assert train == sorted(t for t in tiles if not t.startswith(("beihai_", "paris_")))
    assert (root / "tiles" / "A").resolve() == (tmp_path / "tiles" / "A").resolve()
    meta = json.loads((root / "whole" / "dataset.json").read_text())
    assert meta["provenance"]["held_out"] == ["beihai", "paris"]


def test_aggregate_means_over_folds_and_seeds(folds, tmp_path):
    for fold, values in enumerate([(0.2, 0.4), (0.6, 0.8)]):
        out = tmp_path / f"xfold{fold}"
        out.mkdir()
        with (out / "results.csv").open("w", newline="") as file:
            columns = ["init", "head", "fraction", "seed", "f1", "iou", "metrics"]
            writer = csv.DictWriter(file, columns)
            writer.writeheader()
            for seed, f1 in enumerate(values):
                metrics = out / f"m{seed}.json"
                metrics.write_text(
                    json.dumps(
                        {"f1": f1, "mean_image_f1": f1 + 0.1, "average_precision": f1 + 0.05}
                    )
                )
                writer.writerow(
                    {"init": "sdrl", "head": "fpn", "fraction": "1", "seed": seed, "f1": f1,
                     "iou": f1 / 2, "metrics": str(metrics)}
                )  # fmt: skip
    folds.aggregate(tmp_path, "x", 2, CITIES, ["--seeds", "0,1"])
    report = (tmp_path / "xresults.md").read_text()
    assert (
        "| sdrl | fpn | 1 | 4 | 0.500 ± 0.258 | 0.250 ± 0.129 | 0.600 ± 0.258 | 0.550 ± 0.258 "
        "| 0.300 / 0.700 |" in report
    )
    with (tmp_path / "xresults.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["fold"] for r in rows] == ["0", "0", "1", "1"]


def test_a_pretraining_set_with_other_masks_is_refused(folds, tmp_path):
    pretrain = tmp_path / "pretrain"
    folds._check_masks(pretrain, "kmeans:16")  # none yet: it will be written
    pretrain.mkdir()
    (pretrain / "dataset.json").write_text(json.dumps({"provenance": {"masks": "kmeans:8"}}))
    folds._check_masks(pretrain, "kmeans")  # K = 8 spelt short
    with pytest.raises(SystemExit, match="holds masks kmeans:8, not --masks indices"):
        folds._check_masks(pretrain, "indices")


@pytest.mark.parametrize("keep", ["train", "test"])
def test_fold_pretraining_set_keeps_one_side_of_the_fold(folds, tmp_path, keep):
    tiles = [f"{c}_{y:04d}_0000" for c in CITIES for y in (0, 128)]
    _folder(tmp_path / "pretrain", tiles)
    (tmp_path / "pretrain" / "label_B").mkdir()
    (tmp_path / "pretrain" / "list").mkdir()
    (tmp_path / "pretrain" / "list" / "train.txt").write_text("\n".join(tiles[1::2]) + "\n")
    (tmp_path / "pretrain" / "list" / "val.txt").write_text("\n".join(tiles[::2]) + "\n")
    folder = folds.write_fold_pretrain(tmp_path, CITIES, 2, 1, keep)
    held = ("beihai_", "paris_")
    for split, listed in (("train", tiles[1::2]), ("val", tiles[::2])):
        ids = (folder / "list" / f"{split}.txt").read_text().split()
        assert ids == [t for t in listed if t.startswith(held) == (keep == "test")]
    assert (folder / "label_B").resolve() == (tmp_path / "pretrain" / "label_B").resolve()
    meta = json.loads((folder / "dataset.json").read_text())
    expected = ["beihai", "paris"] if keep == "test" else ["abudhabi", "mumbai", "pisa"]
    assert meta["provenance"]["cities"] == expected


def test_fold_pretraining_set_refuses_a_fold_with_no_tile_left(folds, tmp_path):
    tiles = ["beihai_0000_0000", "paris_0000_0000"]
    _folder(tmp_path / "pretrain", tiles)
    (tmp_path / "pretrain" / "list").mkdir()
    (tmp_path / "pretrain" / "list" / "train.txt").write_text("\n".join(tiles) + "\n")
    with pytest.raises(SystemExit, match="no train tile"):
        folds.write_fold_pretrain(tmp_path, CITIES, 2, 1, "train")


@pytest.mark.parametrize("cities_flag", ["all", "train", "test"])
def test_main_passes_each_fold_its_pretraining_set(folds, tmp_path, monkeypatch, cities_flag):
    tiles = [f"{c}_0000_0000" for c in CITIES]
    for name in ("tiles", "pretrain"):
        _folder(tmp_path / name, tiles)
    _folder(tmp_path / "whole", CITIES)
    (tmp_path / "pretrain" / "list").mkdir()
    (tmp_path / "pretrain" / "list" / "train.txt").write_text("\n".join(tiles) + "\n")
    calls: list[list[str]] = []

    class Compare:
        @staticmethod
        def main(argv: list[str]) -> int:
            calls.append(argv)
            return 0

    monkeypatch.setattr(folds, "prepare", lambda *a: list(CITIES))
    monkeypatch.setattr(folds, "_compare_module", lambda: Compare)
    argv = ["--src", "x", "--work", str(tmp_path), "--pretrain-cities", cities_flag]
    assert folds.main([*argv, "--", "--inits", "sdrl"]) == 0
    for fold, call in enumerate(calls):
        data = Path(call[call.index("--pretrain-data") + 1])
        runs = Path(call[call.index("--pretrain-dir") + 1])
        if cities_flag == "all":
            assert (data, runs) == (tmp_path / "pretrain", tmp_path / "runs_pretrain")
        else:
            assert runs == tmp_path / "runs_pretrain" / f"{cities_flag}_fold{fold}"
            seen = (data / "list" / "train.txt").read_text().split()
            held = folds.held_out(CITIES, 2, fold)
            assert seen and all((t.split("_")[0] in held) == (cities_flag == "test") for t in seen)
    assert len(calls) == 2
