"""Masks from spectral-index rules for multispectral images (no labels needed).

Classes (ids written into the masks):

====  ==============  =======================================================
id    name            rule (checked in this order; the first that holds wins)
====  ==============  =======================================================
2     ``water``       NDWI = (green − nir) / (green + nir) > ``ndwi_threshold`` (0.0)
1     ``vegetation``  NDVI = (nir − red) / (nir + red) > ``ndvi_threshold`` (0.3)
3     ``built_up``    NDBI = (swir1 − nir) / (swir1 + nir) > ``ndbi_threshold`` (0.0)
0     ``other``       everything else (bare soil, shadow, clouds...)
255   ignore          nodata or non-finite pixels
====  ==============  =======================================================

NDWI is McFeeters' (1996) green/NIR index, whose 0 threshold separates open water; NDVI
above 0.3 is the usual threshold for moderate to dense vegetation (Rouse et al., 1974);
NDBI above 0 marks built-up land (Zha et al., 2003), which it cannot tell apart from bare soil,
so bright bare soil often lands in ``built_up``. Water comes first: vegetated pixels
practically never have a positive NDWI, while shallow water with floating plants can pass the
NDVI threshold. Vegetation precedes built-up because sparse or dry vegetation can have a
positive NDBI.

Without a SWIR band, NDBI cannot be computed: class 3 is then never assigned (the class list
stays the same, so ids are stable across sensors) and built-up pixels fall into ``other``.

Indices are ratios, so any reflectance scaling works (0–1, 0–10000, 8-bit DN) as long as
there is no additive offset: remove Sentinel-2's ``BOA_ADD_OFFSET`` (processing baseline
04.00+) first.

Bands are found by name, case-insensitively (see :data:`BAND_ALIASES`): Sentinel-2
(``B02``...), Landsat 8/9 Collection 2 (``SR_B2``...), Landsat 4–7 TM (``TM1``...) and generic
names (``red``, ``nir``, ``swir1``...), also as a word inside a longer name (``TM4_nir``).
Files without band descriptions have names ``band_1``...: name them (``--band-names``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sdrl.data.samples import IGNORE_INDEX
from sdrl.errors import DataError

__all__ = [
    "BAND_ALIASES",
    "BUILT_UP",
    "INDEX_CLASSES",
    "OTHER",
    "VEGETATION",
    "WATER",
    "find_bands",
    "index_mask",
    "normalized_difference",
]

OTHER, VEGETATION, WATER, BUILT_UP = 0, 1, 2, 3
INDEX_CLASSES = ("other", "vegetation", "water", "built_up")
"""Class names of index masks, index = class id."""

BAND_ALIASES: Mapping[str, tuple[str, ...]] = {
    "blue": ("blue", "b02", "b2", "sr_b2", "tm1"),
    "green": ("green", "b03", "b3", "sr_b3", "tm2"),
    "red": ("red", "b04", "b4", "sr_b4", "tm3"),
    "nir": ("nir", "b08", "b8", "b8a", "sr_b5", "tm4", "nir08", "nir1"),
    "swir1": ("swir1", "b11", "sr_b6", "tm5", "swir16", "swir_1"),
    "swir2": ("swir2", "b12", "sr_b7", "tm7", "swir22", "swir_2"),
}
"""Accepted names per band role (lower case), in order of preference (``B08`` before ``B8A``).

