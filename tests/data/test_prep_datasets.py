"""``sdrl prep levir|whu|oscd`` on tiny fake raw layouts (and the real WHU-CD sample)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from sdrl.cli import main
from sdrl.data.datasets import ChangeDataset
from sdrl.data.folder import DatasetMeta
from sdrl.data.io import read_info, read_raster, write_raster
from sdrl.data.prep.oscd import S2_BANDS
from sdrl.data.prep.splits import blocked_split
from sdrl.data.prep.whu import prepare_whu
from sdrl.data.tiling import Tile
from tests.conftest import CRS_UTM33, realdata

# ------------------------------------------------------------------ generators


def _rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(1, 255, (3, h, w), dtype=np.uint8)


def _mask(rng: np.random.Generator, h: int, w: int, change: int = 255) -> np.ndarray:
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(4):
        r, c = rng.integers(0, h - 40), rng.integers(0, w - 40)
        mask[r : r + 40, c : c + 40] = change
    return mask


def make_levir(root: Path, names: dict[str, list[str]], size: int = 512, change: int = 255) -> Path:
    """RAW/<split>/{A,B,label}/<name>.png as LEVIR-CD is distributed."""
    rng = np.random.default_rng(0)
    for split, stems in names.items():
        for part in ("A", "B", "label"):
            (root / split / part).mkdir(parents=True, exist_ok=True)
        for stem in stems:
            write_raster(root / split / "A" / f"{stem}.png", _rgb(rng, size, size))
            write_raster(root / split / "B" / f"{stem}.png", _rgb(rng, size, size))
            write_raster(root / split / "label" / f"{stem}.png", _mask(rng, size, size, change))
    return root


def read(path: Path) -> np.ndarray:
    return read_raster(path).data


# ------------------------------------------------------------------ LEVIR-CD


def test_levir_tiles_names_splits_and_pixels(tmp_path: Path) -> None:
    raw = make_levir(tmp_path / "raw", {"train": ["train_1", "train_2"], "val": ["val_1"]})
    make_levir(raw, {"test": ["test_1"]}, change=1)  # 0/1 labels are accepted too
    out = tmp_path / "levir256"
    assert main(["prep", "levir", "--src", str(raw), "--out", str(out)]) == 0

    assert len(list((out / "A").glob("*.png"))) == 16  # 4 tiles per 512-px image
    train = (out / "list" / "train.txt").read_text().split()
    assert train == [
        f"train_{i}_{r:04d}_{c:04d}" for i in (1, 2) for r in (0, 256) for c in (0, 256)
    ]
    assert (out / "list" / "val.txt").read_text().split()[1] == "val_1_0000_0256"
    assert len((out / "list" / "test.txt").read_text().split()) == 4

    # tile = window of the source, row offset first in the id
    for part in ("A", "B"):
        np.testing.assert_array_equal(
            read(out / part / "train_2_0256_0000.png"),
            read(raw / "train" / part / "train_2.png")[:, 256:512, 0:256],
        )
    source = read(raw / "test" / "label" / "test_1.png")[0, 0:256, 256:512]
    tile = read(out / "label" / "test_1_0000_0256.png")[0]
    np.testing.assert_array_equal(tile, np.where(source == 1, 255, 0))
    values = np.concatenate([read(p).ravel() for p in (out / "label").glob("test_1_*")])
    assert set(np.unique(values).tolist()) == {0, 255}

    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.kind == "change" and meta.bands == ["red", "green", "blue"]
    assert meta.label_values == {0: 0, 255: 1} and meta.gsd == 0.5
    assert meta.provenance["split"].startswith("official")
    dataset = ChangeDataset(out, split="train")
    assert len(dataset) == 8
    sample = dataset[0]
    assert sample["image_a"].shape == (3, 256, 256)
    label = read(out / "label" / f"{sample['id']}.png")[0]
    np.testing.assert_array_equal(sample["change"].numpy(), label // 255)


def test_levir_flat_folder_needs_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = make_levir(tmp_path / "raw", {"test": ["a", "b"]}) / "test"
    out = tmp_path / "out"
    assert main(["prep", "levir", "--src", str(raw), "--out", str(out)]) == 2
    assert "--split" in capsys.readouterr().err
    assert not out.exists()
    assert main(["prep", "levir", "--src", str(raw), "--out", str(out), "--split", "val"]) == 0
    assert (out / "list" / "val.txt").read_text().split()[0] == "val_a_0000_0000"


def test_levir_bad_label_midway_leaves_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = make_levir(tmp_path / "raw", {"train": ["train_1", "train_2"]})
    label = raw / "train" / "label" / "train_2.png"
    bad = read(label)
    bad[0, 300, 300] = 128
    write_raster(label, bad)
    out = tmp_path / "out"
    assert main(["prep", "levir", "--src", str(raw), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "train_2.png" in err and "[128]" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no out, no staging left


def test_levir_missing_counterpart_and_bad_layout_named(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = make_levir(tmp_path / "raw", {"train": ["train_1"]})
    (raw / "train" / "B" / "train_1.png").unlink()
    assert main(["prep", "levir", "--src", str(raw), "--out", str(tmp_path / "o")]) == 2
    assert str(raw / "train" / "B" / "train_1.png") in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["prep", "levir", "--src", str(tmp_path / "empty"), "--out", "x"]) == 2
    assert "train,val,test" in capsys.readouterr().err


# ------------------------------------------------------------------ WHU-CD


def make_whu_whole(root: Path, height: int = 800, width: int = 1100) -> Path:
    """The whole-image release: before/before.tif, after/after.tif, change label/...tif."""
    rng = np.random.default_rng(1)
    before, after = _rgb(rng, height, width), _rgb(rng, height, width)
    before[:, 0:256, 0:256] = 0  # tile (0, 0): black in both dates → skipped
    after[:, 0:256, 0:256] = 0
    after[:, 256:512, 512:768] = 0  # tile (1, 2): black in one date → skipped
    before[:, 512:600, 0:300] = 0  # partly black tiles are kept
    transform = Affine(0.3, 0, 1570000.0, 0, -0.3, 5180000.0)
    for name, data in (
        ("before/before.tif", before),
        ("after/after.tif", after),
        ("change label/change_label.tif", _mask(rng, height, width)),
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_raster(root / name, data, crs="EPSG:2193", transform=transform)
    return root


def test_whu_whole_image_blocked_split(tmp_path: Path) -> None:
    raw = make_whu_whole(tmp_path / "raw")
    out = tmp_path / "whu"
    argv = ["prep", "whu", "--src", str(raw), "--out", str(out), "--split-block", "2"]
    assert main([*argv, "--val-fraction", "0.25", "--test-fraction", "0.25"]) == 0

    lists = {s: (out / "list" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    ids = [i for split in lists.values() for i in split]
    assert len(ids) == len(set(ids)) == 12 - 2  # 3x4 full tiles, edge remainders dropped
    assert {p.stem for p in (out / "A").iterdir()} == set(ids)
    assert "whu_0000_0000" not in ids and "whu_0256_0512" not in ids
    assert "whu_0512_0000" in ids
    # the split of the written tiles, by blocks of 2x2 tiles: tiles of one block share a split
    written = [Tile(int(r), int(c), 256) for r, c in (i.split("_")[1:] for i in sorted(ids))]
    expected = blocked_split(written, 256, 0.25, 0.25, block=2).ids("whu")
    assert {s: sorted(v) for s, v in expected.items()} == {s: sorted(v) for s, v in lists.items()}
    block_of = {}
    for split, names in lists.items():
        for tile_id in names:
            row, col = (int(v) // 256 for v in tile_id.split("_")[1:])
            assert block_of.setdefault((row // 2, col // 2), split) == split
    assert all(lists.values())

    np.testing.assert_array_equal(
        read(out / "B" / "whu_0512_0768.png"), read(raw / "after/after.tif")[:, 512:768, 768:1024]
    )
    label = read(out / "label" / "whu_0256_0256.png")[0]
    np.testing.assert_array_equal(
        label, read(raw / "change label/change_label.tif")[0, 256:512, 256:512]
    )
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.provenance["split"]["official"] is False
    assert "NOT an official split" in meta.provenance["split"]["method"]
    assert meta.provenance["split"]["val_fraction"] == 0.25
    assert meta.provenance["split"]["dropped_overlap"] == 0
    assert meta.provenance["skipped_empty_tiles"] == 2
    assert meta.provenance["dropped_edge_pixels"] == {"right": 76, "bottom": 32}
    assert len(ChangeDataset(out, split="val")) == len(lists["val"])


def test_whu_whole_image_flags_and_geotiff_tiles(tmp_path: Path) -> None:
    raw = make_whu_whole(tmp_path / "raw", height=512, width=768)
    shutil.move(raw / "change label", raw / "labels")
    result = prepare_whu(
        raw, tmp_path / "o", label="labels/change_label.tif", image_format="tif", seed=3
    )
    assert sum(result.tiles.values()) == 6 - 2 and result.skipped == 2
    info = read_info(tmp_path / "o" / "A" / "whu_0256_0256.tif")
    assert info.crs is not None and info.crs.to_epsg() == 2193
    assert info.transform.c == pytest.approx(1570000.0 + 256 * 0.3)
    assert info.transform.f == pytest.approx(5180000.0 - 256 * 0.3)
    assert DatasetMeta.load(tmp_path / "o" / "dataset.json").crs == "EPSG:2193"


def test_whu_whole_image_defaults_and_replaced_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = make_whu_whole(tmp_path / "raw", height=1024, width=1280)  # 4x5 tiles, 2 skipped
    result = prepare_whu(raw, tmp_path / "o")
    assert result.tiles == {"train": 14, "val": 2, "test": 2}  # blocks halved to one tile
    assert result.skipped == 2 and result.dropped == 0
    assert str(result).startswith(f"wrote 18 tiles to {tmp_path / 'o'} (train 14, val 2, test 2)")
    split = DatasetMeta.load(tmp_path / "o" / "dataset.json").provenance["split"]
    assert split["block_tiles"] == 8 and split["block_tiles_used"] == 1
    argv = ["prep", "whu", "--src", str(raw), "--out", str(tmp_path / "x")]
    assert main([*argv, "--ratios", "0.8", "0.1", "0.1"]) == 2
    assert "--val-fraction" in capsys.readouterr().err
    assert main([*argv, "--val-fraction", "0.6", "--test-fraction", "0.5"]) == 2
    assert "summing below 1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ OSCD

_RES = {"B01": 60, "B09": 60, "B10": 60, "B05": 20, "B06": 20, "B07": 20, "B8A": 20}
_H, _W = 60, 48  # the 10 m grid


def _write_band(folder: Path, name: str, band: str, crs: str | None) -> None:
    res = _RES.get(band, 10)
    h, w = _H * 10 // res, _W * 10 // res
    value = 100 * (S2_BANDS.index(band) + 1)
    data = np.full((h, w), value, dtype=np.uint16)
    if band == "B05":  # left half 1000, right half 3000
        data[:, : w // 2] = 1000
        data[:, w // 2 :] = 3000
    transform = Affine(res, 0, 600000.0, 0, -res, 4000000.0)
    folder.mkdir(parents=True, exist_ok=True)
    write_raster(folder / name, data, crs=crs, transform=transform)


def make_oscd(root: Path, crs: str | None = CRS_UTM33) -> Path:
    """OSCD: alpha (train, labelled, raw per-band files), beta (test, no labels, *_rect files)."""
    images = root / "Onera Satellite Change Detection dataset - Images"
    images.mkdir(parents=True)
    (images / "train.txt").write_text("alpha")
    (images / "test.txt").write_text("beta\n")
    for date in (1, 2):
        for band in S2_BANDS:
            name = f"S2A_OPER_MSI_L1C_TL_SGS__2016020{date}T101010_A003_T31TCJ_{band}.tif"
            _write_band(images / "alpha" / f"imgs_{date}", name, band, crs)
            rect = np.full((_H, _W), 7, dtype=np.uint16)
            (images / "beta" / f"imgs_{date}_rect").mkdir(parents=True, exist_ok=True)
            transform = Affine(10, 0, 300000.0, 0, -10, 5000000.0)
            path = images / "beta" / f"imgs_{date}_rect" / f"{band}.tif"
            write_raster(path, rect, crs=crs, transform=transform)
    label = np.ones((_H, _W), dtype=np.uint8)
    label[10:20, 10:20] = 2
    label[0, :] = 0  # outside the annotation → ignore
    cm = root / "train_labels" / "alpha" / "cm"
    cm.mkdir(parents=True)
    transform = Affine(10, 0, 600000.0, 0, -10, 4000000.0)
    write_raster(cm / "alpha-cm.tif", label, crs=crs, transform=transform)
    return root


@pytest.mark.parametrize("crs", [CRS_UTM33, None], ids=["georeferenced", "no-crs"])
def test_oscd_stacks_13_bands_on_10m_grid(tmp_path: Path, crs: str | None) -> None:
    raw = make_oscd(tmp_path / "raw", crs)
    out = tmp_path / "oscd"
    (tmp_path / "raw" / "train_labels" / "beta").mkdir()  # a label folder without a map
    assert main(["prep", "oscd", "--src", str(raw), "--out", str(out)]) == 0

    assert (out / "list" / "train.txt").read_text().split() == ["alpha"]
    assert (out / "list" / "unlabelled.txt").read_text().split() == ["beta"]
    assert not (out / "list" / "test.txt").exists()
    assert not (out / "label" / "beta.tif").exists()

    info = read_info(out / "A" / "alpha.tif")
    assert info.shape == (13, _H, _W) and info.dtype == "uint16"
    assert info.band_names == S2_BANDS
    image = read(out / "B" / "alpha.tif")
    for i, band in enumerate(S2_BANDS):
        if band != "B05":
            assert (image[i] == 100 * (i + 1)).all(), band  # 20/60 m constants stay exact
    b05 = image[S2_BANDS.index("B05")]
    assert b05[30, 5] == 1000 and b05[30, 42] == 3000  # 20 m halves land on the right side
    assert 1000 < b05[30, 24] < 3000 or 1000 < b05[30, 23] < 3000  # bilinear at the border
    assert (read(out / "A" / "beta.tif") == 7).all()

    label = read(out / "label" / "alpha.tif")[0]
    assert label[15, 15] == 1 and label[30, 30] == 0 and (label[0] == 255).all()
    meta = DatasetMeta.load(out / "dataset.json")
    assert meta.bands == list(S2_BANDS) and meta.gsd == 10.0 and meta.ignore_index == 255
    assert meta.crs == (None if crs is None else "EPSG:32633")
    sample = ChangeDataset(out, split="train")[0]
    assert sample["image_a"].shape == (13, _H, _W)
    assert sample["change"][15, 15] == 1 and sample["change"][0, 0] == 255


def test_oscd_tiles_and_flags(tmp_path: Path) -> None:
    raw = make_oscd(tmp_path / "raw")
    shutil.move(raw / "train_labels", raw / "my labels")
    out = tmp_path / "oscd"
    argv = ["prep", "oscd", "--src", str(raw), "--out", str(out), "--tile", "16"]
    assert main([*argv, "--train-labels", "my labels"]) == 0
    train = (out / "list" / "train.txt").read_text().split()
    assert len(train) == 4 * 3 and train[0] == "alpha_0000_0000" and "alpha_0044_0032" in train
    np.testing.assert_array_equal(
        read(out / "label" / "alpha_0000_0016.tif")[0, 10:16, :4], np.ones((6, 4))
    )


def test_oscd_missing_band_is_named_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = make_oscd(tmp_path / "raw")
    folder = raw / "Onera Satellite Change Detection dataset - Images" / "alpha" / "imgs_2"
    next(folder.glob("*B8A.tif")).unlink()
    out = tmp_path / "oscd"
    assert main(["prep", "oscd", "--src", str(raw), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(folder / "*B8A.tif") in err and "none among 12" in err
    assert not out.exists()


def test_oscd_failure_midway_leaves_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = make_oscd(tmp_path / "raw")
    broken = raw / "Onera Satellite Change Detection dataset - Images" / "beta" / "imgs_2_rect"
    (broken / "B03.tif").write_bytes(b"not a tiff")
    assert main(["prep", "oscd", "--src", str(raw), "--out", str(tmp_path / "oscd")]) == 2
    assert "B03.tif" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_oscd_without_images_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["prep", "oscd", "--src", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "Onera Satellite Change Detection dataset - Images" in capsys.readouterr().err


# ------------------------------------------------------------------ real samples


@pytest.mark.realdata
def test_real_whu_1024_sample_into_one_split(tmp_path: Path) -> None:
    src = realdata("cd", "whu_cd_1024")
    out = tmp_path / "whu"
    assert main(["prep", "whu", "--src", str(src), "--out", str(out), "--split", "test"]) == 0
    ids = (out / "list" / "test.txt").read_text().split()
    assert len(ids) == 48 and ids[0] == "test_000121_0000_0000"
    np.testing.assert_array_equal(
        read(out / "A" / "test_000213_0768_0512.png"),
        read(src / "A" / "000213.png")[:, 768:1024, 512:768],
    )
    dataset = ChangeDataset(out, split="test")
    assert len(dataset) == 48
    assert set(np.unique(dataset[5]["change"].numpy())) <= {0, 1}


@pytest.mark.realdata
def test_real_levir_256_tiles_as_raw_layout(tmp_path: Path) -> None:
    src = realdata("cd", "levir_cd_256")
    raw = tmp_path / "raw"
    for path in sorted((src / "A").glob("*.png")):
        split = path.stem.split("_")[0]
        for part in ("A", "B", "label"):
            (raw / split / part).mkdir(parents=True, exist_ok=True)
            shutil.copy(src / part / path.name, raw / split / part / path.name)
    out = tmp_path / "levir"
    assert main(["prep", "levir", "--src", str(raw), "--out", str(out)]) == 0
    ids = {i for split in (out / "list").glob("*.txt") for i in split.read_text().split()}
    assert len(ids) == 11 and "test_102_0512_0000_0000_0000" in ids
    np.testing.assert_array_equal(
        read(out / "label" / "test_102_0512_0000_0000_0000.png"),
        read(src / "label" / "test_102_0512_0000.png"),
    )
