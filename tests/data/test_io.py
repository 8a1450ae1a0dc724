"""Raster I/O: round trips, windows, alignment, band stacking and bad files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import reproject

from sdrl.data.grid import align_to, check_same_grid, stack_bands
from sdrl.data.io import Window, read_info, read_raster, write_raster
from sdrl.errors import DataError


def test_geotiff_round_trip_keeps_everything(make_tif):
    data = np.random.default_rng(1).normal(size=(3, 20, 30)).astype(np.float32)
    path = make_tif("a.tif", data, nodata=-9999.0, band_names=["B02", "B03", "B04"])
    raster = read_raster(path)
    np.testing.assert_array_equal(raster.data, data)
    assert raster.band_names == ("B02", "B03", "B04")
    assert raster.nodata == -9999.0
    assert raster.crs.to_epsg() == 32633
    assert raster.transform == Affine(10, 0, 500000, 0, -10, 5000000)
    info = read_info(path)
    assert info.shape == (3, 20, 30)
    assert info.dtype == "float32"
    assert info.resolution == (10.0, 10.0)


def test_png_round_trip_and_rgb_band_names(tmp_path):
    data = np.random.default_rng(2).integers(0, 255, (3, 16, 16), dtype=np.uint8)
    path = write_raster(tmp_path / "x.png", data)
    raster = read_raster(path)
    np.testing.assert_array_equal(raster.data, data)
    assert raster.crs is None
    assert raster.band_names == ("red", "green", "blue")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_windowed_read_matches_slice_and_transform(make_tif):
    path = make_tif("a.tif")
    full = read_raster(path)
    window = Window(col_off=5, row_off=7, width=11, height=9)
    part = read_raster(path, window=window)
    np.testing.assert_array_equal(part.data, full.data[:, 7:16, 5:16])
    assert part.transform == full.transform @ Affine.translation(5, 7)
    band = read_raster(path, window=window, bands=[2])
    np.testing.assert_array_equal(band.data[0], full.data[1, 7:16, 5:16])


def test_boundless_window_fills_with_nodata(make_tif):
    data = np.ones((1, 8, 8), dtype=np.int16)
    path = make_tif("a.tif", data, nodata=-1)
    raster = read_raster(path, window=Window(4, 4, 8, 8), boundless=True)
    assert raster.data.shape == (1, 8, 8)
    assert (raster.data[0, :4, :4] == 1).all()
    assert (raster.data[0, 4:, :] == -1).all()
    assert raster.valid[:4, :4].all() and not raster.valid[4:].any()


def test_bad_band_index_is_reported(make_tif):
    path = make_tif("a.tif")
    with pytest.raises(DataError, match="band indexes in 1..4"):
        read_raster(path, bands=[5])


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_raster(tmp_path / "missing.tif")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"this is not a tiff")
    with pytest.raises(DataError, match=r"junk\.tif: expected a raster"):
        read_info(junk)


def test_truncated_file_is_reported(make_tif, tmp_path):
    data = np.random.default_rng(0).integers(0, 60000, (4, 300, 300), dtype=np.uint16)
    path = make_tif("big.tif", data)
    raw = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cut.tif"):
        read_raster(cut)


def test_write_rejects_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="a file name ending in one of"):
        write_raster(tmp_path / "a.jp2", np.zeros((1, 4, 4), np.uint8))


def test_check_same_grid(make_tif):
    a = read_info(make_tif("a.tif"))
    b = read_info(make_tif("b.tif", seed=1))
    assert check_same_grid(a, b) is True
    shifted = read_info(make_tif("c.tif", origin=(500010.0, 5000000.0)))
    with pytest.raises(DataError, match="--align"):
        check_same_grid(a, shifted)
    assert check_same_grid(a, shifted, align=True) is False
    plain = read_info(make_tif("d.tif", crs=None))
    with pytest.raises(DataError, match="no CRS"):
        check_same_grid(a, plain, align=True)


def test_align_to_matches_rasterio_reproject(make_tif):
    """A raster in another CRS lands on the reference grid exactly as rasterio reprojects it."""
    data = np.random.default_rng(3).normal(size=(2, 40, 40)).astype(np.float32)
    ref_path = make_tif("ref.tif", data[:, :32, :32])
    # the same area in Web Mercator, coarser pixels
    with rasterio.open(ref_path) as ref:
        from rasterio.warp import calculate_default_transform

        transform, width, height = calculate_default_transform(
            ref.crs, "EPSG:3857", ref.width, ref.height, *ref.bounds
        )
    other = np.random.default_rng(4).normal(size=(2, height, width)).astype(np.float32)
    other_path = make_tif("other.tif", other, crs="EPSG:3857", origin=(transform.c, transform.f))
    # rewrite with the exact transform
    write_raster(other_path, other, crs="EPSG:3857", transform=transform)
    reference = read_info(ref_path)
    aligned = align_to(other_path, reference, Resampling.nearest)
    assert aligned.data.shape == (2, 32, 32)
    assert aligned.crs == reference.crs and aligned.transform == reference.transform
    expected = np.zeros((2, 32, 32), np.float32)
    reproject(
        other,
        expected,
        src_transform=transform,
        src_crs="EPSG:3857",
        dst_transform=reference.transform,
        dst_crs=reference.crs,
        resampling=Resampling.nearest,
    )
    np.testing.assert_allclose(aligned.data, expected)
    window = align_to(other_path, reference, Resampling.nearest, window=Window(3, 5, 8, 8))
    np.testing.assert_allclose(window.data, expected[:, 5:13, 3:11])


def test_stack_bands_onto_finest_grid(make_tif):
    rng = np.random.default_rng(5)
    b10 = rng.integers(0, 1000, (1, 12, 12), dtype=np.uint16)
    b20 = rng.integers(0, 1000, (1, 6, 6), dtype=np.uint16)
    b60 = rng.integers(0, 1000, (1, 2, 2), dtype=np.uint16)
    paths = [
        make_tif("B01.tif", b60, res=60.0),
        make_tif("B02.tif", b10, res=10.0),
        make_tif("B05.tif", b20, res=20.0),
    ]
    stacked = stack_bands(paths, resampling=Resampling.nearest)
    assert stacked.data.shape == (3, 12, 12)
    assert stacked.band_names == ("B01", "B02", "B05")
    assert stacked.transform.a == 10.0
    np.testing.assert_array_equal(stacked.data[1], b10[0])
    np.testing.assert_array_equal(stacked.data[2], np.kron(b20[0], np.ones((2, 2), np.uint16)))
    np.testing.assert_array_equal(stacked.data[0], np.kron(b60[0], np.ones((6, 6), np.uint16)))
    explicit = stack_bands(paths, band_names=["a", "b", "c"], reference=2)
    assert explicit.data.shape == (3, 6, 6) and explicit.band_names == ("a", "b", "c")


def test_stack_bands_without_crs_uses_largest_grid(make_tif):
    small = make_tif("B01.tif", np.ones((1, 2, 2), np.uint16), crs=None)
    large = make_tif("B02.tif", np.ones((1, 12, 12), np.uint16), crs=None)
    stacked = stack_bands([small, large])
    assert stacked.data.shape == (2, 12, 12)


def test_align_to_many_bands_whole_and_windowed_agree_with_reproject(make_tif):
    """Five uint16 bands on a sub-pixel shifted grid: every read equals GDAL's reproject."""
    rng = np.random.default_rng(7)
    ref_path = make_tif("ref.tif", rng.integers(0, 5000, (5, 64, 80), dtype=np.uint16))
    data = rng.integers(0, 5000, (5, 64, 80), dtype=np.uint16)
    other = make_tif("other.tif", data, origin=(500003.7, 4999997.9))
    reference = read_info(ref_path)
    whole = align_to(other, reference)
    expected = np.zeros_like(whole.data)
    reproject(
        data,
        expected,
        src_transform=read_info(other).transform,
        src_crs=reference.crs,
        dst_transform=reference.transform,
        dst_crs=reference.crs,
        resampling=Resampling.bilinear,
    )
    inner = (slice(None), slice(2, -2), slice(2, -2))
    np.testing.assert_array_equal(whole.data[inner], expected[inner])
    part = align_to(other, reference, window=Window(10, 20, 30, 16))
    np.testing.assert_array_equal(part.data, whole.data[:, 20:36, 10:40])
    assert part.transform == reference.transform @ Affine.translation(10, 20)
