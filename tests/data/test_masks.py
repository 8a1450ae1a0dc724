"""Mask sources: label rasters, GeoJSON polygons, spectral indices and k-means clusters."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import rowcol
from rasterio.warp import transform as transform_points

from sdrl.data.io import Window, read_info, read_raster, write_raster
from sdrl.data.masks import (
    INDEX_CLASSES,
    SpectralKMeans,
    find_bands,
    index_mask,
    kmeans_mask,
    label_mask,
    vector_mask,
)
from sdrl.data.samples import IGNORE_INDEX
from sdrl.errors import DataError
from tests.conftest import CRS_UTM33, realdata

ORIGIN = (500000.0, 5000000.0)  # UTM 33N, on the zone's central meridian
RES = 10.0


# ---------------------------------------------------------------- label rasters


def test_label_on_coarser_grid_is_aligned_nearest(make_tif):
    image = make_tif("image.tif", np.zeros((1, 16, 24), dtype=np.uint8))
    coarse = np.random.default_rng(0).integers(0, 3, (8, 12), dtype=np.uint8)
    labels = make_tif("labels.tif", coarse, res=2 * RES)
    reference = read_info(image)
    mask = label_mask(labels, reference, values=[0, 1, 2])
    np.testing.assert_array_equal(mask, np.kron(coarse, np.ones((2, 2), dtype=np.uint8)))
    window = label_mask(labels, reference, values=[0, 1, 2], window=Window(4, 2, 6, 8))
    np.testing.assert_array_equal(window, mask[2:10, 4:10])


def test_label_outside_its_extent_and_ignore_value_become_ignore(make_tif):
    image = make_tif("image.tif", np.zeros((1, 8, 8), dtype=np.uint8))
    raw = np.array([[0, 7], [1, 7]], dtype=np.uint8).repeat(2, 0).repeat(2, 1)  # 4x4
    labels = make_tif("labels.tif", raw, origin=(ORIGIN[0] + 20, ORIGIN[1] - 20))
    mask = label_mask(labels, read_info(image), values=[0, 1], ignore_value=7)
    expected = np.full((8, 8), IGNORE_INDEX, dtype=np.uint8)
    expected[2:6, 2:6] = np.where(raw == 7, IGNORE_INDEX, raw)
    np.testing.assert_array_equal(mask, expected)


def test_label_raw_values_map_to_class_ids_in_declared_order(make_tif):
    raw = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    labels = make_tif("levir.tif", raw)
    mask = label_mask(labels, read_info(labels), values=[0, 255])
    np.testing.assert_array_equal(mask, [[0, 1], [1, 0]])


def test_undeclared_label_values_name_the_file_declared_and_found(make_tif):
    labels = make_tif("bad_labels.tif", np.array([[0, 1], [5, 9]], dtype=np.uint8))
    with pytest.raises(DataError) as error:
        label_mask(labels, read_info(labels), values=[0, 1], ignore_value=255)
    message = str(error.value)
    assert "bad_labels.tif" in message and "[0, 1]" in message
    assert "5, 9" in message and "255 = ignore" in message


def test_plain_label_image_of_another_size_cannot_be_aligned(make_tif, tmp_path):
    image = make_tif("image.tif", np.zeros((1, 8, 8), dtype=np.uint8))
    write_raster(tmp_path / "labels.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match="cannot be aligned|georeferenced"):
        label_mask(tmp_path / "labels.png", read_info(image))


# ---------------------------------------------------------------- GeoJSON polygons


def _square_lonlat(left: float, top: float, right: float, bottom: float) -> list[list[float]]:
    """UTM 33N corners → a closed lon/lat ring (what a user's GeoJSON would hold)."""
    xs, ys = [left, right, right, left, left], [top, top, bottom, bottom, top]
    lons, lats = transform_points(CRS_UTM33, "EPSG:4326", xs, ys)
    return [[lon, lat] for lon, lat in zip(lons, lats, strict=True)]


def _write_geojson(path, features, crs=None):
    collection = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(collection))
    return path


def _feature(ring, **properties):
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": properties,
    }