Unpadded ``B2``–``B4`` mean blue/green/red in both Sentinel-2 and Landsat 8; ``B5``–``B7``
are not accepted because the two sensors disagree on them.
"""

_REQUIRED = ("red", "green", "nir")
_OPTIONAL = ("swir1",)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def find_bands(
    band_names: Sequence[str],
    required: Sequence[str] = _REQUIRED,
    optional: Sequence[str] = _OPTIONAL,
    source: str | Path | None = None,
) -> dict[str, int]:
    """Find band roles (``red``, ``nir``...) among band names.

    An exact alias match wins over a match of a word inside a name (``TM4_nir``); names with
    ``edge`` (red-edge bands) never match by word.

    Args:
        band_names: One name per band, in band order.
        required: Roles that must be found.
        optional: Roles returned when found.
        source: The file the names came from, for the error message.

    Returns:
        Role → 0-based band index.

    Raises:
        DataError: A required role is missing; the message lists the names found and the
            names accepted.
    """
    names = [_normalise(n) for n in band_names]
    found: dict[str, int] = {}
    for role in (*required, *optional):
        aliases = BAND_ALIASES[role]
        exact = [(aliases.index(n), i) for i, n in enumerate(names) if n in aliases]
        if exact:
            found[role] = min(exact)[1]
            continue
        for i, name in enumerate(names):
            words = name.split("_")
            if "edge" not in words and any(w in aliases for w in words):
                found[role] = i
                break
    missing = [role for role in required if role not in found]
    if missing:
        accepted = "; ".join(f"{r}: {', '.join(BAND_ALIASES[r])}" for r in missing)
        raise DataError(
            source,
            f"bands named for {', '.join(missing)} (accepted, any case: {accepted})",
            f"band names {list(band_names)}",
            "Name the bands in order with --band-names (e.g. B02,B03,B04,B08)",
        )
    return found


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a − b) / (a + b)`` in float32, 0 where ``a + b`` is 0.

    Args:
        a: ``(H, W)`` band.
        b: ``(H, W)`` band.

    Returns:
        ``(H, W)`` float32 in ``[-1, 1]`` for non-negative inputs.
    """
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    total = a + b
    out = np.zeros(total.shape, dtype=np.float32)
    np.divide(a - b, total, out=out, where=total != 0)
    return out


def index_mask(
    image: np.ndarray,
    band_names: Sequence[str],
    valid: np.ndarray | None = None,
    nodata: float | None = None,
    ndvi_threshold: float = 0.3,
    ndwi_threshold: float = 0.0,
    ndbi_threshold: float = 0.0,
    source: str | Path | None = None,
) -> np.ndarray:
    """Classify pixels into other / vegetation / water / built-up by spectral indices.

    Args:
        image: ``(C, H, W)`` reflectance (any scale without offset).
        band_names: ``C`` band names (see :func:`find_bands`); red, green and NIR are required,
            SWIR-1 enables the built-up class.
        valid: ``(H, W)`` bool, false where the image has no data.
        nodata: Nodata value: pixels where every band equals it are ignored.
        ndvi_threshold: NDVI above which a pixel is vegetation.
        ndwi_threshold: NDWI (McFeeters) above which a pixel is water.
        ndbi_threshold: NDBI above which a pixel is built-up.
        source: The file the image came from, for error messages.

    Returns:
        ``(H, W)`` uint8 class ids (:data:`INDEX_CLASSES`), :data:`IGNORE_INDEX` where invalid.

    Raises:
        DataError: Red, green or NIR cannot be found among the band names.
    """
    if image.ndim != 3 or image.shape[0] != len(band_names):
        raise ValueError(f"image of shape {image.shape} for {len(band_names)} band names")
    bands = find_bands(band_names, source=source)
    red, green, nir = (image[bands[r]] for r in ("red", "green", "nir"))
    ok = np.ones(image.shape[1:], dtype=bool) if valid is None else valid.copy()
    if nodata is not None:
        ok &= ~(np.isnan(image).all(axis=0) if np.isnan(nodata) else (image == nodata).all(axis=0))
    used = [red, green, nir] + ([image[bands["swir1"]]] if "swir1" in bands else [])
    if image.dtype.kind == "f":
        for band in used:
            ok &= np.isfinite(band)
    mask = np.full(image.shape[1:], OTHER, dtype=np.uint8)
    if "swir1" in bands:
        ndbi = normalized_difference(image[bands["swir1"]], nir)
        mask[ndbi > ndbi_threshold] = BUILT_UP
    mask[normalized_difference(nir, red) > ndvi_threshold] = VEGETATION
    mask[normalized_difference(green, nir) > ndwi_threshold] = WATER
    mask[~ok] = IGNORE_INDEX
    return mask
