"""Dataset folders: layout, splits, statistics, label encodings, samples and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.folder import DatasetFolder, DatasetMeta, write_split
from sdrl.data.io import write_raster
from sdrl.data.samples import IGNORE_INDEX, collate
from sdrl.data.stats import BandMoments
from sdrl.data.writer import DatasetWriter


def make_change_folder(
    root: Path,
    n: int = 6,
    size: int = 16,
    bands: int = 3,
    ext: str = ".png",
    label_scale: int = 255,
    lists: bool = True,
    seed: int = 0,
) -> Path:
    """A LEVIR-style folder: uint8 images, 0/255 labels (or 0/1 with label_scale=1)."""
    rng = np.random.default_rng(seed)
    for part in ("A", "B", "label"):
        (root / part).mkdir(parents=True, exist_ok=True)
    ids = [f"tile_{i}" for i in range(n)]
    for tile_id in ids:
        for part in ("A", "B"):
            image = rng.integers(0, 255, (bands, size, size), dtype=np.uint8)
            write_raster(root / part / f"{tile_id}{ext}", image)
        label = (rng.random((size, size)) > 0.7).astype(np.uint8) * label_scale
        write_raster(root / "label" / f"{tile_id}{ext}", label)
    if lists:
        write_split(root, "train", ids[: n - 2])
        write_split(root, "val", [f"{i}{ext}" for i in ids[n - 2 :]])  # BIT lists carry extensions
    return root


def test_levir_style_folder_loads_with_0_255_labels(tmp_path):
    root = make_change_folder(tmp_path / "d")
    dataset = ChangeDataset(root, "train")
    assert len(dataset) == 4
    sample = dataset[1]
    assert set(sample) == {"id", "image_a", "image_b", "change"}
    assert sample["image_a"].shape == (3, 16, 16) and sample["image_a"].dtype == torch.float32
    assert sample["change"].shape == (16, 16) and sample["change"].dtype == torch.int64
    raw = np.asarray(
        __import__("rasterio").open(root / "label" / "tile_1.png").read(1), dtype=np.int64
    )
    np.testing.assert_array_equal(sample["change"].numpy(), raw // 255)
    meta = DatasetMeta.load(root / "dataset.json")
    assert meta.label_values == {0: 0, 255: 1} and meta.kind == "change"
    assert ChangeDataset(root, "val").ids.tolist() == ["tile_4", "tile_5"]


def test_normalisation_uses_streamed_statistics(tmp_path):
    root = make_change_folder(tmp_path / "d", n=5, bands=4, ext=".tif")
    dataset = ChangeDataset(root, "all")
    pixels = []
    for tile_id in ChangeDataset(root, "train").ids:  # statistics come from the train split
        for part in ("A", "B"):
            import rasterio

            with rasterio.open(root / part / f"{tile_id}.tif") as src:
                pixels.append(src.read().reshape(4, -1).astype(np.float64))
    allpix = np.concatenate(pixels, axis=1)
    np.testing.assert_allclose(dataset.meta.mean, allpix.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(dataset.meta.std, allpix.std(axis=1), rtol=1e-10)
    stacked = torch.stack([dataset[i]["image_a"] for i in range(len(dataset))])
    assert abs(float(stacked.mean())) < 0.2
    # cached: a second load reads dataset.json instead of recomputing
    cached = json.loads((root / "dataset.json").read_text())
    assert cached["mean"] == pytest.approx(dataset.meta.mean)


def test_band_moments_chan_merge_matches_numpy():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(loc=1e4, scale=3, size=(2, 7, s)) for s in (3, 50, 1)]
    moments = BandMoments.empty(2)
    for chunk in chunks:
        moments.update(chunk)
    flat = np.concatenate([c.reshape(2, -1) for c in chunks], axis=1)
    np.testing.assert_allclose(moments.mean, flat.mean(axis=1))
    np.testing.assert_allclose(moments.std, flat.std(axis=1), rtol=1e-9)


def test_ignore_encoding_and_nodata(tmp_path):
    root = tmp_path / "d"
    for part in ("A", "B", "label"):
        (root / part).mkdir(parents=True)
    image = np.full((2, 8, 8), 100, np.int16)
    image[:, 0, :] = -1  # nodata row
    write_raster(root / "A" / "t.tif", image, nodata=-1)
    write_raster(root / "B" / "t.tif", image, nodata=-1)
    label = np.zeros((8, 8), np.uint8)
    label[4:, :] = 1
    label[:, 0] = 255
    write_raster(root / "label" / "t.tif", label)
    dataset = ChangeDataset(root, "all")
    assert dataset.meta.ignore_index == 255 and dataset.meta.label_values is None
    sample = dataset[0]
    change = sample["change"].numpy()
    assert (change[0] == IGNORE_INDEX).all()  # nodata row ignored
    assert (change[1:, 0] == IGNORE_INDEX).all()
    assert (change[4:, 1:] == 1).all() and (change[1:4, 1:] == 0).all()
    assert (sample["image_a"][:, 0] == 0).all()


def test_label_values_outside_classes(tmp_path):
    root = make_change_folder(tmp_path / "d", lists=False)
    meta = DatasetMeta(kind="change", bands=["r", "g", "b"], classes=["unchanged", "changed"])
    meta.label_values = {0: 0, 255: 1}
    meta.mean, meta.std = [0.0] * 3, [1.0] * 3
    meta.save(root / "dataset.json")
    write_raster(root / "label" / "tile_2.png", np.full((16, 16), 7, np.uint8))
    dataset = ChangeDataset(root, "all")
    with pytest.raises(
        Exception, match=r"tile_2.png: expected label values \[0, 255\].*values \[7\]"
    ):
        dataset[2]


def test_missing_b_file_named(tmp_path):
    root = make_change_folder(tmp_path / "d")
    (root / "B" / "tile_3.png").unlink()
    with pytest.raises(Exception, match=r"B/tile_3.png: expected a B/ file for every id"):
        ChangeDataset(root, "train")


def test_size_and_band_mismatch_named(tmp_path):
    root = make_change_folder(tmp_path / "d")
    write_raster(root / "B" / "tile_0.png", np.zeros((3, 8, 8), np.uint8))
    dataset = ChangeDataset(root, "train")
    with pytest.raises(Exception, match=r"B/tile_0.png: expected 16x16 pixels like A/tile_0"):
        dataset[0]
    write_raster(root / "B" / "tile_1.png", np.zeros((1, 16, 16), np.uint8))
    with pytest.raises(Exception, match=r"B/tile_1.png: expected 3 bands"):
        dataset[1]


def test_empty_or_missing_split_list(tmp_path):
    root = make_change_folder(tmp_path / "d")
    (root / "list" / "test.txt").write_text("\n")
    with pytest.raises(Exception, match=r"test.txt: expected one tile id per line, found an empty"):
        ChangeDataset(root, "test")
    with pytest.raises(Exception, match=r"Available splits: \['test', 'train', 'val', 'all'\]"):
        ChangeDataset(root, "holdout")


def test_prefix_splits_without_lists(tmp_path):
    root = tmp_path / "d"
    make_change_folder(root, n=3, lists=False)
    for part in ("A", "B", "label"):
        for i, name in enumerate(["train_1_0000_0000", "val_2_0000_0256", "test_3_0256_0000"]):
            (root / part / f"tile_{i}.png").rename(root / part / f"{name}.png")
    folder = DatasetFolder(root)
    assert folder.splits() == ["train", "val", "test", "all"]
    assert ChangeDataset(root, "val").ids.tolist() == ["val_2_0000_0256"]


def test_not_a_dataset_folder(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(Exception, match="expected a dataset folder with A/"):
        ChangeDataset(tmp_path / "x")


def test_kind_mismatch(tmp_path):
    root = make_change_folder(tmp_path / "d")
    ChangeDataset(root, "train")
    with pytest.raises(Exception, match='expected "kind": "pretrain"'):
        PretrainPairDataset(root, "train")


def test_invalid_dataset_json(tmp_path):
    root = make_change_folder(tmp_path / "d")
    (root / "dataset.json").write_text('{"kind": "change", "bands": ["r"], "colour": 1}')
    with pytest.raises(Exception, match=r"unknown keys \['colour'\]"):
        ChangeDataset(root)


def make_pretrain_folder(root: Path, with_b: bool = True, with_label_b: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for i in range(4):
        for part in ("A", "B") if with_b else ("A",):
            write_raster(_mk(root, part) / f"s{i}.tif", rng.normal(size=(4, 12, 12)).astype("f4"))
        mask = rng.integers(0, 5, (12, 12)).astype(np.uint8)
        mask[0, 0] = 255
        write_raster(_mk(root, "label") / f"s{i}.tif", mask)
        if with_label_b:
            write_raster(_mk(root, "label_B") / f"s{i}.tif", (mask + 1) % 5)
    meta = DatasetMeta(
        kind="pretrain", bands=list("abcd"), classes=[f"c{k}" for k in range(5)], ignore_index=255
    )
    meta.save(root / "dataset.json")
    return root


def _mk(root: Path, part: str) -> Path:
    (root / part).mkdir(parents=True, exist_ok=True)
    return root / part


def test_pretrain_pairs_and_single_date(tmp_path):
    dataset = PretrainPairDataset(make_pretrain_folder(tmp_path / "p"), "all")
    sample = dataset[0]
    assert set(sample) == {"id", "image_a", "image_b", "mask_a", "mask_b"}
    assert sample["mask_a"][0, 0] == IGNORE_INDEX
    valid = sample["mask_a"] != IGNORE_INDEX
    assert torch.equal((sample["mask_a"][valid] + 1) % 5, sample["mask_b"][valid])
    single = PretrainPairDataset(make_pretrain_folder(tmp_path / "s", False, False), "all")
    assert not single.bitemporal
    s = single[1]
    assert torch.equal(s["image_a"], s["image_b"]) and torch.equal(s["mask_a"], s["mask_b"])


def test_pretrain_folder_without_masks_has_a_hint(tmp_path):
    root = make_pretrain_folder(tmp_path / "p")
    for f in (root / "label").iterdir():
        f.unlink()
    (root / "label").rmdir()
    with pytest.raises(Exception, match="sdrl prep pairs --masks kmeans"):
        PretrainPairDataset(root)


def test_random_crop_reads_a_window(tmp_path):
    root = make_change_folder(tmp_path / "d", size=32, ext=".tif")
    full = ChangeDataset(root, "all")
    cropped = ChangeDataset(root, "all", crop_size=8)
    torch.manual_seed(0)
    sample = cropped[0]
    assert sample["image_a"].shape == (3, 8, 8) and sample["change"].shape == (8, 8)
    whole = full[0]["image_a"]
    # the crop is a window of the whole image, the same window in A and B
    hits = [
        (r, c)
        for r in range(25)
        for c in range(25)
        if torch.equal(whole[:, r : r + 8, c : c + 8], sample["image_a"])
    ]
    assert len(hits) == 1
    r, c = hits[0]
    assert torch.equal(full[0]["image_b"][:, r : r + 8, c : c + 8], sample["image_b"])


def test_dataloader_with_workers_collates(tmp_path):
    root = make_change_folder(tmp_path / "d", n=6)
    loader = DataLoader(ChangeDataset(root, "all"), batch_size=3, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["image_a"].shape == (3, 3, 16, 16)
    assert batches[0]["change"].shape == (3, 16, 16)
    assert batches[0]["id"] == ["tile_0", "tile_1", "tile_2"]


def test_index_of_a_million_tiles_is_compact(tmp_path):
    """The index holds no Python object per tile; files are only touched when read."""
    root = make_change_folder(tmp_path / "d", n=1, lists=False)
    ChangeDataset(root, "all")  # caches dataset.json
    n = 1_000_000
    ids = [f"tile_{i}" for i in range(n)]
    write_split(root, "train", ids)
    dataset = ChangeDataset(root, "train", check_files=False)
    assert len(dataset) == n
    assert dataset.ids.nbytes <= 16 * n
    assert dataset.ids[n - 1] == f"tile_{n - 1}"
    assert dataset[0]["image_a"].shape == (3, 16, 16)
    with pytest.raises(Exception, match="999999 missing"):
        ChangeDataset(root, "train")


def test_band_moments_skip_non_finite_values_band_by_band():
    rng = np.random.default_rng(3)
    data = rng.normal(5, 2, size=(3, 6, 7))
    data[0, 1, 2] = np.nan
    data[1, 4, :] = np.inf
    data[2, 0, 0] = -np.inf
    valid = np.ones((6, 7), dtype=bool)
    valid[5] = False
    moments = BandMoments.empty(3)
    moments.update(data[:, :3], valid[:3])
    moments.update(data[:, 3:], valid[3:])
    for band in range(3):
        pixels = data[band][valid]
        pixels = pixels[np.isfinite(pixels)]
        assert moments.count[band] == pixels.size
        np.testing.assert_allclose(moments.mean[band], pixels.mean())
        np.testing.assert_allclose(moments.std[band], pixels.std())
    empty = BandMoments.empty(1)
    empty.update(np.full((1, 2, 2), np.nan))
    assert empty.count[0] == 0 and empty.mean[0] == 0 and empty.std[0] == 0


def test_band_moments_remove_undoes_update():
    rng = np.random.default_rng(4)
    chunks = [rng.normal(loc=100, scale=4, size=(2, 5, s)) for s in (4, 9, 2)]
    chunks[1][0, 0, 0] = np.nan
    moments = BandMoments.empty(2)
    for chunk in chunks:
        moments.update(chunk)
    moments.remove(chunks[1])
    rest = np.concatenate([chunks[0].reshape(2, -1), chunks[2].reshape(2, -1)], axis=1)
    np.testing.assert_allclose(moments.count, [rest.shape[1]] * 2)
    np.testing.assert_allclose(moments.mean, rest.mean(axis=1))
    np.testing.assert_allclose(moments.std, rest.std(axis=1), rtol=1e-9)
    for chunk in (chunks[0], chunks[2]):
        moments.remove(chunk)
    assert (moments.count == 0).all() and (moments.mean == 0).all() and (moments.m2 == 0).all()
    with pytest.raises(ValueError, match="more pixels than were added"):
        moments.remove(chunks[0])


def test_writer_statistics_skip_nan_and_nodata(tmp_path):
    image = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    image[0, 0, 0] = np.nan  # float raster without declared nodata
    image[1, 3, 3] = np.inf
    writer = DatasetWriter(tmp_path, image_ext=".tif")
    writer.add("t", image, image)
    meta = writer.finish(DatasetMeta(kind="pretrain", bands=["a", "b"], classes=[]), {})
    for band in range(2):
        pixels = image[band][np.isfinite(image[band])].astype(np.float64)
        assert np.isfinite(meta.mean[band]) and np.isfinite(meta.std[band])
        np.testing.assert_allclose(meta.mean[band], pixels.mean())
        np.testing.assert_allclose(meta.std[band], pixels.std())
    with_nodata = DatasetWriter(tmp_path, image_ext=".tif", nodata=-1)
    image = np.full((1, 4, 4), 3, dtype=np.int16)
    image[0, 0] = -1
    image[0, 1, 0] = 9
    with_nodata.add("u", image)
    assert with_nodata.moments is not None and with_nodata.moments.count[0] == 12
    np.testing.assert_allclose(with_nodata.moments.mean, [(11 * 3 + 9) / 12])


def test_writer_remove_deletes_files_ids_and_statistics(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path
    writer = DatasetWriter(root, image_ext=".tif", nodata=0)
    images = {}
    for name in ("t0", "t1", "t2"):
        a = rng.integers(0, 50, (3, 8, 8), dtype=np.uint16)
        b = rng.integers(0, 50, (3, 8, 8), dtype=np.uint16)
        mask = rng.integers(0, 3, (8, 8), dtype=np.uint8)
        writer.add(name, a, b, label=mask, label_b=(mask + 1) % 3)
        images[name] = (a, b, mask)
    writer.remove("t1")
    assert writer.ids == ["t0", "t2"]
    for part in ("A", "B", "label", "label_B"):
        assert sorted(p.name for p in (root / part).iterdir()) == ["t0.tif", "t2.tif"]
    expected = BandMoments.empty(3)
    for name in ("t0", "t2"):
        for image in images[name][:2]:
            expected.update(image, ~(image == 0).all(axis=0))
    assert writer.moments is not None
    np.testing.assert_allclose(writer.moments.count, expected.count)
    np.testing.assert_allclose(writer.moments.mean, expected.mean)
    np.testing.assert_allclose(writer.moments.std, expected.std, rtol=1e-9)
    masks = np.stack([images[name][2] for name in ("t0", "t2")])
    np.testing.assert_array_equal(
        writer.class_pixels("label")[:3], np.bincount(masks.ravel(), minlength=3)
    )
    meta = writer.finish(
        DatasetMeta(kind="pretrain", bands=["r", "g", "b"], classes=["x", "y", "z"]),
        {"train": ["t0", "t2"]},
    )
    np.testing.assert_allclose(meta.mean, expected.mean)
    with pytest.raises(KeyError, match="t1"):
        writer.remove("t1")
    with pytest.raises(ValueError, match="not written"):
        writer.finish(meta, {"train": ["t1"]})
