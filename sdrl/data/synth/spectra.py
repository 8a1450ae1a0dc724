"""Semantic classes, band sets and surface reflectance spectra of the data engine.

Every material is a reflectance curve over wavelength (nm), given as anchor points from
typical laboratory spectra (USGS/ECOSTRESS-like shapes) and sampled at the band centres with
linear interpolation. Images are surface reflectance in 0..1 (stored later as ``× 10000``),
so spectral-index rules (NDVI, NDWI) behave on them as on Sentinel-2 L2A data.

Shape letters: ``C`` bands, ``M`` materials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdrl.bands import COMMON_NAMES, SENSORS

__all__ = [
    "BUILDING",
    "CLASSES",
    "FOREST",
    "MATERIALS",
    "ROAD",
    "SOIL",
    "VEGETATION",
    "WATER",
    "BandSet",
    "band_set",
    "haze_spectrum",
    "material_spectra",
    "shadow_remaining",
    "transmission",
]

CLASSES = ("bare_soil", "vegetation", "forest", "water", "road", "building")
"""Semantic class names; index = class id written in the masks."""

SOIL, VEGETATION, FOREST, WATER, ROAD, BUILDING = range(len(CLASSES))

S2_BANDS = tuple((b.name, b.nm) for b in SENSORS["sentinel2"].bands if b.nm is not None)
"""Sentinel-2 MSI band names and centre wavelengths (nm), in product order (:mod:`sdrl.bands`)."""

RGBN_BANDS = tuple((n, b.nm) for n in ("red", "green", "blue", "nir") if (b := COMMON_NAMES[n]).nm)
"""Red, green, blue and NIR at Sentinel-2's centres (:mod:`sdrl.bands`)."""

# name -> (wavelength anchors nm, reflectance anchors)
# fmt: off
_CURVES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "soil_dry": (
        (400, 500, 600, 700, 800, 1000, 1400, 1600, 1900, 2200, 2500),
        (0.07, 0.11, 0.17, 0.22, 0.26, 0.30, 0.31, 0.36, 0.30, 0.34, 0.30),
    ),
    "soil_red": (
        (400, 500, 550, 600, 700, 850, 1000, 1600, 1900, 2200, 2500),
        (0.05, 0.07, 0.10, 0.18, 0.27, 0.30, 0.32, 0.40, 0.33, 0.36, 0.32),
    ),
    "soil_wet": (
        (400, 500, 600, 700, 800, 1000, 1400, 1600, 1900, 2200, 2500),
        (0.04, 0.06, 0.09, 0.12, 0.14, 0.16, 0.12, 0.16, 0.08, 0.13, 0.10),
    ),
    "crop_green": (
        (400, 450, 500, 550, 600, 650, 680, 700, 720, 740, 780, 900, 970, 1100, 1400, 1650,
         1900, 2200, 2500),
        (0.03, 0.035, 0.05, 0.11, 0.07, 0.045, 0.035, 0.09, 0.24, 0.38, 0.46, 0.48, 0.43, 0.45,
         0.17, 0.29, 0.08, 0.16, 0.07),
    ),
    "grass": (
        (400, 450, 500, 550, 600, 650, 680, 700, 720, 740, 780, 900, 970, 1100, 1400, 1650,
         1900, 2200, 2500),
        (0.04, 0.045, 0.06, 0.12, 0.09, 0.06, 0.05, 0.10, 0.21, 0.31, 0.38, 0.40, 0.37, 0.39,
         0.19, 0.31, 0.10, 0.19, 0.09),
    ),
    "vegetation_dry": (
        (400, 450, 550, 650, 700, 750, 850, 1100, 1400, 1650, 1900, 2200, 2500),
        (0.05, 0.06, 0.10, 0.13, 0.16, 0.22, 0.27, 0.31, 0.25, 0.36, 0.20, 0.29, 0.18),
    ),
    "forest": (
        (400, 450, 500, 550, 600, 650, 680, 700, 720, 740, 780, 900, 970, 1100, 1400, 1650,
         1900, 2200, 2500),
        (0.02, 0.025, 0.035, 0.065, 0.04, 0.028, 0.022, 0.05, 0.16, 0.26, 0.32, 0.34, 0.31,
         0.32, 0.11, 0.17, 0.04, 0.08, 0.03),
    ),
    "water_clear": (
        (400, 450, 500, 550, 600, 650, 700, 750, 800, 900, 1000, 1600, 2500),
        (0.06, 0.065, 0.06, 0.05, 0.03, 0.02, 0.012, 0.008, 0.006, 0.004, 0.003, 0.002, 0.001),
    ),
    "water_turbid": (
        (400, 450, 500, 550, 600, 650, 700, 750, 800, 900, 1000, 1600, 2500),
        (0.06, 0.07, 0.08, 0.10, 0.09, 0.07, 0.05, 0.03, 0.02, 0.01, 0.006, 0.003, 0.002),
    ),
    "asphalt": (
        (400, 500, 600, 800, 1000, 1600, 2200, 2500),
        (0.05, 0.06, 0.07, 0.085, 0.095, 0.12, 0.12, 0.11),
    ),
    "gravel": (
        (400, 500, 600, 800, 1000, 1600, 2200, 2500),
        (0.12, 0.15, 0.18, 0.21, 0.23, 0.27, 0.25, 0.23),
    ),
    "concrete": (
        (400, 500, 600, 700, 1000, 1600, 2200, 2500),
        (0.20, 0.25, 0.28, 0.30, 0.32, 0.34, 0.30, 0.28),
    ),
    "roof_tile": (
        (400, 500, 550, 600, 700, 900, 1100, 1600, 2200, 2500),
        (0.05, 0.06, 0.08, 0.16, 0.27, 0.36, 0.40, 0.45, 0.40, 0.36),
    ),
    "roof_metal": (
        (400, 500, 700, 1000, 1600, 2200, 2500),
        (0.30, 0.33, 0.35, 0.36, 0.38, 0.38, 0.36),
    ),
    "roof_dark": (
        (400, 500, 700, 1000, 1600, 2200, 2500),
        (0.06, 0.065, 0.07, 0.075, 0.08, 0.08, 0.08),
    ),
}
# fmt: on