def test_lonlat_square_lands_on_the_right_utm_pixels(make_tif, tmp_path):
    image = make_tif("image.tif", np.zeros((1, 32, 48), dtype=np.uint8))
    info = read_info(image)
    # corners a quarter pixel inside pixel edges, so the covered pixel centres are unambiguous
    left, right = ORIGIN[0] + 5.25 * RES, ORIGIN[0] + 20.75 * RES
    top, bottom = ORIGIN[1] - 3.25 * RES, ORIGIN[1] - 11.75 * RES
    path = _write_geojson(
        tmp_path / "square.geojson", [_feature(_square_lonlat(left, top, right, bottom))]
    )
    mask = vector_mask(path, info)
    r0, c0 = rowcol(info.transform, left, top)
    r1, c1 = rowcol(info.transform, right, bottom)
    expected = np.zeros((32, 48), dtype=np.uint8)
    expected[r0 : r1 + 1, c0 : c1 + 1] = 1
    assert (r0, c0, r1, c1) == (3, 5, 11, 20)
    np.testing.assert_array_equal(mask, expected)
    window = vector_mask(path, info, window=Window(10, 4, 16, 8))
    np.testing.assert_array_equal(window, expected[4:12, 10:26])


def test_legacy_crs_member_is_honoured(make_tif, tmp_path):
    info = read_info(make_tif("image.tif", np.zeros((1, 16, 16), dtype=np.uint8)))
    x0, y0 = ORIGIN[0] + 2 * RES, ORIGIN[1] - 2 * RES
    ring = [[x0, y0], [x0 + 40, y0], [x0 + 40, y0 - 30], [x0, y0 - 30], [x0, y0]]
    path = _write_geojson(tmp_path / "utm.geojson", [_feature(ring)], "urn:ogc:def:crs:EPSG::32633")
    mask = vector_mask(path, info)
    assert mask.sum() == 4 * 3 and mask[2:5, 2:6].all()


def test_class_property_names_and_ids(make_tif, tmp_path):
    info = read_info(make_tif("image.tif", np.zeros((1, 16, 16), dtype=np.uint8)))
    left = _square_lonlat(ORIGIN[0] + 10, ORIGIN[1] - 10, ORIGIN[0] + 60, ORIGIN[1] - 60)
    right = _square_lonlat(ORIGIN[0] + 90, ORIGIN[1] - 10, ORIGIN[0] + 140, ORIGIN[1] - 60)
    features = [_feature(left, kind="water"), _feature(right, kind="forest")]
    path = _write_geojson(tmp_path / "classes.geojson", features)
    mask = vector_mask(path, info, class_property="kind", classes=["background", "forest", "water"])
    assert mask[3, 3] == 2 and mask[3, 11] == 1 and mask[12, 12] == 0
    assert set(np.unique(mask).tolist()) == {0, 1, 2}
    ids = [_feature(left, kind=3), _feature(right, kind="4")]
    mask = vector_mask(_write_geojson(tmp_path / "ids.geojson", ids), info, class_property="kind")
    assert mask[3, 3] == 3 and mask[3, 11] == 4
    with pytest.raises(DataError, match="'kind' values among class names"):
        vector_mask(path, info, class_property="kind", classes=["background", "water"])


def test_all_touched_burns_more_pixels(make_tif, tmp_path):
    info = read_info(make_tif("image.tif", np.zeros((1, 16, 16), dtype=np.uint8)))
    ring = _square_lonlat(ORIGIN[0] + 16, ORIGIN[1] - 16, ORIGIN[0] + 34, ORIGIN[1] - 34)
    path = _write_geojson(tmp_path / "small.geojson", [_feature(ring)])
    assert vector_mask(path, info)[2, 2] == 1 and vector_mask(path, info).sum() == 1  # one centre
    assert vector_mask(path, info, all_touched=True)[1:4, 1:4].all()  # touches 3x3 pixels
    assert vector_mask(path, info, all_touched=True).sum() == 9


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "GeoJSON \\(JSON\\) file"),
        ('{"type": "FeatureCollection", "features": []}', "at least one feature"),
        ("[1, 2]", "FeatureCollection"),
        ('{"type": "Topology"}', "FeatureCollection, Feature or geometry"),
    ],
)
def test_bad_geojson_is_a_data_error(make_tif, tmp_path, text, match):
    info = read_info(make_tif("image.tif", np.zeros((1, 8, 8), dtype=np.uint8)))
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as error:
        vector_mask(path, info)
    assert "bad.geojson" in str(error.value)


