"""The band tables (sdrl.bands): presets, sources' values, name lookup, --bands parsing."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sdrl.bands import PRESETS, SENSORS, lookup_bands, parse_band_spec, preset_bands
from sdrl.data.prep.oscd import S2_BANDS
from sdrl.data.synth.spectra import band_set


def nms(bands):
    return [b.nm for b in bands]


def names(bands):
    return [b.name for b in bands]


def test_presets_have_the_documented_bands():
    counts = {k: len(preset_bands(k)) for k in PRESETS}
    assert counts == {
        "rgb": 3,
        "sentinel2": 13,
        "sentinel2-10": 10,
        "landsat8": 7,
        "landsat9": 7,
        "enmap": 218,
    }
    assert names(preset_bands("rgb")) == ["red", "green", "blue"]
    assert names(preset_bands("sentinel2-10")) == [
        "B02",
        "B03",
        "B04",
        "B05",
        "B06",
        "B07",
        "B08",
        "B8A",
        "B11",
        "B12",
    ]
    assert nms(preset_bands("sentinel2"))[:4] == [443.0, 490.0, 560.0, 665.0]
    assert nms(preset_bands("landsat8")) == [443.0, 482.5, 562.5, 655.0, 865.0, 1610.0, 2200.0]
    with pytest.raises(ValueError, match="unknown band set 'modis'"):
        preset_bands("modis")


def test_one_table_feeds_the_data_engine_and_oscd():
    s2 = SENSORS["sentinel2"].bands
    assert tuple(names(s2)) == S2_BANDS
    synth = band_set(13)
    assert synth.names == S2_BANDS
    np.testing.assert_array_equal(synth.wavelengths, nms(s2))
    np.testing.assert_array_equal(
        band_set(4).wavelengths, nms(lookup_bands(["red", "green", "blue", "nir"]))
    )


def test_enmap_table_and_218_band_set():
    table = nms(SENSORS["enmap"].bands)
    assert len(table) == 224
    vnir, swir = table[:91], table[91:]
    assert vnir == sorted(vnir) and swir == sorted(swir)
    assert vnir[0] == pytest.approx(418.4) and vnir[-1] == pytest.approx(993.3)
    assert swir[0] == pytest.approx(902.0) and swir[-1] == pytest.approx(2445.3)
    kept = nms(preset_bands("enmap"))
    dropped = [nm for nm in table if nm not in kept]
    assert len(dropped) == 6
    assert all(1358 <= nm <= 1453 or 1814 <= nm <= 1961 for nm in dropped)
    assert not any(1358 <= nm <= 1453 or 1814 <= nm <= 1961 for nm in kept)


def test_names_in_any_spelling_and_sensor_context():
    assert nms(lookup_bands(["B02", "b3", "B8A", "b04"])) == [490.0, 560.0, 865.0, 665.0]
    landsat = lookup_bands(["SR_B2", "SR_B5", "B7"])  # SR_ makes the list Landsat
    assert nms(landsat) == [482.5, 865.0, 2200.0]
    assert [b.common for b in landsat] == ["blue", "nir08", "swir22"]
    assert nms(lookup_bands(["B5", "B50", "B224"])) == [439.8, 679.7, 2445.3]  # EnMAP
    assert nms(lookup_bands(["red", "NIR", "swir1", "Swir_2", "band_1"])) == [
        665.0,
        842.0,
        1610.0,
        2190.0,
        None,
    ]
    assert nms(lookup_bands(["landsat8:B5", "sentinel2:B5", "enmap:B5"])) == [865.0, 705.0, 439.8]
    assert nms(lookup_bands(["B5", "x"], [None, 1234.0])) == [705.0, 1234.0]
    assert nms(lookup_bands(["B5", "B6"], sensor="landsat8")) == [865.0, 1610.0]


def test_ambiguous_unpadded_names_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="sdrl.bands"):
        bands = lookup_bands(["B2", "B3", "B4", "B8"])
    assert nms(bands) == [490.0, 560.0, 665.0, 842.0]
    assert "B8 are read as Sentinel-2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sdrl.bands"):
        lookup_bands(["B02", "B08"])
    assert caplog.text == ""


def test_given_wavelengths_keep_the_common_name_of_their_band():
    bands = lookup_bands(["B1", "B2", "B5"], [443.0, 482.5, 865.0])  # Landsat's, by value
    assert [b.common for b in bands] == ["coastal", "blue", "nir08"]
    assert lookup_bands(["B2"], [500.0])[0].common is None


def test_parse_band_spec_forms():
    assert names(parse_band_spec("Sentinel2")) == list(S2_BANDS)
    bands = parse_band_spec("B02, landsat8:B5 ,nir,thermal=10900,700,705nm")
    assert names(bands) == ["B02", "landsat8:B5", "nir", "thermal", "700nm", "705nm"]
    assert nms(bands) == [490.0, 865.0, 842.0, 10900.0, 700.0, 705.0]
    assert nms(parse_band_spec("red,mystery")) == [665.0, None]  # partly known: allowed


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("foo,bar", "no known band in 'foo,bar'"),
        ("", "an empty band"),
        ("B02,,B03", "an empty band"),
        ("x=abc", "expected NAME=NM"),
        ("B02,5", "5 nm is not a centre wavelength"),
    ],
)
def test_parse_band_spec_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_band_spec(spec)
