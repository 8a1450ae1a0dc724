"""How each crop class looks to the crop data engine: phenology and spectra.

A parcel's reflectance in month ``t`` is a mixture of three endmembers,
``g(t)·green + d(t)·other + (1 − g(t) − d(t))·base``: for a crop, green canopy, senescent
canopy and bare soil. The fractions follow a double-logistic season
(:func:`fractions`): green-up, senescence, harvest. Endmembers are spectra on a 1 nm grid
(400–2500 nm) seen through each sensor's band responses: Sentinel-2 bands as boxes of their
nominal widths (ESA's S2 User Handbook), EnMAP bands as Gaussians of 6.5 nm (VNIR) or 10 nm
(SWIR) full width.

**What tells classes apart.** Phenology and the canopy spectrum belong to the level-3 class:
leaf classes under one level-3 parent (siblings, e.g. winter wheat and winter barley) share
them, so Sentinel-2 sees them alike. Each leaf has its own narrow absorption feature (a
Gaussian dip, σ = 5 nm, 25–35 % deep, in green and senescent canopy) centred at a wavelength
that no Sentinel-2 band covers (at least 20 nm from every band edge), different for every
sibling: the 10 broad bands cannot see it, EnMAP resolves it. Class appearance depends only
on the taxonomy, not on the dataset seed, so two datasets of one taxonomy agree.

Shape letters: ``P`` leaf classes (taxonomy paths), ``C`` Sentinel-2 bands, ``E`` EnMAP
bands, ``N`` endmembers, ``T`` months.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sdrl.bands import preset_bands
from sdrl.data.crop.taxonomy import Taxonomy
from sdrl.data.synth.spectra import MATERIALS, material_spectra

__all__ = [
    "DIP_CENTRES_NM",
    "S2_WIDTHS_NM",
    "Phenology",
    "Signatures",
    "fractions",
    "signatures",
]

GRID_NM = np.arange(400.0, 2501.0, 1.0)
"""The 1 nm wavelength grid of the endmember spectra."""

S2_WIDTHS_NM = {
    "B02": 66.0, "B03": 36.0, "B04": 31.0, "B05": 15.0, "B06": 15.0,
    "B07": 20.0, "B08": 106.0, "B8A": 21.0, "B11": 91.0, "B12": 175.0,
}  # fmt: skip
"""Nominal Sentinel-2A bandwidths in nm (ESA Sentinel-2 User Handbook)."""

DIP_CENTRES_NM = (
    425.0, 435.0, 605.0, 615.0, 625.0, 935.0, 965.0, 995.0, 1025.0, 1055.0, 1085.0, 1115.0,
    1145.0, 1175.0, 1205.0, 1235.0, 1265.0, 1295.0, 1325.0, 1480.0, 1510.0, 1540.0, 1690.0,
    1720.0, 1750.0, 1990.0, 2020.0, 2050.0, 2080.0, 2300.0, 2330.0, 2360.0, 2390.0, 2420.0,
)  # fmt: skip
"""Centres of the leaf-specific absorption features: between Sentinel-2's bands, on EnMAP's."""
DIP_SIGMA_NM = 5.0
_WORLD = 20250601  # seed of class appearance: fixed, so that every dataset agrees

# Phenology of known level-3 classes by name: green-up, senescence, harvest (month index,
# 0 = January), lowest and highest green fraction.
_KNOWN = {
    "winter_cereals": (2.3, 5.4, 6.7, 0.20, 0.90),
    "spring_cereals": (3.8, 6.2, 7.4, 0.00, 0.85),
    "maize": (5.2, 8.4, 9.4, 0.00, 0.92),
    "rapeseed": (1.8, 5.0, 6.4, 0.30, 0.85),
    "sunflower": (4.8, 7.6, 8.7, 0.00, 0.80),
    "meadow": (2.5, 9.5, 11.5, 0.45, 0.90),
    "temporary_grass": (2.8, 8.5, 10.5, 0.30, 0.85),
    "vineyard": (4.3, 8.8, 10.0, 0.08, 0.45),
}


@dataclass(frozen=True)
class Phenology:
    """Season parameters, one row per class (or parcel).

    Attributes:
        green_up: ``(P,)`` month of half green-up.
        senescence: ``(P,)`` month of half senescence.
        harvest: ``(P,)`` month the senescent canopy is half removed.
        low: ``(P,)`` green fraction outside the season.
        high: ``(P,)`` green fraction at the peak.
    """

    green_up: np.ndarray
    senescence: np.ndarray
    harvest: np.ndarray
    low: np.ndarray
    high: np.ndarray


def fractions(p: Phenology, months: np.ndarray, rate: float = 0.45) -> tuple[np.ndarray, ...]:
    """Green and senescent fractions of a double-logistic season.

    Args:
        p: ``P`` rows of season parameters.
        months: ``(T,)`` month indexes (0 = January; fractions allowed).
        rate: Logistic width in months.

    Returns:
        ``(green, senescent)``: two ``(P, T)`` float32 arrays, their sum at most 1.
    """

    def step(centre: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(months[None, :] - centre[:, None]) / rate))

    season = step(p.green_up) - step(p.senescence)
    green = p.low[:, None] + (p.high - p.low)[:, None] * season
    dry = 0.85 * p.high[:, None] * (step(p.senescence) - step(p.harvest)).clip(0, None)
    dry = np.minimum(dry, 1.0 - green)
    return green.astype(np.float32), dry.astype(np.float32)


@dataclass(frozen=True)
class Signatures:
    """Endmembers and class seasons of a taxonomy.

    Endmember rows: ``0..P-1`` green canopy of each leaf class, ``P..2P-1`` its senescent
    canopy, then the materials of :data:`sdrl.data.synth.spectra.MATERIALS` (soils,
    forest, water, asphalt...), at row ``2P + MATERIALS.index(name)``.

    Attributes:
        s2: ``(N, C)`` float32 endmember reflectance in the Sentinel-2 bands.
        enmap: ``(N, E)`` float32 endmember reflectance in the EnMAP bands.
        phenology: The season of each leaf class (``P`` rows).
        dips_nm: ``(P,)`` centre of each leaf class's absorption feature.
    """

    s2: np.ndarray
    enmap: np.ndarray
    phenology: Phenology
    dips_nm: np.ndarray

    def material(self, name: str) -> int:
        """Endmember row of a material (``soil_dry``, ``forest``...)."""
        return len(self.dips_nm) * 2 + MATERIALS.index(name)


def _responses() -> tuple[np.ndarray, np.ndarray]:
    """``(C, G)`` and ``(E, G)`` band responses on :data:`GRID_NM`, each row summing to 1."""
    s2_rows = []
    for band in preset_bands("sentinel2-10"):
        assert band.nm is not None
        half = S2_WIDTHS_NM[band.name] / 2
        s2_rows.append((np.abs(GRID_NM - band.nm) <= half).astype(np.float64))
    centres = np.array([b.nm for b in preset_bands("enmap")], dtype=np.float64)
    sigma = np.where(centres < 1000.0, 6.5, 10.0)[:, None] / 2.3548
    enmap = np.exp(-0.5 * ((GRID_NM[None, :] - centres[:, None]) / sigma) ** 2)
    s2 = np.asarray(s2_rows)
    return s2 / s2.sum(1, keepdims=True), enmap / enmap.sum(1, keepdims=True)


@lru_cache(maxsize=4)
def signatures(taxonomy: Taxonomy) -> Signatures:
    """The appearance of every leaf class of a taxonomy (module docstring).

    Args:
        taxonomy: The taxonomy (at least 3 levels use the level-3 parent; fewer levels use
            the parent one level up, or the class itself for one level).

    Returns:
        The :class:`Signatures`, computed once per taxonomy.
    """
    paths = taxonomy.paths
    count = len(paths)
    group_level = min(2, max(taxonomy.levels - 2, 0))  # the level-3 parent (0-based 2)
    groups = paths[:, group_level] if taxonomy.levels > 1 else paths[:, 0]
    curves = material_spectra(GRID_NM).astype(np.float64)
    green_ref, grass, dry_ref = (
        curves[MATERIALS.index(n)] for n in ("crop_green", "grass", "vegetation_dry")
    )
    nir, swir = GRID_NM > 720.0, GRID_NM > 1300.0
    season = np.zeros((count, 5))
    green = np.zeros((count, len(GRID_NM)))
    dry = np.zeros_like(green)
    dips = np.zeros(count)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        name = taxonomy.names[group_level][group - 1] if taxonomy.levels > 1 else ""
        rng = np.random.default_rng([_WORLD, group_level, int(group)])
        if name in _KNOWN:
            params = np.array(_KNOWN[name])
        else:
            start = rng.uniform(1.5, 5.5)
            end = start + rng.uniform(2.5, 5.0)
            params = np.array(
                [start, end, end + rng.uniform(0.8, 1.6), rng.uniform(0.0, 0.3),
                 rng.uniform(0.6, 0.92)]
            )  # fmt: skip
        mix = rng.uniform(0.3, 1.0)
        canopy = mix * green_ref + (1 - mix) * grass
        canopy = canopy * np.where(nir, rng.uniform(0.85, 1.15), 1.0)
        canopy = canopy * np.where(swir, rng.uniform(0.85, 1.15), 1.0)
        litter = dry_ref * rng.uniform(0.85, 1.15)
        offset = int(rng.integers(len(DIP_CENTRES_NM)))
        for j, member in enumerate(members):
            dips[member] = DIP_CENTRES_NM[(offset + 7 * j) % len(DIP_CENTRES_NM)]
            depth = 0.25 + 0.1 * np.random.default_rng([_WORLD, 9, int(member)]).random()
            feature = 1.0 - depth * np.exp(-0.5 * ((GRID_NM - dips[member]) / DIP_SIGMA_NM) ** 2)
            green[member], dry[member] = canopy * feature, litter * feature
            season[member] = params
    s2_response, enmap_response = _responses()
    table = np.concatenate([green, dry, curves])
    phenology = Phenology(*(season[:, i].copy() for i in range(5)))
    return Signatures(
        s2=(table @ s2_response.T).astype(np.float32),
        enmap=(table @ enmap_response.T).astype(np.float32),
        phenology=phenology,
        dips_nm=dips,
    )