def test_missing_class_property_names_the_feature(make_tif, tmp_path):
    info = read_info(make_tif("image.tif", np.zeros((1, 8, 8), dtype=np.uint8)))
    ring = _square_lonlat(ORIGIN[0], ORIGIN[1], ORIGIN[0] + 30, ORIGIN[1] - 30)
    path = _write_geojson(
        tmp_path / "p.geojson", [_feature(ring, kind=1), _feature(ring, name="x")]
    )
    with pytest.raises(DataError, match="'kind' property on every feature.*feature 1"):
        vector_mask(path, info, class_property="kind")


def test_polygons_outside_the_raster_error_or_warn(make_tif, tmp_path):
    info = read_info(make_tif("image.tif", np.zeros((1, 8, 8), dtype=np.uint8)))
    far = [[10.0, 50.0], [10.01, 50.0], [10.01, 49.99], [10.0, 49.99], [10.0, 50.0]]
    with pytest.raises(DataError, match="all 1 features outside"):
        vector_mask(_write_geojson(tmp_path / "far.geojson", [_feature(far)]), info)
    near = _square_lonlat(ORIGIN[0], ORIGIN[1], ORIGIN[0] + 30, ORIGIN[1] - 30)
    path = _write_geojson(tmp_path / "mixed.geojson", [_feature(near), _feature(far)])
    with pytest.warns(UserWarning, match="1 of 2 features lie outside"):
        mask = vector_mask(path, info)
    assert mask.sum() == 9


# ---------------------------------------------------------------- spectral indices

S2_NAMES = [
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B10",
    "B11",
    "B12",
]
# reflectance of (blue, green, red, nir, swir1) and the class the rules must give
SPECTRA = {
    "vegetation": ((0.04, 0.08, 0.04, 0.40, 0.20), 1),
    "water": ((0.08, 0.07, 0.05, 0.02, 0.01), 2),
    "built_up": ((0.12, 0.13, 0.15, 0.20, 0.28), 3),
    "other": ((0.10, 0.10, 0.15, 0.20, 0.18), 0),
}


def _s2_image() -> tuple[np.ndarray, np.ndarray]:
    """(13, 4, 1) uint16 image (one pixel per class, scaled by 10000) and expected ids."""
    image = np.full((13, 4, 1), 1000, dtype=np.uint16)
    expected = []
    for row, (values, cls) in enumerate(SPECTRA.values()):
        for name, value in zip(("B02", "B03", "B04", "B08", "B11"), values, strict=True):
            image[S2_NAMES.index(name), row, 0] = round(value * 10000)
        image[S2_NAMES.index("B8A"), row, 0] = 1  # a red-edge-ish decoy: B08 must win for NIR
        expected.append(cls)
    return image, np.array(expected, dtype=np.uint8)[:, None]


def test_index_classes_for_sentinel2_names():
    image, expected = _s2_image()
    np.testing.assert_array_equal(index_mask(image, S2_NAMES), expected)
    assert INDEX_CLASSES[1:] == ("vegetation", "water", "built_up")


def test_index_classes_for_rgbn_without_swir():
    image, expected = _s2_image()
    rgbn = image[[S2_NAMES.index(b) for b in ("B04", "B03", "B02", "B08")]]
    mask = index_mask(rgbn, ["Red", "green", "BLUE", "nir"])
    np.testing.assert_array_equal(mask, np.where(expected == 3, 0, expected))  # no built-up


def test_index_nodata_and_nan_are_ignored():
    image, expected = _s2_image()
    image[:, 1, 0] = 0
    mask = index_mask(image, S2_NAMES, nodata=0)
    assert mask[1, 0] == IGNORE_INDEX and mask[0, 0] == expected[0, 0]
    floats = image.astype(np.float32) / 10000
    floats[3, 2, 0] = np.nan
    assert index_mask(floats, S2_NAMES)[2, 0] == IGNORE_INDEX


def test_band_names_by_word_and_landsat_names():
    names = ["TM1_blue", "TM2_green", "TM3_red", "TM4_nir", "TM5_swir1", "TM7_swir2"]
    assert find_bands(names) == {"red": 2, "green": 1, "nir": 3, "swir1": 4}
    assert find_bands(["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6"])["nir"] == 3
    assert "red" not in find_bands(["red_edge_1", "nir"], required=(), optional=("red",))


