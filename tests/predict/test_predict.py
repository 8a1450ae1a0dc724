from __future__ import annotations

import itertools
import math
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject
from torch import nn

from sdrl.data.io import read_info, write_raster
from sdrl.errors import DataError
from sdrl.predict import NODATA, AxisPlan, TilePlan, predict_change
from sdrl.predict.strip import StripBuffer

BANDS = 4
MEAN = [500.0, 400.0, 600.0, 550.0]
STD = [300.0, 250.0, 350.0, 320.0]
TILE, OVERLAP = 64, 16
FAST = {"mean": MEAN, "std": STD, "tile": TILE, "overlap": OVERLAP, "batch_size": 3}


class DiffConv(nn.Module):
    """Translation-equivariant change model: one 3×3 conv on |a − b| (receptive radius 1)."""

    def __init__(self, k: int = 2, fail_at: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(BANDS, k, 3, padding=1)
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return self.conv((a - b).abs())


def reference(model: nn.Module, a: np.ndarray, b: np.ndarray, nodata: float | None = 0):
    """Whole-image inference: ``(H, W)`` change probability, NaN at nodata."""
    valid = np.ones(a.shape[1:], bool)
    if nodata is not None:
        valid = ~(a == nodata).all(0) & ~(b == nodata).all(0)
    mean, std = np.array(MEAN)[:, None, None], np.array(STD)[:, None, None]
    x = [((d.astype(np.float32) - mean) / std).astype(np.float32) * valid for d in (a, b)]
    with torch.inference_mode():
        logits = model(*[torch.from_numpy(d)[None] for d in x])
    prob = torch.softmax(logits, 1)[0, 1].numpy()
    return np.where(valid, prob, np.nan)


def pair(height: int = 300, width: int = 417, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1200, (BANDS, height, width), dtype=np.uint16)
    b = a.copy()
    for _ in range(12):  # changed rectangles
        r, c = rng.integers(0, height), rng.integers(0, width)
        b[:, r : r + 20, c : c + 30] = rng.integers(1, 1200, (BANDS, 1, 1))
    b = np.clip(b.astype(np.int32) + rng.integers(-30, 30, b.shape), 1, 1500).astype(np.uint16)
    return a, b


def read_map(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile, tuple]:
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.descriptions


def tile_frames(plan: TilePlan) -> np.ndarray:
    """``(H, W)`` pixels on a tile's outermost row/column that faces another tile."""
    mask = np.zeros((plan.rows.length, plan.cols.length), bool)
    for axis, ap in ((0, plan.rows), (1, plan.cols)):
        for i, o in enumerate(ap.offsets):
            edges = ([o] if i > 0 else []) + ([o + ap.span - 1] if i < len(ap.offsets) - 1 else [])
            for e in edges:
                if axis == 0:
                    mask[e] = True
                else:
                    mask[:, e] = True
    return mask


@pytest.fixture
def georef_pair(make_tif):
    a, b = pair()
    a[:, 100:110] = 0  # nodata strip in A
    b[:, 200:230, 50:90] = 0  # nodata block in B
    return make_tif("a.tif", a, nodata=0), make_tif("b.tif", b, nodata=0), a, b


@pytest.mark.parametrize("stitch", ["centre", "blend"])
def test_matches_whole_image_inference(georef_pair, tmp_path, stitch):
    path_a, path_b, a, b = georef_pair
    model = DiffConv()
    result = predict_change(model, path_a, path_b, tmp_path / "out.tif", stitch=stitch, **FAST)
    data, profile, names = read_map(result.out)
    info = read_info(path_a)
    assert (profile["height"], profile["width"]) == (300, 417) == (result.height, result.width)
    assert profile["crs"] == info.crs and profile["transform"] == info.transform
    assert profile["nodata"] == NODATA and profile["dtype"] == "float32"
    assert names == ("change_probability", "change")
    assert result.tiles == len(TilePlan.build(300, 417, TILE, OVERLAP))

    expected = reference(model, a, b)
    nodata = np.isnan(expected)
    assert nodata[100:110].all() and nodata[200:230, 50:90].all()
    assert (data[:, nodata] == NODATA).all()
    prob, binary = data[0], data[1]
    assert ((prob[~nodata] >= 0) & (prob[~nodata] <= 1)).all()
    error = np.abs(prob - expected)[~nodata]
    if stitch == "centre":
        # every kept pixel lies >= overlap/2 = 8 px inside its tile (or on the raster edge, where
        # the tile's zero padding is the whole image's): a radius-1 model is exact everywhere
        assert error.max() < 1e-5
    else:
        # a tile is inexact only on its outermost row/column facing a neighbour, where its
        # weight is at most sin²(π/4·overlap) and the total weight at least 1; up to 3 tiles
        # (a corner) can be inexact at a pixel
        frames = tile_frames(TilePlan.build(300, 417, TILE, OVERLAP))[~nodata]
        assert error[~frames].max() < 1e-5
        assert error[frames].max() < 3 * math.sin(math.pi / (4 * OVERLAP)) ** 2
    assert np.array_equal(binary[~nodata], (prob[~nodata] > 0.5).astype(np.float32))
    assert result.changed_fraction == pytest.approx((prob[~nodata] > 0.5).mean())


def test_binary_only_uint8_and_sigmoid_model(georef_pair, tmp_path):
    path_a, path_b, a, b = georef_pair
    model = DiffConv(k=1)
    result = predict_change(
        model, path_a, path_b, tmp_path / "bin.tif", outputs=("binary",), threshold=0.3, **FAST
    )
    data, profile, names = read_map(result.out)
    assert profile["dtype"] == "uint8" and names == ("change",) and data.shape[0] == 1
    with torch.inference_mode():
        valid = ~(a == 0).all(0) & ~(b == 0).all(0)
        mean, std = np.array(MEAN)[:, None, None], np.array(STD)[:, None, None]
        x = [torch.from_numpy(((d - mean) / std * valid).astype(np.float32))[None] for d in (a, b)]
        prob = torch.sigmoid(model(*x))[0, 0].numpy()
    assert set(np.unique(data[0][~valid])) == {NODATA}
    agree = data[0][valid] == (prob[valid] > 0.3)
    assert agree.mean() > 0.999  # pixels at the threshold may flip by float rounding


def _write_other_grid(make_tif, b: np.ndarray, kind: str) -> Path:
    """B on another grid covering A's footprint: shifted sub-pixel, or in Web Mercator."""
    big = np.pad(b, ((0, 0), (8, 8), (8, 8)), mode="reflect")
    origin = (500000.0 - 80 + 3.7, 5000000.0 + 80 - 2.1)
    shifted = make_tif("b_shift.tif", big, origin=origin, nodata=0)
    if kind == "shift":
        return shifted
    with rasterio.open(shifted) as src, WarpedVRT(src, crs="EPSG:3857") as vrt:
        data, transform = vrt.read(), vrt.transform
    path = shifted.with_name("b_crs.tif")
    return write_raster(path, data, crs="EPSG:3857", transform=transform, nodata=0)


@pytest.mark.parametrize("kind", ["shift", "crs"])
def test_align_equals_prealigned(georef_pair, make_tif, tmp_path, kind):
    path_a, _, _, b = georef_pair
    path_b = _write_other_grid(make_tif, b, kind)
    model = DiffConv()
    with pytest.raises(DataError, match="align"):
        predict_change(model, path_a, path_b, tmp_path / "x.tif", **FAST)
    assert not (tmp_path / "x.tif").exists()
    got = predict_change(model, path_a, path_b, tmp_path / "al.tif", align=True, **FAST)
    info = read_info(path_a)
    # the reference alignment: GDAL's reproject of the whole raster (align_to's whole-raster
    # read of a multi-band warped VRT is off by up to ~0.1 px with GDAL 3.10: see the report)
    pre = np.zeros((BANDS, info.height, info.width), np.uint16)
    with rasterio.open(path_b) as src:
        reproject(
            rasterio.band(src, list(range(1, BANDS + 1))),
            pre,
            dst_transform=info.transform,
            dst_crs=info.crs,
            resampling=Resampling.bilinear,
            dst_nodata=0,
        )
    path_pre = write_raster(tmp_path / "b_pre.tif", pre, info.crs, info.transform, nodata=0)
    want = predict_change(model, path_a, path_pre, tmp_path / "pre.tif", **FAST)
    got_data, want_data = read_map(got.out)[0], read_map(want.out)[0]
    assert np.array_equal(got_data == NODATA, want_data == NODATA)
    error = np.abs(got_data - want_data)[got_data != NODATA]
    assert error.max() < 1e-6


@pytest.mark.parametrize("shape", [(40, 50), (40, 300), (300, 20)])
@pytest.mark.parametrize("stitch", ["centre", "blend"])
def test_raster_smaller_than_a_tile(make_tif, tmp_path, shape, stitch):
    a, b = pair(*shape, seed=1)
    path_a, path_b = make_tif("a.tif", a), make_tif("b.tif", b)
    model = DiffConv()
    result = predict_change(model, path_a, path_b, tmp_path / "o.tif", stitch=stitch, **FAST)
    prob = read_map(result.out)[0][0]
    assert prob.shape == shape
    expected = reference(model, a, b, nodata=None)
    # reflection padding replaces the whole image's zero padding only past the far edge of an
    # axis shorter than a tile; elsewhere the same bounds as on a large raster hold
    error, frames = np.abs(prob - expected), tile_frames(TilePlan.build(*shape, TILE, OVERLAP))
    padded = np.zeros(shape, bool)
    if shape[0] < TILE:
        padded[-1] = True
    if shape[1] < TILE:
        padded[:, -1] = True
    assert error[~frames & ~padded].max() < 1e-5
    if frames.any():
        assert stitch == "blend" or error[frames & ~padded].max() < 1e-5
        assert error[frames & ~padded].max() < 3 * math.sin(math.pi / (4 * OVERLAP)) ** 2


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"tile": 64, "overlap": 64}, "overlap"),
        ({"tile": 64, "overlap": -1}, "overlap"),
        ({"tile": 0, "overlap": 0}, "tile"),
        ({"batch_size": 0}, "batch_size"),
        ({"stitch": "mean"}, "stitch"),
        ({"outputs": ("probability", "mask")}, "outputs"),
        ({"outputs": ()}, "outputs"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_invalid_options(georef_pair, tmp_path, options, match):
    path_a, path_b, _, _ = georef_pair
    model = DiffConv()
    with pytest.raises(ValueError, match=match):
        predict_change(model, path_a, path_b, tmp_path / "o.tif", **{**FAST, **options})
    assert model.calls == 0 and not (tmp_path / "o.tif").exists()


def test_bad_inputs(make_tif, tmp_path):
    a, b = pair(64, 80)
    path_a = make_tif("a.tif", a)
    model = DiffConv()
    with pytest.raises(DataError, match="b3.tif.*4 bands"):
        predict_change(model, path_a, make_tif("b3.tif", b[:3]), tmp_path / "o.tif", **FAST)
    with pytest.raises(DataError, match="a.tif.*normalisation"):
        predict_change(
            model, path_a, make_tif("b.tif", b), tmp_path / "o.tif", **FAST | {"mean": MEAN[:3]}
        )
    png_a, png_b = tmp_path / "a.png", tmp_path / "b.png"
    write_raster(png_a, a[:3].astype(np.uint8))
    write_raster(png_b, b[:3, :60].astype(np.uint8))
    with pytest.raises(DataError, match="b.png"):
        predict_change(model, png_a, png_b, tmp_path / "o.tif", **FAST, align=True)
    with pytest.raises(DataError, match="input"):
        predict_change(model, path_a, make_tif("b.tif", b), path_a, **FAST)
    assert model.calls == 0 and not (tmp_path / "o.tif").exists()


def test_plain_png_pair(tmp_path):
    a, b = pair(70, 90)
    png_a, png_b = tmp_path / "a.png", tmp_path / "b.png"
    write_raster(png_a, (a // 8).astype(np.uint8))
    write_raster(png_b, (b // 8).astype(np.uint8))
    result = predict_change(DiffConv(), png_a, png_b, tmp_path / "o.tif", **FAST)
    _, profile, _ = read_map(result.out)
    assert profile["crs"] is None and (profile["height"], profile["width"]) == (70, 90)
    binary = predict_change(
        DiffConv(), png_a, png_b, tmp_path / "o.png", outputs=("binary",), **FAST
    )
    assert read_map(binary.out)[0].shape == (1, 70, 90)
    with pytest.raises(ValueError, match="PNG"):
        predict_change(DiffConv(), png_a, png_b, tmp_path / "p.png", **FAST)


def test_failure_midway_leaves_nothing(georef_pair, tmp_path):
    path_a, path_b, _, _ = georef_pair
    out = tmp_path / "maps" / "change.tif"
    out.parent.mkdir()
    out.write_bytes(b"previous map")
    model = DiffConv(fail_at=3)
    with pytest.raises(RuntimeError, match="boom"):
        predict_change(model, path_a, path_b, out, **FAST)
    assert model.calls == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["change.tif"]
    assert out.read_bytes() == b"previous map"
    assert model.training  # mode restored


def test_unwritable_output_before_compute(georef_pair, tmp_path):
    path_a, path_b, _, _ = georef_pair
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    model = DiffConv()
    with pytest.raises(DataError, match="file"):
        predict_change(model, path_a, path_b, blocker / "sub" / "out.tif", **FAST)
    with pytest.raises(DataError, match="suffix|ending"):
        predict_change(model, path_a, path_b, tmp_path / "out.jpg", **FAST)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(DataError, match="locked"):
            predict_change(model, path_a, path_b, locked / "out.tif", **FAST)
    assert model.calls == 0


def test_memory_does_not_grow_with_height(make_tif, tmp_path):
    """The strip's shape and the peak of numpy allocations do not depend on the height."""
    shapes, peaks = {}, {}
    for height in (512, 3072):
        a, b = pair(height, 160, seed=height)
        path_a, path_b = make_tif(f"a{height}.tif", a), make_tif(f"b{height}.tif", b)
        del a, b
        tracemalloc.start()
        result = predict_change(
            DiffConv(), path_a, path_b, tmp_path / f"o{height}.tif", **FAST | {"batch_size": 1}
        )
        peaks[height] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        shapes[height] = result.strip_shape
    assert shapes[512] == shapes[3072] == (TILE + 256, 160)
    # holding the map alone (3072 × 160 float32) would add 2 MB, the inputs 8 MB
    assert peaks[3072] < peaks[512] + 0.5 * 2**20


def test_plan_covers_and_partitions():
    for length, tile, overlap in [(417, 64, 16), (64, 64, 8), (65, 64, 8), (1000, 100, 0)]:
        plan = AxisPlan.build(length, tile, overlap)
        assert plan.offsets[0] == 0 and plan.offsets[-1] + plan.span == length
        keeps = [plan.keep(i) for i in range(len(plan.offsets))]
        assert keeps[0][0] == 0 and keeps[-1][1] == length
        assert all(k[1] == n[0] for k, n in itertools.pairwise(keeps))
        for i, (lo, hi) in enumerate(keeps):
            o = plan.offsets[i]
            assert lo == 0 or lo - o >= overlap // 2
            assert hi == length or o + tile - hi >= overlap // 2
        assert (plan.weight_sum(0, length) >= 1 - 1e-9).all()
        assert all((plan.weights(i) > 0).all() for i in range(len(plan.offsets)))


@pytest.mark.parametrize("stitch", ["centre", "blend"])
def test_strip_buffer_equals_full_array_stitching(stitch):
    """The strip (small blocks, chunked release) against stitching into a whole array."""
    plan = TilePlan.build(150, 230, 40, 12)
    strip = StripBuffer(plan, stitch, block=16, chunk_blocks=2)
    rng = np.random.default_rng(0)
    total, weight = np.zeros((150, 230)), np.zeros((150, 230))
    got = np.full((150, 230), -1.0)
    for tile in plan:
        prob = rng.random((40, 40)).astype(np.float32)
        prob[rng.random((40, 40)) < 0.01] = np.nan
        rows, cols = slice(tile.row, tile.row + 40), slice(tile.col, tile.col + 40)
        if stitch == "blend":
            w = np.outer(plan.rows.weights(tile.i), plan.cols.weights(tile.j))
            total[rows, cols] += prob * w
            weight[rows, cols] += w
        else:
            (r0, r1), (c0, c1) = plan.rows.keep(tile.i), plan.cols.keep(tile.j)
            total[r0:r1, c0:c1] = prob[r0 - tile.row : r1 - tile.row, c0 - tile.col : c1 - tile.col]
            weight[r0:r1, c0:c1] = 1
        strip.add(tile, prob)
        for row, col, piece in strip.release():
            assert piece.shape[0] <= 16 and piece.shape[1] <= 32
            assert (got[row : row + piece.shape[0], col : col + piece.shape[1]] == -1).all()
            got[row : row + piece.shape[0], col : col + piece.shape[1]] = piece
        assert strip.shape == (40 + 16, 230)
    expected = total / weight
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=1e-6)


@pytest.mark.parametrize("bad", ["classes", "stride"])
def test_model_with_wrong_output_shape(georef_pair, tmp_path, bad):
    path_a, path_b, _, _ = georef_pair

    class Bad(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            n = a.shape[0]
            return torch.zeros(n, 3, TILE, TILE) if bad == "classes" else torch.zeros(n, 2, 16, 16)

    with pytest.raises(ValueError, match="1 or 2" if bad == "classes" else "full resolution"):
        predict_change(Bad(), path_a, path_b, tmp_path / "o.tif", **FAST)
    assert list(tmp_path.glob("*o.*")) == []
