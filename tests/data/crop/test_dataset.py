"""Crop dataset folders: split lists, file lookup, statistics, label checks, folder info."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from sdrl.data.crop.dataset import CropDataset
from sdrl.data.crop.folder import CropFolder, crop_folder_info
from sdrl.data.crop.stats import CropStats, load_stats
from sdrl.data.crop.taxonomy import builtin_taxonomy
from sdrl.data.samples import collate
from sdrl.errors import DataError
from tests.conftest import realdata

from .conftest import patch_arrays, write_h5


def make_folder(root: Path, lists: str = "", data: str = "h5_data", num: int = 5) -> Path:
    """``num`` patches p0..p{num-1}; train = all but the last, val = the last."""
    for i in range(num):
        write_h5(root / data / f"p{i}.h5", patch_arrays(seed=i), "loader" if i % 2 else "readme")
    (root / lists).mkdir(parents=True, exist_ok=True)
    (root / lists / "train.txt").write_text("".join(f"p{i}\n" for i in range(num - 1)))
    (root / lists / "val.txt").write_text(f"# comment\n\np{num - 1}.h5\n")
    return root


@pytest.mark.parametrize(("lists", "data"), [("", "h5_data"), ("list", ""), ("data_lists", "h5s")])
def test_layouts_and_samples(tmp_path: Path, lists: str, data: str) -> None:
    root = make_folder(tmp_path / "crop", lists, data)
    stats = CropStats(np.full(10, 5000.0), np.full(10, 2000.0), np.full(5, 4000.0), np.ones(5))
    dataset = CropDataset(root, "val", months=6, priors=True, stats=stats)
    assert len(dataset) == 1
    sample = dataset[0]
    assert sample["id"] == "p4"
    assert sample["s2"].shape == (6, 10, 12, 12) and sample["s2"].dtype == torch.float32
    raw = patch_arrays(seed=4)
    np.testing.assert_allclose(sample["s2"].numpy(), (raw["s2"][:6] - 5000.0) / 2000.0, rtol=1e-6)
    np.testing.assert_allclose(sample["enmap"].numpy(), raw["enmap"] - 4000.0)
    assert sample["label"].dtype == torch.int64 and sample["prior"].shape == (4, 12, 12)
    batch = collate([dataset[0], dataset[0]])
    assert batch["s2"].shape == (2, 6, 10, 12, 12) and batch["id"] == ["p4", "p4"]
    lean = CropDataset(root, "train", enmap=False, stats=stats)
    assert set(lean[0]) == {"s2", "label", "id"}


def test_missing_split_and_file(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "crop")
    with pytest.raises(DataError, match=r"test\.txt.*Available splits: \['train', 'val'\]"):
        CropDataset(root, "test", stats=tmp_path / "unused.json")
    (root / "h5_data" / "p2.h5").unlink()
    with pytest.raises(DataError) as caught:
        CropFolder(root).files("train")
    message = str(caught.value)
    assert str(root / "train.txt") in message and "p2.h5" in message and "h5_data/" in message
    with pytest.raises(DataError, match="no such folder"):
        CropFolder(tmp_path / "nowhere")


def test_statistics_computed_cached_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_folder(tmp_path / "crop")
    with caplog.at_level(logging.INFO):
        dataset = CropDataset(root, "val")
    assert (
        "computed crop band statistics" in caplog.text and "4 of 4 files of 'train'" in caplog.text
    )
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["kind"] == "crop" and len(meta["s2_mean"]) == 10 and len(meta["enmap_std"]) == 5
    s2 = np.stack([patch_arrays(seed=i)["s2"] for i in range(4)]).astype(np.float64)
    np.testing.assert_allclose(dataset.stats.s2_mean, s2.mean(axis=(0, 1, 3, 4)), rtol=1e-5)
    np.testing.assert_allclose(dataset.stats.s2_std, s2.std(axis=(0, 1, 3, 4)), rtol=1e-4)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = CropDataset(root, "train")
    assert "computed" not in caplog.text
    np.testing.assert_array_equal(again.stats.enmap_mean, dataset.stats.enmap_mean)
    assert load_stats(root / "dataset.json").s2_mean.shape == (10,)
    info = crop_folder_info(root)
    assert (info.months, info.height, info.width, info.levels) == (12, 12, 12, 4)
    assert info.s2_bands[0] == "B02" and info.s2_wavelengths[-1] == 2190.0
    assert info.enmap_bands == ("band_1", "band_2", "band_3", "band_4", "band_5")
    assert info.taxonomy is None and info.priors and info.splits == ("train", "val")


def test_stats_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"s2_mean": [1.0] * 10}))
    with pytest.raises(DataError, match="s2 mean and std"):
        load_stats(path)
    path.write_text(json.dumps({"s2_mean": [1.0] * 10, "s2_std": [0.0] * 10}))
    with pytest.raises(DataError, match="positive"):
        load_stats(path)
    path.write_text(json.dumps({"mean": [1.0]}))
    with pytest.raises(DataError, match=r"s2_mean.*keys \['mean'\]"):
        load_stats(path)
    root = make_folder(tmp_path / "crop")
    path.write_text(json.dumps({"s2_mean": [1.0] * 10, "s2_std": [1.0] * 10}))
    with pytest.raises(DataError, match="EnMAP statistics"):
        CropDataset(root, "val", stats=path)
    assert CropDataset(root, "val", stats=path, enmap=False)[0]["s2"].shape[0] == 12


@pytest.mark.realdata
def test_real_norm_stats_load() -> None:
    stats = load_stats(realdata("crop", "h2crop_taxonomy", "norm_stats.json"))
    assert stats.s2_mean.shape == (10,) and stats.enmap_std is not None
    assert stats.enmap_std.shape == (218,)


def test_label_ids_outside_the_taxonomy(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "crop")
    arrays = patch_arrays(seed=4)
    arrays["label"][2, 0, :3] = [9, 12, 200]  # level 3 has 8 classes in the built-in taxonomy
    write_h5(root / "h5_data" / "p4.h5", arrays)
    stats = CropStats(np.zeros(10), np.ones(10), np.zeros(5), np.ones(5))
    dataset = CropDataset(root, "val", stats=stats, taxonomy=builtin_taxonomy())
    with pytest.raises(DataError) as caught:
        dataset[0]
    message = str(caught.value)
    assert "p4.h5" in message and "level 3" in message and "ids 9, 12, 200" in message
    arrays = patch_arrays(seed=4, levels=3)
    write_h5(root / "h5_data" / "p4.h5", arrays)
    with pytest.raises(DataError, match="4 label maps"):
        dataset[0]


def test_unlabelled_patches_for_prediction(tmp_path: Path) -> None:
    root = tmp_path / "crop"
    for i in range(2):
        write_h5(root / f"p{i}.h5", {**patch_arrays(seed=i), "label": None})
    (root / "test.txt").write_text("p0\np1\n")
    dataset = CropDataset(root, "test", labels=False, priors=True, taxonomy=builtin_taxonomy())
    sample = dataset[1]
    assert "label" not in sample and sample["prior"].shape == (4, 12, 12)
    assert crop_folder_info(root).levels == 4
    with pytest.raises(DataError, match="a dataset label"):
        CropDataset(root, "test")[0]
