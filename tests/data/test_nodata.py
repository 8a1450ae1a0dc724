"""One nodata policy: non-finite pixels are nodata in the datasets and in `sdrl prep pairs`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.folder import write_split
from sdrl.data.io import read_raster, valid_mask, write_raster
from sdrl.data.masks.kmeans import valid_pixels
from sdrl.data.prep.pairs import prepare_pairs
from sdrl.data.samples import IGNORE_INDEX


def test_valid_mask_policy():
    data = np.ones((2, 3, 4), np.float32)
    data[0, 0, 0] = np.nan  # one band NaN: no data
    data[1, 0, 1] = np.inf
    data[1, 0, 2] = -np.inf
    data[:, 1, 1] = -9999  # every band the nodata value: no data
    data[0, 2, 2] = -9999  # one band only: data
    expected = np.ones((3, 4), bool)
    expected[0, :3] = False
    expected[1, 1] = False
    np.testing.assert_array_equal(valid_mask(data, -9999), expected)
    np.testing.assert_array_equal(valid_mask(data, np.nan), valid_mask(data, None))
    assert valid_mask(data, None).sum() == 12 - 3
    np.testing.assert_array_equal(valid_pixels(data, -9999), expected)  # k-means: same policy
    assert valid_mask(np.zeros((3, 2, 2), np.uint16), None).all()


def _float_folder(root, nodata=None):
    """A change folder of float32 GeoTIFFs with NaN and inf pixels and no nodata value."""
    rng = np.random.default_rng(0)
    for part in ("A", "B", "label"):
        (root / part).mkdir(parents=True)
    for i in range(3):
        a = rng.random((3, 16, 16)).astype(np.float32)
        b = rng.random((3, 16, 16)).astype(np.float32)
        a[:, :2, :] = np.nan  # two rows without data in A
        b[1, 5, 5] = np.inf  # one pixel of one band of B
        write_raster(root / "A" / f"t{i}.tif", a, crs="EPSG:32633", nodata=nodata)
        write_raster(root / "B" / f"t{i}.tif", b, crs="EPSG:32633", nodata=nodata)
        write_raster(root / "label" / f"t{i}.tif", np.ones((16, 16), np.uint8), crs="EPSG:32633")
    write_split(root, "train", ["t0", "t1", "t2"])
    return root


@pytest.mark.parametrize("nodata", [None, -9999.0])
def test_datasets_never_pass_non_finite_pixels(tmp_path, nodata):
    root = _float_folder(tmp_path / "d", nodata)
    dataset = ChangeDataset(root, "train", with_valid=True)
    assert np.isfinite(dataset.meta.mean).all() and np.isfinite(dataset.meta.std).all()
    for sample in (dataset[i] for i in range(len(dataset))):
        for key in ("image_a", "image_b"):
            assert torch_finite(sample[key])
            assert (sample[key][:, :2] == 0).all() and (sample[key][:, 5, 5] == 0).all()
        valid = np.ones((16, 16), bool)
        valid[:2], valid[5, 5] = False, False
        change = sample["change"].numpy()
        assert (change[~valid] == IGNORE_INDEX).all() and (change[valid] == 1).all()
        np.testing.assert_array_equal(sample["valid"].numpy(), valid)
    assert "valid" not in ChangeDataset(root, "train")[0]


def torch_finite(tensor) -> bool:
    return bool(np.isfinite(tensor.numpy()).all())


def test_prep_pairs_writes_nodata_for_non_finite_pixels_and_counts_them(make_tif, tmp_path):
    rng = np.random.default_rng(3)
    a = rng.random((4, 32, 32)).astype(np.float32)
    b = rng.random((4, 32, 32)).astype(np.float32)
    a[:, 0, :5] = np.nan
    b[2, 20, 20] = np.inf
    before, after = make_tif("A.tif", a), make_tif("B.tif", b)
    out = tmp_path / "out"
    prepare_pairs(before, after, out, masks="kmeans:2", tile=16, val_fraction=0.0)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["provenance"]["nodata"]["value"] == "nan"
    assert meta["provenance"]["nodata"]["pixels"] == {"A": 5, "B": 1}
    assert np.isfinite(meta["mean"]).all()
    for path in sorted((out / "A").glob("*.tif")) + sorted((out / "B").glob("*.tif")):
        with rasterio.open(path) as tile:
            assert np.isnan(tile.nodata)
            assert not np.isinf(tile.read()).any()
    inf_tile = read_raster(out / "B" / "A_0016_0016.tif").data
    assert np.isnan(inf_tile[:, 4, 4]).all()  # the whole pixel is nodata, not one band
    dataset = PretrainPairDataset(out, "train")
    sample = dataset[0]
    assert torch_finite(sample["image_a"]) and (sample["mask_a"][0, :5] == IGNORE_INDEX).all()
