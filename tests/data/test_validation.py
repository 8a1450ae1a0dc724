"""Values are checked before use: dataset.json types, split lists, tile sizes, empty sources."""

from __future__ import annotations

import json

import pytest

from sdrl.data.folder import DatasetMeta, write_split
from sdrl.data.prep.levir import prepare_levir
from sdrl.data.prep.oscd import prepare_oscd
from sdrl.data.prep.whu import prepare_whu
from sdrl.data.summary import summarize
from sdrl.errors import ConfigError, DataError
from tests.data.test_datasets import make_change_folder
from tests.data.test_prep_datasets import make_levir

GOOD = {"kind": "change", "bands": ["r", "g", "b"], "classes": ["unchanged", "changed"]}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"label_values": [0, 255]}, '"label_values" as a mapping'),
        ({"label_values": {"70000": 1}}, '"label_values" as a mapping'),
        ({"mean": ["1", "2", "3"]}, '"mean" as a list of numbers'),
        ({"std": 3.0}, '"std" as a list of numbers'),
        ({"bands": "rgb"}, '"bands" as a list of band names'),
        ({"kind": 1}, '"kind" as a text'),
        ({"classes": None}, '"classes" as a list of class names'),
        ({"ignore_index": "255"}, '"ignore_index" as an integer'),
        ({"ignore_index": True}, '"ignore_index" as an integer'),
        ({"gsd": "10 m"}, '"gsd" as a number'),
        ({"provenance": []}, '"provenance" as a mapping'),
        ({"bands": None}, '"bands" as a list'),
    ],
)
def test_dataset_json_types_are_checked(tmp_path, change, named):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(DataError, match=named) as error:
        DatasetMeta.load(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_dataset_json_nulls_and_string_keys_pass(tmp_path):
    path = tmp_path / "dataset.json"
    values = {"label_values": {"0": 0, "255": 1}, "mean": None, "gsd": 0.5, "ignore_index": 255}
    path.write_text(json.dumps({**GOOD, **values}))
    assert DatasetMeta.load(path).label_values == {0: 0, 255: 1}
    path.write_text(json.dumps({"kind": "change"}))
    with pytest.raises(DataError, match='a "bands" entry'):
        DatasetMeta.load(path)


def test_info_refuses_split_lists_naming_missing_tiles(tmp_path):
    root = make_change_folder(tmp_path / "d", n=4)
    write_split(root, "val", ["tile_2", "tile_9", "tile_8"])
    with pytest.raises(DataError, match=r"tile_9.png: .* 2 missing \(tile_9, tile_8\)"):
        summarize(str(root))
    write_split(root, "val", ["tile_2"])
    assert summarize(str(root)).splits["val"] == 1
    with pytest.raises(ConfigError, match="--max-tiles"):
        summarize(str(root), max_tiles=0)


def test_prep_tile_sizes_and_outputs_are_checked_first(tmp_path):
    raw = make_levir(tmp_path / "raw", {"train": ["train_1"]}, size=64)
    for tile in (0, -256):
        with pytest.raises(ConfigError, match="--tile: expected a positive number"):
            prepare_levir(raw, tmp_path / "out", tile=tile)
        with pytest.raises(ConfigError, match="--tile"):
            prepare_whu(raw, tmp_path / "out", tile=tile)
        with pytest.raises(ConfigError, match="--tile"):
            prepare_oscd(raw, tmp_path / "out", tile=tile)
    with pytest.raises(DataError, match="a folder holding the input"):
        prepare_levir(raw / "train", raw, tile=32, overwrite=True)
    with pytest.raises(DataError, match="a path inside the input folder"):
        prepare_levir(raw, raw / "train" / "A", tile=32, overwrite=True)
    assert sorted(p.name for p in (raw / "train" / "A").iterdir()) == ["train_1.png"]
    assert not (tmp_path / "out").exists()


def test_oscd_without_cities_is_an_error(tmp_path):
    images = tmp_path / "raw" / "images"
    images.mkdir(parents=True)
    (images / "train.txt").write_text("")
    (images / "test.txt").write_text("\n")
    with pytest.raises(DataError, match="images: expected city folders .* found no city"):
        prepare_oscd(tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out").exists()