def test_missing_nir_lists_found_and_accepted_names():
    with pytest.raises(DataError) as error:
        index_mask(np.zeros((3, 2, 2)), ["band_1", "band_2", "band_3"], source="scene.tif")
    message = str(error.value)
    assert "scene.tif" in message and "['band_1', 'band_2', 'band_3']" in message
    assert "nir" in message and "B08" in message and "--band-names" in message


# ---------------------------------------------------------------- k-means


def _two_populations(layout: np.ndarray, seed: int) -> np.ndarray:
    """(3, H, W) float image: spectra near (100,) * 3 where layout is 0, else (900, 50, 700)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[100, 100, 100], [900, 50, 700]], dtype=np.float32)
    image = centres[layout].transpose(2, 0, 1) + rng.normal(0, 5, (3, *layout.shape))
    return image.astype(np.float32)


def test_kmeans_splits_populations_with_the_same_ids_on_both_dates():
    rng = np.random.default_rng(1)
    layout_a = (rng.random((20, 30)) > 0.7).astype(int)
    layout_b = (rng.random((20, 30)) > 0.4).astype(int)
    image_a, image_b = _two_populations(layout_a, 2), _two_populations(layout_b, 3)
    mask_a, mask_b = kmeans_mask([image_a, image_b], k=2, seed=0)
    # ids ordered dark to bright: population 1 has the larger mean standardised value
    np.testing.assert_array_equal(mask_a, layout_a)
    np.testing.assert_array_equal(mask_b, layout_b)


def test_kmeans_is_deterministic_and_ignores_nodata():
    image = np.random.default_rng(0).integers(1, 1000, (4, 24, 24)).astype(np.uint16)
    image[:, :3, :] = 0
    first = kmeans_mask([image], k=5, seed=7, sample_pixels=300, nodata=0)[0]
    second = kmeans_mask([image], k=5, seed=7, sample_pixels=300, nodata=0)[0]
    np.testing.assert_array_equal(first, second)
    assert (first[:3] == IGNORE_INDEX).all()
    assert set(np.unique(first[3:]).tolist()) == set(range(5))


def test_kmeans_predict_in_windows_equals_whole_image():
    image = _two_populations((np.random.default_rng(4).random((16, 16)) > 0.5).astype(int), 5)
    model = SpectralKMeans(k=3, seed=0, chunk_pixels=7).fit(image.reshape(3, -1).T)
    whole = model.predict(image)
    np.testing.assert_array_equal(model.predict(image[:, :8, 4:12]), whole[:8, 4:12])
    assert np.all(np.diff(model.centers.mean(axis=1)) >= 0)


# ---------------------------------------------------------------- real Sentinel-2 scene


@pytest.mark.realdata
def test_index_masks_on_a_real_sentinel2_scene(tmp_path):
    scenes = np.load(realdata("ms", "eolearn_s2_l1c_reference_scenes", "REFERENCE_SCENES.npy"))
    scene = scenes[1].transpose(2, 0, 1)  # (13, 101, 100) TOA reflectance, B01..B12 with B8A
    transform = rasterio.transform.from_origin(465181.05, 5080254.63, 9.995, 9.997)
    path = write_raster(tmp_path / "s2.tif", scene, "EPSG:32633", transform, band_names=S2_NAMES)
    raster = read_raster(path)
    mask = index_mask(raster.data, raster.band_names, source=path)
    shares = np.bincount(mask.ravel(), minlength=4) / mask.size
    assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3}
    assert shares[1] > 0.5  # a forested Slovenian scene in summer


def test_kmeans_with_fewer_distinct_spectra_than_k_says_so_in_sdrl_words(caplog):
    spectra = np.repeat(np.array([[0.1, 0.2], [0.8, 0.9]], dtype=np.float32), 50, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's ConvergenceWarning does not reach the user
        model = SpectralKMeans(k=4, seed=0).fit(spectra)
    assert "2 distinct spectra, so some of the 4 region ids stay empty" in caplog.text
    assert model.centers.shape == (4, 2)
