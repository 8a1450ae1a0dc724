"""Band tables: the names and centre wavelengths of the sensors sdrl knows, one place for all.

Every band of a table has a name (as the sensor's products spell it), a centre wavelength in nm
and, where the band has a standard role, a *common name* (STAC ``eo`` style: ``blue``, ``nir08``,
``swir16``...) that marks the same spectral band on another sensor. The data engine
(:mod:`sdrl.data.synth.spectra`), ``sdrl prep oscd`` and the band re-mapping of ``sdrl export``
and of ``--init``/``--weights`` (:mod:`sdrl.models.band_mapping`) all read these tables.

=================  ======  ================================================================
preset             bands   what
=================  ======  ================================================================
``rgb``            3       red, green, blue (torchvision's order) at Sentinel-2's B04/B03/B02
``sentinel2``      13      Sentinel-2 MSI B01..B12 with B8A, product order
``sentinel2-10``   10      B02 B03 B04 B05 B06 B07 B08 B8A B11 B12 (the 10 m and 20 m bands)
``landsat8``       7       Landsat 8/9 OLI B1..B7 (Collection 2 Level-2 surface reflectance);
                           ``landsat9`` is the same set
``enmap``          218     EnMAP HSI B1..B224 without B133-B135 and B164-B166
=================  ======  ================================================================

Sources and approximations:

* **Sentinel-2 MSI**: the nominal central wavelengths of ESA's Sentinel-2 User Handbook (the
  values most tools use: B01 443, B02 490, B03 560, B04 665, B05 705, B06 740, B07 783, B08 842,
  B8A 865, B09 945, B10 1375, B11 1610, B12 2190 nm). The measured centres of the S2A and S2B
  spectral response functions (ESA document COPE-GSEG-EOPG-TN-15-0007) differ from them by up
  to about 10 nm (B08: 833 nm; B12: 2202 nm on S2A, 2186 nm on S2B).
* **Landsat 8/9 OLI**: midpoints of the band limits in USGS's Landsat 8 and Landsat 9 Data
  Users Handbooks (OLI and OLI-2 share them): B1 433-453, B2 450-515, B3 525-600, B4 630-680,
  B5 845-885, B6 1560-1660, B7 2100-2300, B8 500-680 (panchromatic), B9 1360-1390 nm (cirrus).
  The midpoint of a band's limits is within a few nm of its response-weighted centre. The
  thermal TIRS bands (B10, B11) are not reflectance bands and are left out.
* **EnMAP HSI**: the nominal centres of the 224 bands of the L1B/L1C/L2A products (91 VNIR
  bands 418-993 nm, 133 SWIR bands 902-2445 nm; the two detectors overlap at 900-1000 nm) from
  DLR's table ``EnMAP_Spectral_Bands_update.xlsx``, as torchgeo's ``EnMAP`` dataset carries
  them, rounded to 0.1 nm. The centres of a given scene differ slightly (spectral smile and
  recalibration, typically below 1 nm); the product metadata has the exact ones. The **218-band
  set** (H2Crop's EnMAP cubes) is the 224 bands minus six: H2Crop does not list which it drops.
  EnMAP L2A products fill six bands with nodata, and exactly six band centres fall in the
  opaque water-vapour windows 1358-1453 nm and 1814-1961 nm (B133-B135 at 1367-1390 nm,
  B164-B166 at 1939-1958 nm); that these are H2Crop's six is our inference, not a published
  list. If you know the exact centres of your cube, give them in nm (``--bands 418.4,424.0,...``).
* **RGB**: the three colour bands of aerial and VHR images (LEVIR-CD, WHU-CD) have no single set
  of centres; they take Sentinel-2's B04/B03/B02, as do the common names below.

Names are matched case-insensitively, ignoring punctuation: ``B02``, ``b2``, ``SR_B2``,
``B8A``, ``red``, ``nir``, ``swir16``/``swir1``. Unpadded ``B1``-``B12`` mean different bands in
Sentinel-2, Landsat and EnMAP: a list is read as Landsat when a name has the ``SR_`` prefix, as
Sentinel-2 when a name is zero-padded (``B02``) or ``B8A``, as EnMAP when a number exceeds 13,
and otherwise as Sentinel-2, with a warning when another table would read it differently.
``sensor:name`` (``landsat8:B5``) names one band of one table; ``name=nm`` gives a wavelength.
Common names take Sentinel-2's centres (``red`` 665, ``nir`` 842, ``nir08`` 865...).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "COMMON_NAMES",
    "PRESETS",
    "SENSORS",
    "Band",
    "Sensor",
    "lookup_bands",
    "parse_band_spec",
    "preset_bands",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Band:
    """One band: its name, centre wavelength and common name.

    Attributes:
        name: The name as the product (or the user) spells it.
        nm: Centre wavelength in nm; ``None`` where unknown.
        common: Common name of the spectral band (``blue``, ``nir08``...), shared by the same
            band on other sensors; ``None`` where it has none.
    """

    name: str
    nm: float | None
    common: str | None = None


@dataclass(frozen=True)
class Sensor:
    """A sensor's band table.

    Attributes:
        key: Short name (``sentinel2``).
        title: Name in words.
        bands: Every band of the table, in product order.
    """

    key: str
    title: str
    bands: tuple[Band, ...]

    def band(self, name: str) -> Band | None:
        """The band called ``name`` (any accepted spelling), or ``None``."""
        return _ALIASES[self.key].get(_normalise(name))


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


# fmt: off
_S2 = (
    ("B01", 443.0, "coastal"), ("B02", 490.0, "blue"), ("B03", 560.0, "green"),
    ("B04", 665.0, "red"), ("B05", 705.0, "rededge1"), ("B06", 740.0, "rededge2"),
    ("B07", 783.0, "rededge3"), ("B08", 842.0, "nir"), ("B8A", 865.0, "nir08"),
    ("B09", 945.0, "nir09"), ("B10", 1375.0, "cirrus"), ("B11", 1610.0, "swir16"),
    ("B12", 2190.0, "swir22"),
)
_LANDSAT = (
    ("B1", 443.0, "coastal"), ("B2", 482.5, "blue"), ("B3", 562.5, "green"),
    ("B4", 655.0, "red"), ("B5", 865.0, "nir08"), ("B6", 1610.0, "swir16"),
    ("B7", 2200.0, "swir22"), ("B8", 590.0, "pan"), ("B9", 1375.0, "cirrus"),
)
_ENMAP_NM = (
    418.4, 424.0, 429.5, 434.7, 439.8, 444.7, 449.5, 454.3, 459.0, 463.7,
    468.4, 473.1, 477.7, 482.4, 487.1, 491.8, 496.5, 501.2, 506.0, 510.8,
    515.7, 520.6, 525.5, 530.4, 535.4, 540.5, 545.6, 550.7, 555.9, 561.1,
    566.4, 571.8, 577.2, 582.6, 588.2, 593.8, 599.4, 605.2, 611.0, 616.9,
    622.9, 629.0, 635.1, 641.3, 647.5, 653.8, 660.2, 666.6, 673.1, 679.7,
    686.3, 693.0, 699.8, 706.6, 713.5, 720.5, 727.5, 734.7, 741.8, 749.1,
    756.4, 763.7, 771.1, 778.6, 786.1, 793.6, 801.2, 808.9, 816.6, 824.4,
    832.1, 840.0, 847.8, 855.8, 863.7, 871.7, 879.7, 887.7, 895.8, 903.9,
    912.0, 920.1, 928.2, 936.3, 944.5, 952.6, 960.7, 968.9, 977.0, 985.2,
    993.3, 902.0, 911.6, 921.3, 931.2, 941.2, 951.4, 961.6, 972.0, 982.5,
    993.1, 1003.9, 1014.7, 1025.7, 1036.7, 1047.8, 1059.1, 1070.4, 1081.8, 1093.3,
    1104.8, 1116.4, 1128.1, 1139.8, 1151.6, 1163.4, 1175.3, 1187.2, 1199.1, 1211.0,
    1223.0, 1235.0, 1246.9, 1258.9, 1270.9, 1282.9, 1294.9, 1306.9, 1318.9, 1330.9,
    1342.8, 1354.8, 1366.7, 1378.6, 1390.5, 1461.1, 1472.7, 1484.3, 1495.9, 1507.4,
    1518.9, 1530.3, 1541.7, 1553.0, 1564.3, 1575.5, 1586.8, 1597.9, 1609.0, 1620.1,
    1631.1, 1642.1, 1653.0, 1663.9, 1674.7, 1685.5, 1696.2, 1706.9, 1717.5, 1728.1,
    1738.6, 1749.1, 1759.5, 1939.1, 1948.7, 1958.2, 1967.7, 1977.1, 1986.5, 1995.8,
    2005.1, 2014.3, 2023.5, 2032.7, 2041.8, 2050.9, 2060.0, 2069.0, 2077.9, 2086.9,
    2095.7, 2104.6, 2113.4, 2122.2, 2130.9, 2139.6, 2148.3, 2156.9, 2165.5, 2174.0,
    2182.5, 2191.0, 2199.5, 2207.9, 2216.2, 2224.6, 2232.9, 2241.2, 2249.4, 2257.6,
    2265.8, 2273.9, 2282.0, 2290.1, 2298.2, 2306.2, 2314.2, 2322.1, 2330.1, 2337.9,
    2345.8, 2353.6, 2361.4, 2369.2, 2376.9, 2384.7, 2392.3, 2400.0, 2407.6, 2415.2,
    2422.8, 2430.3, 2437.8, 2445.3,
)
# fmt: on

SENSORS: Mapping[str, Sensor] = {
    "rgb": Sensor(
        "rgb",
        "RGB",
        (Band("red", 665.0, "red"), Band("green", 560.0, "green"), Band("blue", 490.0, "blue")),
    ),
    "sentinel2": Sensor("sentinel2", "Sentinel-2 MSI", tuple(Band(*b) for b in _S2)),
    "landsat8": Sensor("landsat8", "Landsat 8/9 OLI", tuple(Band(*b) for b in _LANDSAT)),
    "enmap": Sensor(
        "enmap", "EnMAP HSI", tuple(Band(f"B{i + 1}", nm) for i, nm in enumerate(_ENMAP_NM))
    ),
}
"""Every band table, by key."""

_ENMAP_DROPPED = (133, 134, 135, 164, 165, 166)
PRESETS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "rgb": ("rgb", ("red", "green", "blue")),
    "sentinel2": ("sentinel2", tuple(b[0] for b in _S2)),
    "sentinel2-10": (
        "sentinel2",
        ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
    ),
    "landsat8": ("landsat8", tuple(f"B{i}" for i in range(1, 8))),
    "landsat9": ("landsat8", tuple(f"B{i}" for i in range(1, 8))),
    "enmap": ("enmap", tuple(f"B{i}" for i in range(1, 225) if i not in _ENMAP_DROPPED)),
}
"""Band sets by name (``--bands``): the table they come from and their band names, in order."""

COMMON_NAMES: Mapping[str, Band] = {
    **{b.common: b for b in SENSORS["sentinel2"].bands if b.common},
    "pan": SENSORS["landsat8"].bands[7],
}
"""Common names (and the band giving their centre): Sentinel-2's, and Landsat's ``pan``."""
_COMMON_ALIASES = {
    "swir1": "swir16",
    "swir_1": "swir16",
    "swir2": "swir22",
    "swir_2": "swir22",
    "red_edge_1": "rededge1",
    "red_edge_2": "rededge2",
    "red_edge_3": "rededge3",
    "nir_narrow": "nir08",
}


def _aliases(sensor: Sensor) -> dict[str, Band]:
    table: dict[str, Band] = {}
    for band in sensor.bands:
        name = _normalise(band.name)
        spellings = {name}
        number = re.fullmatch(r"b0*(\d+)(a?)", name)
        if number:
            digits, suffix = number.groups()
            spellings.add(f"b{int(digits)}{suffix}")
            if sensor.key == "sentinel2":
                spellings.add(f"b{int(digits):02d}{suffix}")
            if sensor.key == "landsat8":
                spellings.add(f"sr_b{digits}")
        for spelling in spellings:
            table.setdefault(spelling, band)
    return table


_ALIASES = {key: _aliases(sensor) for key, sensor in SENSORS.items()}
_ORDER = ("sentinel2", "landsat8", "enmap")
_SENSOR_ALIASES = {"s2": "sentinel2", "landsat": "landsat8", "landsat9": "landsat8"}


def preset_bands(key: str) -> list[Band]:
    """The bands of a preset (:data:`PRESETS`), in order.

    Raises:
        ValueError: An unknown preset (the message lists them).
    """
    if key.lower() not in PRESETS:
        raise ValueError(f"unknown band set {key!r}; known: {', '.join(PRESETS)}")
    sensor, names = PRESETS[key.lower()]
    return [_must(SENSORS[sensor].band(name)) for name in names]


def _must(band: Band | None) -> Band:
    assert band is not None  # the presets name bands of their own table
    return band


def _common(name: str) -> Band | None:
    key = _normalise(name)
    band = COMMON_NAMES.get(_COMMON_ALIASES.get(key, key))
    return Band(name, band.nm, band.common) if band is not None else None


def _context(names: Sequence[str]) -> str:
    """The table that unqualified ``B<n>`` names of a list belong to (module docstring)."""
    normal = [_normalise(n) for n in names]
    if any(re.fullmatch(r"sr_b\d+", n) for n in normal):
        return "landsat8"
    if any(re.fullmatch(r"b0\d|b8a|b08a", n) for n in normal):
        return "sentinel2"
    numbers = [int(m.group(1)) for n in normal if (m := re.fullmatch(r"b(\d+)", n))]
    if any(n > 13 for n in numbers):
        return "enmap"
    return "sentinel2"


def lookup_bands(
    names: Sequence[str],
    wavelengths: Sequence[float | None] | None = None,
    sensor: str | None = None,
) -> list[Band]:
    """The bands of a list of names, with their centre wavelengths where known.

    A wavelength given in ``wavelengths`` wins; otherwise a ``sensor:name`` prefix, the table of
    ``sensor`` (or the one the list's names point to, see the module docstring), then the common
    names are tried. A name found nowhere gets ``nm=None``.

    Args:
        names: ``C`` band names.
        wavelengths: ``C`` known centres in nm (``None`` entries where unknown), or ``None``.
        sensor: A key of :data:`SENSORS` for unqualified names; ``None`` infers it.

    Returns:
        ``C`` bands, named as given.
    """
    if wavelengths is not None and len(wavelengths) != len(names):
        raise ValueError(f"{len(wavelengths)} wavelengths for {len(names)} band names")
    context = sensor or _context(names)
    if context not in SENSORS:
        raise ValueError(f"unknown sensor {context!r}; known: {', '.join(SENSORS)}")
    out: list[Band] = []
    ambiguous: list[str] = []
    for i, name in enumerate(names):
        given = wavelengths[i] if wavelengths is not None else None
        if given is not None:
            out.append(Band(name, float(given), _common_at(name, float(given), context)))
            continue
        found = _find(name, context)
        if found is None:
            out.append(Band(name, None))
            continue
        out.append(Band(name, found.nm, found.common))
        if sensor is None and ":" not in name and _ambiguous(name, found, context):
            ambiguous.append(name)
    if ambiguous:
        log.warning(
            "band names %s are read as %s (%s nm); name the sensor (landsat8:B5) or give "
            "wavelengths in nm if they are another sensor's",
            ", ".join(ambiguous),
            SENSORS[context].title,
            ", ".join(f"{b.nm:g}" for b in out if b.name in ambiguous and b.nm is not None),
        )
    return out


def _find(name: str, context: str) -> Band | None:
    if ":" in name:
        key, _, rest = name.partition(":")
        key = _normalise(key).replace("_", "")
        table = SENSORS.get(_SENSOR_ALIASES.get(key, key))
        return table.band(rest) if table is not None else None
    return SENSORS[context].band(name) or _common(name)


def _common_at(name: str, nm: float, context: str) -> str | None:
    """The common name of a band called ``name`` at ``nm`` (within 1 nm) in any table."""
    for key in dict.fromkeys((context, *_ORDER)):
        band = _find(name, key)
        if band is not None and band.nm is not None and abs(band.nm - nm) <= 1.0:
            return band.common
    return None


def _ambiguous(name: str, found: Band, context: str) -> bool:
    """Whether Sentinel-2 and Landsat read ``name`` as bands more than 10 nm apart."""
    if context not in _ORDER[:2]:
        return False
    other = SENSORS[_ORDER[1] if context == _ORDER[0] else _ORDER[0]].band(name)
    return other is not None and other.nm is not None and abs(other.nm - (found.nm or 0)) > 10


def parse_band_spec(spec: str) -> list[Band]:
    """The bands of a ``--bands`` value.

    Args:
        spec: A preset (:data:`PRESETS`: ``rgb``, ``sentinel2``, ``sentinel2-10``, ``landsat8``,
            ``enmap``), or a comma-separated list whose items are band names (``B02``,
            ``landsat8:B5``, ``nir``), centre wavelengths in nm (``842``) or both
            (``thermal=10900``).

    Returns:
        The bands, in order; a band given by wavelength alone is named ``<nm>nm``.

    Raises:
        ValueError: An empty list, a malformed item, or a list in which no band has a known
            wavelength.
    """
    text = spec.strip()
    if text.lower() in PRESETS:
        return preset_bands(text)
    items = [item.strip() for item in text.split(",")]
    if not text or any(not item for item in items):
        raise ValueError(f"an empty band in {spec!r}")
    names: list[str] = []
    given: list[float | None] = []
    for item in items:
        name, sep, value = item.partition("=")
        number = _number(value if sep else item)
        if sep and number is None:
            raise ValueError(f"{item!r}: expected NAME=NM with NM a wavelength in nm")
        names.append(name.strip() if sep else (f"{number:g}nm" if number is not None else item))
        given.append(number)
    for number in given:
        if number is not None and not 100.0 <= number <= 100000.0:
            raise ValueError(f"{number:g} nm is not a centre wavelength (100 to 100000 nm)")
    bands = lookup_bands(names, given)
    if not any(b.nm is not None for b in bands):
        presets = ", ".join(PRESETS)
        raise ValueError(
            f"no known band in {spec!r}: name bands of a table (B02, landsat8:B5, red, nir...), "
            f"give centre wavelengths in nm (842 or name=842), or use a preset ({presets})"
        )
    return bands


def _number(text: str) -> float | None:
    try:
        return float(text.strip().removesuffix("nm"))
    except ValueError:
        return None
