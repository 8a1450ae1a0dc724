"""``sdrl prep pairs``: tiling, georeferencing, masks, splits, atomic output and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as transform_points

from sdrl.cli import main
from sdrl.data import writer as writer_module
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.folder import DatasetFolder, DatasetMeta
from sdrl.data.grid import align_to
from sdrl.data.io import Window, read_info, read_raster, write_raster
from sdrl.data.masks import vector_mask
from sdrl.data.prep.pairs import prepare_pairs
from sdrl.data.prep.splits import blocked_split
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.tiling import Tile
from sdrl.errors import ConfigError, DataError
from tests.conftest import CRS_UTM33, realdata

H, W = 40, 56
ORIGIN = (500000.0, 5000000.0)


@pytest.fixture
def pair(make_tif):
    """Before/after uint16 images (4 bands, 40x56) and a 0..2 label raster on one grid."""
    rng = np.random.default_rng(0)
    before = make_tif("A.tif", rng.integers(1, 5000, (4, H, W), dtype=np.uint16))
    after = make_tif("B.tif", rng.integers(1, 5000, (4, H, W), dtype=np.uint16))
    labels = make_tif("L.tif", rng.integers(0, 3, (H, W), dtype=np.uint8))
    return before, after, labels


def _offsets(length, size, stride):
    """Expected tile offsets, written out independently of tile_grid."""
    offsets = list(range(0, length - size + 1, stride))
    return offsets if offsets[-1] == length - size else [*offsets, length - size]


def _position(tile_id):
    _, row, col = tile_id.rsplit("_", 2)
    return int(row), int(col)


def test_tiles_positions_georeferencing_and_pixels_round_trip(pair, tmp_path):
    before, after, labels = pair
    out = tmp_path / "out"
    summary = prepare_pairs(
        before, after, out, labels=labels, tile=16, stride=12, val_fraction=0.0, name="scene"
    )
    ids = set(DatasetFolder(out).ids("all").tolist())
    expected = {f"scene_{r:04d}_{c:04d}" for r in _offsets(H, 16, 12) for c in _offsets(W, 16, 12)}
    assert ids == expected and len(ids) == 3 * 5 and summary.tiles == {"train": 15}
    assert not (out / "label_B").exists()
    with (
        rasterio.open(before) as src_a,
        rasterio.open(after) as src_b,
        rasterio.open(labels) as src_l,
    ):
        for tile_id in sorted(ids):
            row, col = _position(tile_id)
            window = Window(col, row, 16, 16)
            for part, src in (("A", src_a), ("B", src_b), ("label", src_l)):
                with rasterio.open(out / part / f"{tile_id}.tif") as tile:
                    assert tile.crs == src.crs
                    assert tile.transform.almost_equals(src.window_transform(window))
                    np.testing.assert_array_equal(tile.read(), src.read(window=window))
            with rasterio.open(out / "A" / f"{tile_id}.tif") as tile:
                assert list(tile.descriptions) == ["band_1", "band_2", "band_3", "band_4"]


def test_dataset_json_and_pretrain_dataset_loading(pair, tmp_path):
    before, after, labels = pair
    out = tmp_path / "out"
    prepare_pairs(
        before, after, out, labels=labels, labels_after=labels, tile=8, classes=["a", "b", "c"]
    )
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.kind == "pretrain" and meta.classes == ["a", "b", "c"]
    assert meta.ignore_index == IGNORE_INDEX and meta.gsd == 10.0 and meta.crs == "EPSG:32633"
    assert meta.provenance["before"] == str(before.resolve())
    assert meta.provenance["labels"] == str(labels.resolve())
    assert meta.provenance["tile"] == 8 and meta.provenance["masks"] == "labels"
    train = PretrainPairDataset(out, "train")
    val = PretrainPairDataset(out, "val")
    assert len(train) > 0 and len(val) > 0
    sample = val[0]
    row, col = _position(sample["id"])
    with rasterio.open(labels) as src:
        expected = src.read(1, window=Window(col, row, 8, 8))
    np.testing.assert_array_equal(sample["mask_a"].numpy(), expected)
    np.testing.assert_array_equal(sample["mask_b"].numpy(), expected)
    assert sample["image_a"].shape == (4, 8, 8)


def test_labels_without_classes_infer_the_ids_found(pair, tmp_path):
    before, after, labels = pair
    summary = prepare_pairs(before, after, tmp_path / "out", labels=labels, tile=8)
    assert summary.classes == ["class_0", "class_1", "class_2"]


def test_change_kind_keeps_ignore_and_loads_with_change_dataset(pair, make_tif, tmp_path):
    before, after, _ = pair
    raw = np.random.default_rng(1).choice([0, 1, 9], size=(H, W)).astype(np.uint8)
    change = make_tif("change.tif", raw)
    out = tmp_path / "cd"
    code = main(
        ["prep", "pairs", "--before", str(before), "--after", str(after), "--labels", str(change),
         "--kind", "change", "--ignore-value", "9", "--out", str(out), "--tile", "8"]
    )  # fmt: skip
    assert code == 0
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.kind == "change" and meta.classes == ["unchanged", "changed"]
    dataset = ChangeDataset(out, "train")
    sample = dataset[0]
    row, col = _position(sample["id"])
    window = raw[row : row + 8, col : col + 8].astype(np.int64)
    np.testing.assert_array_equal(sample["change"].numpy(), np.where(window == 9, 255, window))


def test_geojson_labels_are_rasterised_per_tile(pair, tmp_path):
    before, after, _ = pair
    xs = [ORIGIN[0] + 55, ORIGIN[0] + 305, ORIGIN[0] + 305, ORIGIN[0] + 55, ORIGIN[0] + 55]
    ys = [ORIGIN[1] - 45, ORIGIN[1] - 45, ORIGIN[1] - 215, ORIGIN[1] - 215, ORIGIN[1] - 45]
    lons, lats = transform_points(CRS_UTM33, "EPSG:4326", xs, ys)
    geometry = {"type": "Polygon", "coordinates": [list(zip(lons, lats, strict=True))]}
    path = tmp_path / "buildings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry, "properties": {}}]}))  # fmt: skip
    out = tmp_path / "out"
    summary = prepare_pairs(before, after, out, labels=path, tile=16, val_fraction=0.0)
    assert summary.classes == ["background", "foreground"]
    whole = vector_mask(path, read_info(before))
    assert 0 < whole.sum() < whole.size
    for tile_id in DatasetFolder(out).ids("all").tolist():
        row, col = _position(tile_id)
        with rasterio.open(out / "label" / f"{tile_id}.tif") as tile:
            np.testing.assert_array_equal(tile.read(1), whole[row : row + 16, col : col + 16])


def test_index_and_kmeans_masks_for_both_dates(make_tif, tmp_path):
    rng = np.random.default_rng(2)
    names = ["blue", "green", "red", "nir"]
    vegetation = np.array([400, 800, 400, 4000])[:, None, None]
    water = np.array([800, 700, 500, 200])[:, None, None]
    layout = rng.random((1, 32, 32)) > 0.5
    image_a = np.where(layout, vegetation, water).astype(np.uint16)
    image_b = np.where(~layout, vegetation, water).astype(np.uint16)
    before = make_tif("A.tif", image_a, band_names=names)
    after = make_tif("B.tif", image_b, band_names=names)
    out = tmp_path / "idx"
    summary = prepare_pairs(before, after, out, masks="indices", tile=16)
    assert summary.classes == ["other", "vegetation", "water", "built_up"]
    dataset = PretrainPairDataset(out, "all")
    for i in range(len(dataset)):
        sample = dataset[i]
        row, col = _position(sample["id"])
        truth = layout[0, row : row + 16, col : col + 16]
        np.testing.assert_array_equal(sample["mask_a"].numpy(), np.where(truth, 1, 2))
        np.testing.assert_array_equal(sample["mask_b"].numpy(), np.where(truth, 2, 1))
    out = tmp_path / "km"
    summary = prepare_pairs(before, after, out, masks="kmeans:2", tile=16, seed=3)
    assert summary.classes == ["cluster_0", "cluster_1"]
    dataset = PretrainPairDataset(out, "all")
    ids = set()
    for i in range(len(dataset)):
        sample = dataset[i]
        row, col = _position(sample["id"])
        truth = layout[0, row : row + 16, col : col + 16]
        mask_a, mask_b = sample["mask_a"].numpy(), sample["mask_b"].numpy()
        vegetation_id = int(mask_a[truth][0])
        ids.add(vegetation_id)
        np.testing.assert_array_equal(mask_a == vegetation_id, truth)
        np.testing.assert_array_equal(mask_b == vegetation_id, ~truth)  # same id on date 2
    assert len(ids) == 1


def test_band_names_flag_and_missing_nir(pair, tmp_path):
    before, after, _ = pair
    with pytest.raises(DataError, match="band_1"):
        prepare_pairs(before, after, tmp_path / "x", masks="indices", tile=16)
    assert not (tmp_path / "x").exists()
    summary = prepare_pairs(
        before,
        after,
        tmp_path / "y",
        masks="indices",
        tile=16,
        band_names=["B02", "B03", "B04", "B08"],
    )
    assert DatasetMeta.load(tmp_path / "y" / "dataset.json").bands == ["B02", "B03", "B04", "B08"]
    assert summary.tiles["train"] > 0


def test_nodata_tiles_are_skipped(make_tif, tmp_path):
    data = np.random.default_rng(0).integers(1, 100, (3, 32, 32), dtype=np.uint16)
    data[:, :16, :16] = 0
    before = make_tif("A.tif", data, nodata=0)
    after = make_tif("B.tif", data, nodata=0)
    summary = prepare_pairs(before, after, tmp_path / "out", masks="kmeans:2", tile=16)
    assert summary.skipped == 1
    assert "A_0000_0000" not in DatasetFolder(tmp_path / "out").ids("all").tolist()


def _cli(before, after, out, *extra):
    return main(["prep", "pairs", "--before", str(before), "--after", str(after),
                 "--out", str(out), "--masks", "kmeans:3", "--tile", "16", *extra])  # fmt: skip


def test_crs_mismatch_needs_align(pair, make_tif, tmp_path, capsys):
    before, _, _ = pair
    # the same area in UTM zone 32: a different CRS, so pixels do not pair without --align
    x, y = transform_points(CRS_UTM33, "EPSG:32632", [ORIGIN[0]], [ORIGIN[1]])
    data = np.random.default_rng(1).integers(1, 5000, (4, H + 10, W + 10), dtype=np.uint16)
    after = make_tif("B32.tif", data, crs="EPSG:32632", origin=(x[0] - 60, y[0] + 60))
    out = tmp_path / "out"
    assert _cli(before, after, out) == 2
    assert "--align" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert _cli(before, after, out, "--align") == 0
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.provenance["aligned"] is True
    tile_id = DatasetFolder(out).ids("all")[0]
    row, col = _position(tile_id)
    expected = align_to(after, read_info(before), window=Window(col, row, 16, 16), nodata=0).data
    with rasterio.open(out / "B" / f"{tile_id}.tif") as tile:
        np.testing.assert_array_equal(tile.read(), expected)
        assert tile.crs == "EPSG:32633"


def test_band_count_mismatch_is_an_error(pair, make_tif, tmp_path, capsys):
    before, _, _ = pair
    after = make_tif("B3.tif", np.ones((3, H, W), dtype=np.uint16))
    assert _cli(before, after, tmp_path / "out") == 2
    assert "4 bands like A.tif" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failure_midway_leaves_no_output(pair, tmp_path, monkeypatch):
    before, after, labels = pair
    calls = []
    original = writer_module.DatasetWriter.add

    def failing_add(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(writer_module.DatasetWriter, "add", failing_add)
    with pytest.raises(OSError, match="disk full"):
        prepare_pairs(before, after, tmp_path / "out", labels=labels, tile=8)
    assert len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.tif", "B.tif", "L.tif"]


def _assert_no_pixel_in_two_splits(splits):
    cover = {}
    for name, members in splits.items():
        for t in members:
            for r in range(t.row, t.row + t.size):
                for c in range(t.col, t.col + t.size):
                    assert cover.setdefault((r, c), name) == name


def test_blocked_split_is_deterministic_disjoint_and_has_val():
    tiles = [Tile(r, c, 32) for r in range(0, 320, 16) for c in range(0, 320, 16)]
    result = blocked_split(tiles, step=16, val_fraction=0.2, test_fraction=0.1, seed=5)
    again = blocked_split(tiles, step=16, val_fraction=0.2, test_fraction=0.1, seed=5)
    assert result == again and all(result.splits.values())
    assert len(result.dropped) + sum(map(len, result.splits.values())) == len(tiles)
    assert result.dropped == [t for t in tiles if t in set(result.dropped)]  # input order
    _assert_no_pixel_in_two_splits(result.splits)
    record = result.record()
    assert record["dropped_overlap"] == len(result.dropped) and record["seed"] == 5
    grid = [Tile(r, c, 16) for r in range(0, 400, 16) for c in range(0, 400, 16)]
    result = blocked_split(grid, step=16, val_fraction=0.1, seed=1)
    assert not result.dropped and result.block == 4
    assert 0.1 <= len(result.splits["val"]) / len(grid) < 0.2  # whole 4x4 blocks
    crowded = [Tile(r, c, 256) for r in (0, 144) for c in (0, 144)]  # 400 px: all overlap
    result = blocked_split(crowded, step=256)
    assert result.splits["train"] == crowded and not result.dropped
    two = [Tile(0, 0, 16), Tile(0, 16, 16)]
    result = blocked_split(two, step=16, val_fraction=0.1)
    assert len(result.splits["train"]) == 1 and len(result.splits["val"]) == 1
    assert result.block == 1 and result.requested_block == 4  # halved for a small raster


def test_blocked_split_of_a_whole_image_grid_is_blocked_and_about_80_10_10():
    """WHU-CD's whole image: 59x126 non-overlapping 256-px tiles, blocks of 8x8 tiles."""
    rows, cols = 59, 126
    grid = [Tile(r * 256, c * 256, 256) for r in range(rows) for c in range(cols)]
    result = blocked_split(grid, 256, val_fraction=0.1, test_fraction=0.1, block=8, seed=0)
    assert result == blocked_split(grid, 256, 0.1, 0.1, block=8, seed=0)
    assert not result.dropped and result.block == 8  # non-overlapping: the purge is a no-op
    index = {name: i for i, name in enumerate(("train", "val", "test"))}
    assignment = np.full((rows, cols), -1)
    for name, members in result.splits.items():
        for t in members:
            assignment[t.row // 256, t.col // 256] = index[name]
    assert (assignment >= 0).all()
    blocks = assignment[::8, ::8]
    assert np.array_equal(assignment, np.kron(blocks, np.ones((8, 8), dtype=int))[:rows, :cols])
    shares = np.bincount(assignment.ravel(), minlength=3) / assignment.size
    assert 0.1 <= shares[1] < 0.1 + 64 / assignment.size  # at most one block over
    assert 0.1 <= shares[2] < 0.1 + 64 / assignment.size
    other = blocked_split(grid, 256, 0.1, 0.1, block=8, seed=1)
    assert other.splits != result.splits


def test_blocked_split_options_are_checked():
    tiles = [Tile(0, 0, 16)]
    for fractions in ((0.6, 0.5), (-0.1, 0.0), (1.0, 0.0)):
        with pytest.raises(ConfigError, match="--val-fraction and --test-fraction"):
            blocked_split(tiles, 16, *fractions)
    with pytest.raises(ConfigError, match="--split-block"):
        blocked_split(tiles, 16, block=0)


def test_stride_overlap_tiles_are_removed_with_their_statistics(pair, tmp_path):
    before, after, labels = pair
    out = tmp_path / "out"
    summary = prepare_pairs(
        before, after, out, labels=labels, tile=16, stride=8, val_fraction=0.3, seed=2
    )
    assert summary.dropped > 0 and summary.tiles["val"] > 0
    folder = DatasetFolder(out)
    kept = folder.ids("all").tolist()
    for part in ("A", "B", "label"):
        assert sorted(p.stem for p in (out / part).iterdir()) == sorted(kept)
    assert len(kept) + summary.dropped == len(_offsets(H, 16, 8)) * len(_offsets(W, 16, 8))
    splits = {s: [Tile(*_position(i), 16) for i in folder.ids(s).tolist()] for s in summary.tiles}
    _assert_no_pixel_in_two_splits(splits)
    pixels = np.concatenate(
        [read_raster(out / p / f"{i}.tif").data.reshape(4, -1) for i in kept for p in "AB"], axis=1
    )
    meta = DatasetMeta.load(out / "dataset.json")
    np.testing.assert_allclose(meta.mean, pixels.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(meta.std, pixels.std(axis=1), rtol=1e-9)
    assert meta.provenance["split"]["dropped_overlap"] == summary.dropped
    assert f"dropped {summary.dropped} tiles" in str(summary)


@pytest.mark.realdata
def test_landsat_taizhou_change_labels_keep_ignore(tmp_path):
    root = realdata("cd", "landsat_tm_taizhou_nanjing")
    out = tmp_path / "taizhou"
    prepare_pairs(
        root / "A" / "taizhou.tif",
        root / "B" / "taizhou.tif",
        out,
        labels=root / "label" / "taizhou.tif",
        kind="change",
        tile=80,
    )
    with rasterio.open(root / "label" / "taizhou.tif") as src:
        source = src.read(1)
    painted = np.full(source.shape, -1, dtype=np.int64)
    for split in ("train", "val"):
        dataset = ChangeDataset(out, split)
        for i in range(len(dataset)):
            sample = dataset[i]
            row, col = _position(sample["id"])
            painted[row : row + 80, col : col + 80] = sample["change"].numpy()
    assert (painted >= 0).all()  # 400x400 in 25 tiles of 80, none dropped
    assert (painted == IGNORE_INDEX).any()
    for value in (0, 1):
        assert (painted == value).sum() == (source == value).sum() > 0
    assert ((painted == IGNORE_INDEX) == (source == 255)).all()


@pytest.mark.realdata
def test_sentinel2_scenes_prep_with_index_masks(tmp_path):
    scenes = np.load(realdata("ms", "eolearn_s2_l1c_reference_scenes", "REFERENCE_SCENES.npy"))
    names = [f"B{i:02d}" for i in range(1, 9)] + ["B8A", "B09", "B10", "B11", "B12"]
    transform = rasterio.transform.from_origin(465181.05, 5080254.63, 10.0, 10.0)
    paths = []
    for i in (1, 3):
        path = tmp_path / f"s2_{i}.tif"
        data = scenes[i].transpose(2, 0, 1)
        write_raster(path, data, "EPSG:32633", transform, band_names=names)
        paths.append(path)
    summary = prepare_pairs(*paths, tmp_path / "out", masks="indices", tile=32)
    assert summary.tiles["train"] > 0 and summary.tiles["val"] > 0
    dataset = PretrainPairDataset(tmp_path / "out", "all")
    masks = np.stack([dataset[i]["mask_a"].numpy() for i in range(len(dataset))])
    assert set(np.unique(masks).tolist()) <= {0, 1, 2, 3}
    assert (masks == 1).mean() > 0.5  # forest
    assert dataset.meta.provenance["thresholds"] == {"ndvi": 0.3, "ndwi": 0.0, "ndbi": 0.0}
