"""Prediction and evaluation: non-finite pixels are nodata and counted; failed writes raise."""

from __future__ import annotations

import errno
import json
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sdrl.data.io import read_raster, write_raster
from sdrl.errors import ConfigError, DataError
from sdrl.evaluation import evaluate
from sdrl.predict import NODATA, predict_change
from sdrl.predict.inference import resolve_device
from sdrl.predict.reader import PairReader
from sdrl.predict.writer import ChangeMapWriter
from tests.data.test_write_errors import _file_size_limit
from tests.predict.test_predict import BANDS, FAST, MEAN, STD, DiffConv
from tests.runs import synth_data, tiny_finetune

pytestmark = pytest.mark.usefixtures("one_thread")


def _float_pair(tmp_path: Path, size: int = 80) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 1200, (BANDS, size, size)).astype(np.float32)
    b = rng.uniform(1, 1200, (BANDS, size, size)).astype(np.float32)
    a[2, 10, 10] = np.nan  # one band of one pixel
    b[:, 40, 50] = np.inf
    before = write_raster(tmp_path / "a.tif", a, crs="EPSG:32633")
    after = write_raster(tmp_path / "b.tif", b, crs="EPSG:32633")
    return before, after


def test_reader_zeroes_non_finite_pixels_only(tmp_path):
    before, after = _float_pair(tmp_path)
    with ExitStack() as stack:
        reader = PairReader(before, after, MEAN, STD, False, stack)
        tile = reader.read(0, 0, 64, 64, 64)
    assert np.isfinite(tile).all()  # `image *= valid` kept NaN (NaN * 0 is NaN)
    valid = tile[2 * BANDS]
    assert valid[10, 10] == 0 and valid[40, 50] == 0 and valid.sum() == 64 * 64 - 2
    assert (tile[: 2 * BANDS, 10, 10] == 0).all()
    assert (tile[: 2 * BANDS, 11, 11] != 0).all()  # the rest of the tile keeps its data


def test_predict_maps_non_finite_pixels_to_nodata_and_counts_them(tmp_path):
    before, after = _float_pair(tmp_path)
    out = tmp_path / "map.tif"
    result = predict_change(DiffConv(), before, after, out, **FAST)
    prob, binary = read_raster(out).data
    nodata = prob == NODATA
    assert nodata.sum() == 2 and nodata[10, 10] and nodata[40, 50]
    assert ((prob[~nodata] >= 0) & (prob[~nodata] <= 1)).all()
    assert (binary[nodata] == NODATA).all()
    assert result.nodata_pixels == 2 and "(2 nodata, 0.03%)" in result.summary()
    with rasterio.open(out) as src:
        assert src.tags()["nodata_pixels"] == "2" and src.tags()["valid_pixels"] == str(80 * 80 - 2)
    empty = write_raster(tmp_path / "nan.tif", np.full((BANDS, 40, 40), np.nan, np.float32))
    result = predict_change(DiffConv(), empty, empty, tmp_path / "none.tif", **FAST)
    assert "no pixel with data" in result.summary()


def test_a_failed_map_write_raises_and_leaves_nothing(tmp_path, monkeypatch):
    before, after = _float_pair(tmp_path)
    out = tmp_path / "maps" / "map.tif"

    def no_space(self: ChangeMapWriter, *args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.tmp))

    with monkeypatch.context() as patch:
        patch.setattr(ChangeMapWriter, "_write", no_space)
        with pytest.raises(DataError, match=r"map.tif: .*No space left on device"):
            predict_change(DiffConv(), before, after, out, **FAST)
    assert list(out.parent.iterdir()) == []
    if sys.platform == "linux":  # GDAL's errors at closing time, which it only logs
        with pytest.raises(DataError, match=r"map.tif: expected a"), _file_size_limit(3000):
            predict_change(DiffConv(), before, after, out, **FAST)
        assert list(out.parent.iterdir()) == []


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synth_data(tmp_path_factory, "cdn", "change", num=4, size=64, bands=4, seed=1)


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ftn") / "run"
    return tiny_finetune(data, run, "--max-steps", "1", "--val-split", "none")


def _with_nan(data: Path, out: Path, rows: int) -> Path:
    """A float32 copy of ``data`` whose A images have NaN in their first ``rows`` rows."""
    shutil.copytree(data, out)
    for path in sorted((out / "A").glob("*.tif")):
        raster = read_raster(path)
        image = raster.data.astype(np.float32)
        image[:, :rows] = np.nan
        write_raster(path, image, raster.crs, raster.transform, band_names=raster.band_names)
    return out


def test_evaluate_counts_nodata_and_refuses_no_valid_pixel(data, checkpoint, tmp_path):
    clean = evaluate(data, checkpoint, tmp_path / "clean.json", split="all")
    assert clean["nodata"] == 0 and clean["pixels"] == 4 * 64 * 64
    nan = _with_nan(data, tmp_path / "nan", rows=3)
    result = evaluate(nan, checkpoint, tmp_path / "m.json", split="all")
    assert result["nodata"] == 4 * 3 * 64 and result["ignored"] == result["nodata"]
    assert result["pixels"] == 4 * 61 * 64  # NaN rows are left out, not counted as no change
    assert json.loads((tmp_path / "m.json").read_text())["nodata"] == result["nodata"]
    all_nan = _with_nan(data, tmp_path / "all_nan", rows=64)
    with pytest.raises(DataError, match="expected labelled pixels with data .* found none"):
        evaluate(all_nan, checkpoint, tmp_path / "none.json", split="all")
    assert not (tmp_path / "none.json").exists()


def test_evaluate_never_writes_over_its_inputs(data, checkpoint, tmp_path):
    before = checkpoint.read_bytes()
    with pytest.raises(DataError, match="found the input"):
        evaluate(data, checkpoint, checkpoint)
    with pytest.raises(DataError, match="--save-predictions: an output folder apart"):
        evaluate(data, checkpoint, tmp_path / "m.json", save_predictions=data / "A")
    with pytest.raises(DataError, match="a path inside the input folder"):
        evaluate(data, checkpoint, data / "metrics.json")
    assert checkpoint.read_bytes() == before and not (tmp_path / "m.json").exists()
    assert sorted(p.name for p in (data / "A").iterdir()) == [f"00000{i}.tif" for i in range(4)]


def test_a_device_that_is_not_there_is_one_line():
    with pytest.raises(ConfigError, match="--device cuda:99: expected a visible CUDA device"):
        resolve_device("cuda:99")
    with pytest.raises(ConfigError, match="--device gpu: ") as error:
        resolve_device("gpu")
    assert "\n" not in str(error.value)
