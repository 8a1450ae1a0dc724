"""``sdrl prep oscd --pretrain``: the pretraining set of all cities, on fake and real OSCD."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from sdrl.cli import main
from sdrl.data.datasets import PretrainPairDataset
from sdrl.data.folder import DatasetMeta
from sdrl.data.io import read_info, read_raster
from sdrl.data.prep.oscd import S2_BANDS
from sdrl.data.prep.oscd_pretrain import prepare_oscd_pretrain
from sdrl.data.tiling import tile_grid
from tests.conftest import realdata
from tests.data.test_prep_datasets import make_oscd

IMAGES = "Onera Satellite Change Detection dataset - Images"


def _lists(out: Path) -> dict[str, list[str]]:
    return {p.stem: p.read_text().split() for p in sorted((out / "list").glob("*.txt"))}


def _read(path: Path) -> np.ndarray:
    return read_raster(path).data


def test_pretraining_set_of_all_cities_next_to_the_change_set(tmp_path: Path) -> None:
    raw = make_oscd(tmp_path / "raw")
    change, pretrain = tmp_path / "oscd", tmp_path / "oscd_pretrain"
    assert main(["prep", "oscd", "--src", str(raw), "--out", str(change), "--tile", "16"]) == 0
    argv = ["prep", "oscd", "--src", str(raw), "--out", str(pretrain), "--pretrain"]
    assert main([*argv, "--tile", "16", "--masks", "indices"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oscd", "oscd_pretrain", "raw"]

    lists = _lists(pretrain)
    ids = [i for members in lists.values() for i in members]
    assert len(ids) == len(set(ids)) == 2 * 12  # alpha (train) and beta (test city) tiles
    assert {i.split("_")[0] for i in ids} == {"alpha", "beta"} and lists["val"]
    for tile_id in (i for i in ids if i.startswith("alpha")):  # stacked as the change set is
        np.testing.assert_array_equal(
            _read(pretrain / "A" / f"{tile_id}.tif"), _read(change / "A" / f"{tile_id}.tif")
        )
    for part in ("label", "label_B"):  # a semantic mask of each date, no change label
        assert {p.stem for p in (pretrain / part).iterdir()} == set(ids)
    meta = DatasetMeta.load(pretrain / "dataset.json")
    assert meta.kind == "pretrain" and meta.bands == list(S2_BANDS) and meta.gsd == 10.0
    assert meta.classes == ["other", "vegetation", "water", "built_up"]
    provenance = meta.provenance
    assert provenance["recipe"] == "sdrl prep oscd --pretrain" and provenance["dataset"] == "OSCD"
    assert provenance["cities"] == ["alpha", "beta"] and provenance["masks"] == "indices"
    assert provenance["scenes"]["beta"] == {
        "city": "beta",
        "list": "test",
        "aligned": False,
        "tiles": 12,
        "crs": "EPSG:32633",
        "gsd": 10.0,
    }
    assert provenance["index_bands"] == {"red": "B04", "green": "B03", "nir": "B08", "swir1": "B11"}
    sample = PretrainPairDataset(pretrain, "train")[0]
    assert sample["image_a"].shape == (13, 16, 16) and sample["mask_b"].shape == (16, 16)


def test_pretrain_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = make_oscd(tmp_path / "raw")
    result = prepare_oscd_pretrain(
        raw, tmp_path / "km", masks="kmeans:3", tile=32, without_test_cities=True
    )
    assert result.classes == ["cluster_0", "cluster_1", "cluster_2"]
    default = tmp_path / "default"
    prepare_oscd_pretrain(raw, default, tile=32, without_test_cities=True)
    assert DatasetMeta.load(default / "dataset.json").provenance["masks"] == "kmeans:16"
    ids = [i for members in _lists(tmp_path / "km").values() for i in members]
    assert {i.split("_")[0] for i in ids} == {"alpha"} and len(ids) == 2 * 2
    provenance = DatasetMeta.load(tmp_path / "km" / "dataset.json").provenance
    assert provenance["test_cities"] == "left out" and provenance["kmeans"]["k"] == 3
    argv = ["prep", "oscd", "--src", str(raw), "--out", str(tmp_path / "x")]
    assert main([*argv, "--masks", "indices", "--workers", "2"]) == 2
    assert "--masks, --workers: options of the pretraining set; add --pretrain" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--pretrain", "--masks", "kmeans:1"]) == 2
    assert "--masks: expected indices, kmeans or kmeans:K" in capsys.readouterr().err
    assert main([*argv, "--pretrain", "--tile", "64"]) == 2  # 60x48 cities: none fits
    assert "cities of at least 64x64 pixels" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_broken_city_is_named_and_nothing_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = make_oscd(tmp_path / "raw")
    broken = raw / IMAGES / "beta" / "imgs_2_rect"
    (broken / "B03.tif").write_bytes(b"not a tiff")
    argv = ["prep", "oscd", "--src", str(raw), "--out", str(tmp_path / "pre"), "--pretrain"]
    assert main([*argv, "--tile", "16", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert f"OSCD city 'beta' ({raw / IMAGES / 'beta'}): " in err and "B03.tif" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no out, no stacked files


@pytest.mark.realdata
def test_real_oscd_pretraining_set_of_three_cities(tmp_path: Path) -> None:
    """Three real cities (two train, the test city) at 64 px, in a raw layout of links."""
    src = realdata("cd", "oscd_dev10") / IMAGES
    images = tmp_path / "raw" / "images"
    images.mkdir(parents=True)
    (images / "train.txt").write_text("bercy,paris")
    (images / "test.txt").write_text("mumbai")
    for city in ("bercy", "paris", "mumbai"):
        (images / city).symlink_to(src / city)
    out = tmp_path / "pre"
    start = time.perf_counter()
    result = prepare_oscd_pretrain(tmp_path / "raw", out, masks="indices", tile=64, workers=2)
    seconds = time.perf_counter() - start
    lists = _lists(out)
    ids = [i for members in lists.values() for i in members]
    expected = 0
    for city in ("bercy", "paris", "mumbai"):
        info = read_info(next((src / city / "imgs_1").glob("*B02.tif")))
        grid = list(tile_grid(info.height, info.width, 64))
        kept = [i for i in ids if i.startswith(f"{city}_")]
        assert 0 < len(kept) <= len(grid)  # edge tiles overlapping a val tile may be dropped
        expected += len(grid)
    assert result.total + result.dropped == expected and result.skipped == 0
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.bands == list(S2_BANDS) and len(meta.mean) == 13
    assert all(np.isfinite(meta.mean)) and all(s > 0 for s in meta.std)
    assert meta.crs == "EPSG:4326" and meta.gsd == 10.0
    masks = np.concatenate([_read(out / "label" / f"{i}.tif").ravel() for i in ids[:20]])
    assert len(np.unique(masks)) >= 2 and masks.max() <= 3  # indices on real Sentinel-2
    sample = PretrainPairDataset(out, "val")[0]
    assert sample["image_a"].shape == (13, 64, 64)
    assert seconds < 120, f"{seconds:.0f} s for three cities"