MATERIALS = tuple(_CURVES)
"""Material names; index = material id used by the scene's surfaces."""


@dataclass(frozen=True)
class BandSet:
    """The bands of a generated image.

    Attributes:
        names: One name per band (``red``/``green``/``blue``/``nir``, Sentinel-2 ``B01``...,
            or ``band_1``...).
        wavelengths: ``(C,)`` centre wavelengths in nm.
    """

    names: tuple[str, ...]
    wavelengths: np.ndarray

    @property
    def count(self) -> int:
        """Number of bands ``C``."""
        return len(self.names)


def band_set(bands: int) -> BandSet:
    """The band names and centre wavelengths used for ``bands`` bands.

    Args:
        bands: 3 → red, green, blue; 4 → red, green, blue, nir; 13 → Sentinel-2 B01..B12 with
            B8A; any other count → evenly spaced from 450 to 2300 nm, named ``band_1``...

    Returns:
        The :class:`BandSet`.
    """
    if bands < 1:
        raise ValueError(f"bands must be at least 1, got {bands}")
    if bands in (3, 4):
        pairs = RGBN_BANDS[:bands]
    elif bands == len(S2_BANDS):
        pairs = S2_BANDS
    else:
        centres = np.linspace(450.0, 2300.0, bands) if bands > 1 else np.array([665.0])
        pairs = tuple((f"band_{i + 1}", float(w)) for i, w in enumerate(centres))
    names = tuple(name for name, _ in pairs)
    return BandSet(names, np.array([w for _, w in pairs], dtype=np.float64))


def material_spectra(wavelengths: np.ndarray) -> np.ndarray:
    """Reflectance of every material at the given wavelengths.

    Args:
        wavelengths: ``(C,)`` band centres in nm.

    Returns:
        ``(M, C)`` float32 reflectance, rows in :data:`MATERIALS` order.
    """
    rows = [np.interp(wavelengths, x, y) for x, y in _CURVES.values()]
    return np.asarray(rows, dtype=np.float32)


def transmission(wavelengths: np.ndarray) -> np.ndarray:
    """Two-way atmospheric transmittance: water-vapour (945, 1375, 1900 nm) absorption.

    Makes Sentinel-2 B09 dimmer and B10 (cirrus) nearly dark, as in real top-of-atmosphere data.

    Args:
        wavelengths: ``(C,)`` band centres in nm.

    Returns:
        ``(C,)`` float32 factors in 0..1.
    """
    w = np.asarray(wavelengths, dtype=np.float64)
    absorbed = (
        0.35 * np.exp(-(((w - 945.0) / 35.0) ** 2))
        + 0.96 * np.exp(-(((w - 1375.0) / 45.0) ** 2))
        + 0.90 * np.exp(-(((w - 1900.0) / 70.0) ** 2))
    )
    return np.clip(1.0 - absorbed, 0.02, 1.0).astype(np.float32)


def haze_spectrum(wavelengths: np.ndarray) -> np.ndarray:
    """Relative path radiance of haze: strongest in the blue, falling as ``(λ / 550)^-1.5``.

    Args:
        wavelengths: ``(C,)`` band centres in nm.

    Returns:
        ``(C,)`` float32, 1 at 550 nm.
    """
    return ((np.asarray(wavelengths, dtype=np.float64) / 550.0) ** -1.5).astype(np.float32)


def shadow_remaining(wavelengths: np.ndarray) -> np.ndarray:
    """Fraction of light left in a cast shadow (diffuse skylight, bluer than direct sun).

    Args:
        wavelengths: ``(C,)`` band centres in nm.

    Returns:
        ``(C,)`` float32 in 0..1 (about 0.4 in the blue, 0.2 in the infrared).
    """
    w = np.asarray(wavelengths, dtype=np.float64)
    return (0.2 + 0.22 * np.exp(-(w - 450.0) / 250.0)).clip(0.2, 0.45).astype(np.float32)
