"""``sdrl prep pairs`` on collections: CSV and folder inputs, one split, workers, bad scenes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from sdrl.cli import main
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.folder import DatasetMeta
from sdrl.data.io import read_raster, write_raster
from sdrl.data.prep.collection import prepare_collection
from sdrl.data.prep.pairs import prepare_pairs
from sdrl.data.prep.parallel import SceneError, Workers
from sdrl.data.prep.sources import match_dirs, read_pairs_csv
from sdrl.data.prep.splits import blocked_split, blocked_split_scenes
from sdrl.data.tiling import Tile
from sdrl.errors import ConfigError, DataError

NAMES = ["blue", "green", "red", "nir"]
SIZES = {"a": (48, 64), "b": (32, 48), "c": (48, 32)}  # 12 + 6 + 6 tiles of 16 px
TILES = {name: [(r, c) for r in range(0, h, 16) for c in range(0, w, 16)] for name, (h, w) in
         SIZES.items()}  # fmt: skip


@pytest.fixture
def root(make_tif, tmp_path: Path) -> Path:
    """Three scenes under tmp_path: 2019/<s>.tif, 2021/<s>.tif (4 bands), labels/<s>.tif."""
    rng = np.random.default_rng(0)
    for i, (name, (h, w)) in enumerate(SIZES.items()):
        origin = (500000.0 + 10000 * i, 5000000.0)  # apart: scenes need not overlap
        for year in ("2019", "2021"):
            data = rng.integers(1, 5000, (4, h, w), dtype=np.uint16)
            make_tif(f"{year}/{name}.tif", data, band_names=NAMES, origin=origin)
        make_tif(f"labels/{name}.tif", rng.integers(0, 3, (h, w), dtype=np.uint8), origin=origin)
    return tmp_path


def _csv(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _lists(out: Path) -> dict[str, list[str]]:
    return {p.stem: p.read_text().split() for p in sorted((out / "list").glob("*.txt"))}


def _read(path: Path) -> np.ndarray:
    return read_raster(path).data


def _expected_ids(names=SIZES) -> set[str]:
    return {f"{n}_{r:04d}_{c:04d}" for n in names for r, c in TILES[n]}


def test_csv_collection_writes_one_folder(root: Path, capsys: pytest.CaptureFixture) -> None:
    pairs = _csv(root / "pairs.csv", "before,after,labels",
                 *(f"2019/{n}.tif,2021/{n}.tif,labels/{n}.tif" for n in SIZES))  # fmt: skip
    out = root / "out"
    assert main(["prep", "pairs", "--pairs", str(pairs), "--out", str(out), "--tile", "16"]) == 0
    assert "wrote 24 tiles of 3 scenes" in capsys.readouterr().out
    lists = _lists(out)
    ids = [i for members in lists.values() for i in members]
    assert len(ids) == len(set(ids)) and set(ids) == _expected_ids()  # no tile overlaps
    assert lists["val"]  # one split over the three scenes
    for name in SIZES:  # pixels and labels round-trip, per scene
        row, col = TILES[name][-1]
        tile_id = f"{name}_{row:04d}_{col:04d}"
        window = np.s_[..., row : row + 16, col : col + 16]
        for part, source in (("A", "2019"), ("B", "2021"), ("label", "labels")):
            expected = _read(root / source / f"{name}.tif")[window]
            np.testing.assert_array_equal(_read(out / part / f"{tile_id}.tif"), expected)
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.kind == "pretrain" and meta.bands == NAMES and meta.crs == "EPSG:32633"
    assert meta.classes == ["class_0", "class_1", "class_2"]
    scenes = meta.provenance["scenes"]
    assert list(scenes) == list(SIZES) and meta.provenance["split"]["scenes"] == 3
    assert scenes["b"]["before"] == str((root / "2019" / "b.tif").resolve())
    assert scenes["b"]["labels"] == str((root / "labels" / "b.tif").resolve())
    assert sum(s["tiles"] for s in scenes.values()) == 24
    pixels = np.concatenate(  # the statistics cover every tile of every scene, both dates
        [_read(out / p / f"{i}.tif").reshape(4, -1) for i in ids for p in ("A", "B")], axis=1
    ).astype(np.float64)
    np.testing.assert_allclose(meta.mean, pixels.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(meta.std, pixels.std(axis=1), rtol=1e-10)
    assert len(PretrainPairDataset(out, "train")) == len(lists["train"])


def test_csv_relative_paths_header_names_and_comments(root: Path) -> None:
    headerless = _csv(
        root / "lists" / "pairs.csv",
        "# scenes of 2019 -> 2021",
        "../2019/a.tif,../2021/a.tif",
        "",
        f"{root / '2019' / 'b.tif'},{root / '2021' / 'b.tif'}",  # absolute paths stay
    )
    scenes = read_pairs_csv(headerless)
    assert [s.name for s in scenes] == ["a", "b"]
    assert scenes[0].before == (root / "2019" / "a.tif").resolve() and scenes[0].labels is None
    assert scenes[1].origin == "pairs.csv line 4"
    named = _csv(root / "named.csv", "name,after,before", "north,2021/a.tif,2019/a.tif")
    out = root / "out"
    result = prepare_collection(read_pairs_csv(named), out, masks="indices", tile=16)
    assert result.tiles["train"] + result.tiles.get("val", 0) == 12
    assert all(i.startswith("north_") for ids in _lists(out).values() for i in ids)
    assert DatasetMeta.load(out / "dataset.json").provenance["before"].endswith("a.tif")


def test_change_labels_collection(root: Path, make_tif) -> None:
    rng = np.random.default_rng(5)
    for name, (h, w) in SIZES.items():
        make_tif(f"change/{name}.tif", rng.integers(0, 2, (h, w), dtype=np.uint8))
    pairs = _csv(root / "pairs.csv", *(f"2019/{n}.tif,2021/{n}.tif,change/{n}.tif" for n in SIZES))
    out = root / "cd"
    result = prepare_collection(read_pairs_csv(pairs), out, kind="change", tile=16)
    assert result.kind == "change" and result.classes == ["unchanged", "changed"]
    sample = ChangeDataset(out, "val")[0]
    scene, row, col = sample["id"].rsplit("_", 2)
    window = _read(root / "change" / f"{scene}.tif")[0, int(row) : int(row) + 16]
    np.testing.assert_array_equal(sample["change"].numpy(), window[:, int(col) : int(col) + 16])


def test_csv_mistakes_are_named(root: Path) -> None:
    bad = _csv(root / "bad.csv", "before,after,label", "2019/a.tif,2021/a.tif,labels/a.tif")
    with pytest.raises(DataError, match=r"columns among .* line 1, found \['label'\]"):
        read_pairs_csv(bad)
    missing = _csv(root / "missing.csv", "2019/a.tif,2021/a.tif", "2019/b.tif,2021/x.tif")
    with pytest.raises(DataError, match=r"x\.tif: expected the after file listed on missing"):
        read_pairs_csv(missing)
    with pytest.raises(DataError, match="line 2"):
        read_pairs_csv(missing)
    twice = _csv(root / "twice.csv", "2019/a.tif,2021/a.tif", "2019/a.tif,2021/b.tif")
    with pytest.raises(ConfigError, match="'a' given twice .*line 1 and twice.csv line 2"):
        prepare_collection(read_pairs_csv(twice), root / "out", masks="indices", tile=16)
    spaced = _csv(root / "spaced.csv", "name,before,after", "my scene,2019/a.tif,2021/a.tif")
    with pytest.raises(ConfigError, match="whitespace"):
        prepare_collection(read_pairs_csv(spaced), root / "out", masks="indices", tile=16)
    mixed = _csv(root / "mixed.csv", "2019/a.tif,2021/a.tif,labels/a.tif", "2019/b.tif,2021/b.tif")
    with pytest.raises(ConfigError, match=r"scene 'b' \(mixed.csv line 2\): no labels"):
        prepare_collection(read_pairs_csv(mixed), root / "out", tile=16)
    assert not (root / "out").exists()


def test_folders_match_by_stem(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = root / "out"
    argv = ["prep", "pairs", "--before-dir", str(root / "2019"), "--after-dir",
            str(root / "2021"), "--labels-dir", str(root / "labels"), "--tile", "16"]  # fmt: skip
    (root / "2021" / "z.tif").write_bytes((root / "2021" / "a.tif").read_bytes())
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--out", str(out)]) == 0
    assert "--after-dir: 1 files without a --before-dir match, left out: z" in caplog.text
    for i, name in enumerate(SIZES, start=1):  # no terminal here: one log line per scene
        assert f"scene {i}/3 {name}: {len(TILES[name])} tiles, 0 without data" in caplog.text
    assert {i for ids in _lists(out).values() for i in ids} == _expected_ids()
    scenes = match_dirs(root / "2019", root / "2021")
    assert [s.name for s in scenes] == ["a", "b", "c"] and scenes[2].origin == "--before-dir c.tif"
    (root / "2021" / "b.tif").unlink()
    with pytest.raises(DataError, match=r"2021/b\.tif: expected --after-dir: a file named b\.\*"):
        match_dirs(root / "2019", root / "2021")


def test_cli_refuses_mixed_and_incomplete_inputs(root: Path, capsys: pytest.CaptureFixture) -> None:
    pairs = _csv(root / "pairs.csv", "2019/a.tif,2021/a.tif")
    base = ["prep", "pairs", "--out", str(root / "out"), "--masks", "indices"]
    assert main([*base, "--pairs", str(pairs), "--before", str(root / "2019" / "a.tif")]) == 2
    assert "--before: for one pair" in capsys.readouterr().err
    assert main([*base, "--before-dir", str(root / "2019")]) == 2
    assert "--before-dir and --after-dir go together" in capsys.readouterr().err
    assert main(base) == 2
    assert "give --before A.tif --after B.tif, or a collection" in capsys.readouterr().err
    assert not (root / "out").exists()


def test_kmeans_per_scene_is_the_pair_alone_and_joint_shares_ids(root: Path) -> None:
    pairs = _csv(root / "pairs.csv", *(f"2019/{n}.tif,2021/{n}.tif" for n in SIZES))
    scenes = read_pairs_csv(pairs)
    out = root / "out"
    prepare_collection(scenes, out, masks="kmeans:3", tile=16, val_fraction=0.0)
    alone = root / "alone"
    prepare_pairs(root / "2019" / "b.tif", root / "2021" / "b.tif", alone, masks="kmeans:3",
                  tile=16, val_fraction=0.0)  # fmt: skip
    for row, col in TILES["b"]:  # a scene's masks do not depend on the other scenes
        for part in ("A", "label", "label_B"):
            name = f"b_{row:04d}_{col:04d}.tif"
            np.testing.assert_array_equal(_read(out / part / name), _read(alone / part / name))
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.provenance["kmeans_fit"] == "scene"
    assert meta.provenance["scenes"]["b"]["kmeans"]["k"] == 3
    # joint: scene "d" is the top-left 32x32 of "a" on both dates, so it gets a's cluster ids
    (root / "d").mkdir()
    for year in ("2019", "2021"):
        data = _read(root / year / "a.tif")[:, :32, :32]
        write_raster(root / "d" / f"{year}.tif", data, crs="EPSG:32633", band_names=NAMES)
    pairs = _csv(root / "joint.csv", "name,before,after", "a,2019/a.tif,2021/a.tif",
                 "d,d/2019.tif,d/2021.tif")  # fmt: skip
    joint = root / "joint"
    prepare_collection(read_pairs_csv(pairs), joint, masks="kmeans:3", kmeans_fit="joint",
                       tile=16, val_fraction=0.0)  # fmt: skip
    for row, col in ((0, 0), (0, 16), (16, 0), (16, 16)):
        for part in ("label", "label_B"):
            np.testing.assert_array_equal(
                _read(joint / part / f"d_{row:04d}_{col:04d}.tif"),
                _read(joint / part / f"a_{row:04d}_{col:04d}.tif"),
            )
    record = DatasetMeta.load(joint / "dataset.json").provenance["kmeans"]
    assert record["fit"] == "joint" and record["pixels_per_scene"] == 50_000


def test_one_blocked_split_over_scenes(root: Path) -> None:
    pairs = _csv(root / "pairs.csv", *(f"2019/{n}.tif,2021/{n}.tif" for n in SIZES))
    out = root / "out"
    prepare_collection(read_pairs_csv(pairs), out, masks="indices", tile=8, split_block=2,
                       val_fraction=0.2, test_fraction=0.2, seed=3)  # fmt: skip
    lists = _lists(out)
    assert set(lists) == {"train", "val", "test"}
    ids = [i for members in lists.values() for i in members]
    assert len(ids) == len(set(ids))  # no tile id in two splits
    side = 8 * DatasetMeta.load(out / "dataset.json").provenance["split"]["block_tiles_used"]
    block_split: dict[tuple[str, int, int], str] = {}
    for split, members in lists.items():
        for tile_id in members:
            scene, row, col = tile_id.rsplit("_", 2)
            key = (scene, int(row) // side, int(col) // side)  # a block of one scene
            assert block_split.setdefault(key, split) == split
    held = {i.split("_")[0] for split in ("val", "test") for i in lists[split]}
    assert len(held) >= 2  # held-out blocks are drawn from the whole collection


def test_blocked_split_scenes_keys_blocks_by_scene() -> None:
    grid = [Tile(r, c, 16) for r in range(0, 128, 16) for c in range(0, 128, 16)]
    assert blocked_split_scenes([grid], 16, 0.2, 0.1, 2, seed=4) == [
        blocked_split(grid, 16, 0.2, 0.1, 2, seed=4)
    ]
    differ = False
    for seed in range(10):  # the same positions in two scenes are two blocks
        first, second = blocked_split_scenes([grid, grid], 16, 0.2, 0.0, 2, seed=seed)
        assert first.block == second.block == 2
        total = sum(len(s.splits["val"]) for s in (first, second))
        assert total >= round(0.2 * 2 * len(grid))
        differ |= first.splits != second.splits
    assert differ


def test_workers_do_not_change_the_output(root: Path) -> None:
    pairs = _csv(root / "pairs.csv", *(f"2019/{n}.tif,2021/{n}.tif" for n in SIZES))
    scenes = read_pairs_csv(pairs)
    with Workers(2) as pool:  # one pool for both runs: processes start once
        for fit in ("scene", "joint"):
            outs = []
            for workers in (1, pool):
                out = root / f"{fit}_{'pool' if workers is pool else 1}"
                prepare_collection(scenes, out, masks="kmeans:4", kmeans_fit=fit, tile=16,
                                   stride=12, workers=workers)  # fmt: skip
                outs.append(out)
            files = [sorted(p.relative_to(o) for p in o.rglob("*") if p.is_file()) for o in outs]
            assert files[0] == files[1] and len(files[0]) > 20
            for name in files[0]:
                assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


@pytest.mark.parametrize(
    ("workers", "row", "found"),
    [
        ("1", "2019/b.tif,2021/b3.tif,labels/b.tif", "3 bands"),  # refused before any work
        ("2", "2019/b.tif,2021/b.tif,labels/bad.tif", "bad.tif"),  # fails in its worker
    ],
)
def test_a_bad_scene_in_the_middle_is_named_and_nothing_is_written(
    root: Path, make_tif, capsys: pytest.CaptureFixture, workers: str, row: str, found: str
) -> None:
    make_tif("2021/b3.tif", np.ones((3, 32, 48), dtype=np.uint16))
    (root / "labels" / "bad.tif").write_bytes(b"not a tiff")
    pairs = _csv(
        root / "pairs.csv",
        "before,after,labels",
        "2019/a.tif,2021/a.tif,labels/a.tif",
        row,
        "2019/c.tif,2021/c.tif,labels/c.tif",
    )
    before = sorted(p.name for p in root.iterdir())
    out = root / "out"
    argv = ["prep", "pairs", "--pairs", str(pairs), "--out", str(out), "--workers", workers]
    assert main([*argv, "--tile", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sdrl: error: scene 'b' (pairs.csv line 3: before=")
    assert str(root / "2019" / "b.tif") in err and found in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in root.iterdir()) == before  # no out, no staging left


def test_scene_errors_survive_pickling_and_workers_resolve() -> None:
    import os
    import pickle

    assert Workers(0).n == len(os.sched_getaffinity(0)) and Workers(3).n == 3
    with pytest.raises(ConfigError, match="--workers"):
        Workers(-1)

    error = pickle.loads(pickle.dumps(SceneError("scene 'x' (a.csv line 2: ...)", "boom")))
    assert str(error) == "scene 'x' (a.csv line 2: ...): boom" and error.reason == "boom"


def test_progress_bar_on_a_terminal(
    root: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    logging.getLogger("sdrl").setLevel(logging.INFO)
    try:
        pairs = _csv(root / "pairs.csv", *(f"2019/{n}.tif,2021/{n}.tif" for n in SIZES))
        prepare_collection(read_pairs_csv(pairs), root / "out", masks="indices", tile=16)
    finally:
        logging.getLogger("sdrl").setLevel(logging.NOTSET)
    assert "3/3" in capsys.readouterr().err
