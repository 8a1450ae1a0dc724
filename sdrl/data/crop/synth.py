"""The crop data engine: synthetic H2Crop patches (``sdrl synth --kind crop``).

A patch is a field of parcels (Voronoi cells, stretched along a random direction, with
1-pixel background margins between them). About 20 % of the cells are background (forest,
settlement, water, natural grass: label 0 at every level); every other cell takes a leaf
class drawn uniformly from the taxonomy's root-to-leaf paths. Each parcel's season and
spectra follow its class (:mod:`sdrl.data.crop.signatures`) with its own small shifts
(season timing, density, soil, brightness), plus texture within parcels and sensor noise.

* **Sentinel-2**: 12 monthly composites (January..December) of the 10 bands at 10 m; each
  month is cloudy with probability 0.2 (a bright, high-in-every-band cloud field over
  10–60 % of the patch; composites are not cloud-free).
* **EnMAP**: one cloud-free acquisition between mid-May and mid-August, 218 bands on the
  3× coarser grid: each 30 m pixel is the mean of its 3×3 10 m pixels' spectra, so mixed
  pixels mix their classes by area.
* **Priors**: the previous year's labels on the same parcels: 30 % of crop parcels keep their
  class, the others rotate to another leaf class; background stays background.

Values are reflectance × 10000 as int16, labels uint8. Patch ``i`` depends only on
``(seed, i)`` and the size and taxonomy.

Shape letters: ``T`` = 12 months, ``C`` = 10 Sentinel-2 bands, ``E`` = 218 EnMAP bands, ``L``
levels, ``H``/``W`` rows/columns at 10 m, ``Q`` parcels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdrl.data.crop.signatures import Phenology, Signatures, fractions, signatures
from sdrl.data.crop.taxonomy import Taxonomy, builtin_taxonomy
from sdrl.data.synth.texture import fractal_noise, smooth_noise

__all__ = ["MONTHS", "CropSynthConfig", "SynthPatch", "generate_patch"]

MONTHS = 12
BACKGROUND_SHARE = 0.2
KEEP_CLASS = 0.3
CLOUDY_MONTH = 0.2

# Background cover: (green endmember, other endmember, base endmember, green low/high, other).
_BACKGROUND = (
    ("forest", "vegetation_dry", "soil_wet", 0.70, 0.85, 0.10),
    ("grass", "concrete", "asphalt", 0.10, 0.15, 0.55),
    ("grass", "water_clear", "water_turbid", 0.00, 0.00, 0.70),
    ("grass", "vegetation_dry", "soil_dry", 0.35, 0.70, 0.15),
)
_SOILS = ("soil_dry", "soil_red", "soil_wet")


@dataclass(frozen=True)
class CropSynthConfig:
    """What every patch of a dataset shares.

    Attributes:
        size: Patch side ``H = W`` in 10 m pixels, a multiple of 3.
        seed: Dataset seed (at least 0).
        taxonomy: Classes to draw from; the built-in one when ``None``.
    """

    size: int = 96
    seed: int = 0
    taxonomy: Taxonomy | None = None

    def __post_init__(self) -> None:
        if self.size < 3 or self.size % 3:
            raise ValueError(f"size must be a positive multiple of 3, got {self.size}")
        if self.seed < 0:
            raise ValueError(f"seed must be at least 0, got {self.seed}")
        if max(self.classes.num_classes) > 256:
            raise ValueError(
                f"labels are uint8: at most 255 classes per level, the taxonomy "
                f"{self.classes.source} has {max(self.classes.num_classes) - 1}"
            )

    @property
    def classes(self) -> Taxonomy:
        """The taxonomy in use."""
        return self.taxonomy if self.taxonomy is not None else builtin_taxonomy()


@dataclass
class SynthPatch:
    """One generated patch, as written to its HDF5 file.

    Attributes:
        s2: ``(T, C, H, W)`` int16 reflectance × 10000.
        enmap: ``(E, H/3, W/3)`` int16 reflectance × 10000.
        label: ``(L, H, W)`` uint8 class ids per level (0 = background).
        prior: ``(L, H, W)`` uint8 the previous year's class ids.
        enmap_month: Month of the EnMAP acquisition (0 = January; fractional).
        cloudy: ``(T,)`` bool, months with a cloud field.
    """

    s2: np.ndarray
    enmap: np.ndarray
    label: np.ndarray
    prior: np.ndarray
    enmap_month: float
    cloudy: np.ndarray


def _parcels(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(H, W)`` parcel index per pixel, ``-1`` on the margins between parcels."""
    count = max(4, round((n / 22.0) ** 2 * rng.uniform(0.7, 1.3)))
    angle, stretch = rng.uniform(0, np.pi), rng.uniform(1.0, 2.2)
    seeds = rng.uniform(0, n, (count, 2)).astype(np.float32)
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32) + np.float32(0.5)
    warp = 2.0 * smooth_noise(rng, n, max(2, n // 32))
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    scale = np.float32(stretch)

    def frame(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x * cos + y * sin, (y * cos - x * sin) * scale

    u, v = frame(rows + warp, cols - warp)
    su, sv = frame(seeds[:, 0], seeds[:, 1])
    dist = np.hypot(u[None] - su[:, None, None], v[None] - sv[:, None, None])
    index = dist.argmin(axis=0)
    first = np.take_along_axis(dist, index[None], axis=0)[0]
    np.put_along_axis(dist, index[None], np.inf, axis=0)
    index = index.astype(np.int64)
    index[dist.min(axis=0) - first < 1.0] = -1
    return index


def _seasons(rng: np.random.Generator, base: Phenology, rows: np.ndarray) -> Phenology:
    """Per-parcel seasons: the class's, shifted a little."""
    count = len(rows)
    shift = rng.normal(0.0, 0.25, count)
    return Phenology(
        green_up=base.green_up[rows] + shift,
        senescence=base.senescence[rows] + shift + rng.normal(0.0, 0.15, count),
        harvest=base.harvest[rows] + shift + rng.normal(0.0, 0.2, count),
        low=base.low[rows] * rng.uniform(0.8, 1.2, count),
        high=(base.high[rows] * rng.uniform(0.9, 1.05, count)).clip(0, 1),
    )


def _cover(
    rng: np.random.Generator, sig: Signatures, leaves: np.ndarray, months: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Endmember rows ``(Q, 3)`` and fractions ``(Q, 3, T)`` of every parcel; ``(Q,)`` gain.

    ``leaves`` holds each parcel's leaf row, or ``-1 - k`` for background cover ``k``.
    """
    count, leaf_count = len(leaves), len(sig.dips_nm)
    rows = np.zeros((count, 3), dtype=np.int64)
    mix = np.zeros((count, 3, len(months)), dtype=np.float32)
    crop = leaves >= 0
    if crop.any():
        green, dry = fractions(_seasons(rng, sig.phenology, leaves[crop]), months)
        soils = [sig.material(s) for s in _SOILS]
        rows[crop] = np.stack(
            [leaves[crop], leaves[crop] + leaf_count, rng.choice(soils, int(crop.sum()))], axis=1
        )
        mix[crop] = np.stack([green, dry, 1.0 - green - dry], axis=1)
    for q in np.flatnonzero(~crop):
        green_name, other, base, low, high, share = _BACKGROUND[-1 - leaves[q]]
        rows[q] = [sig.material(green_name), sig.material(other), sig.material(base)]
        season = np.sin(np.pi * (months - 2.5) / 8.0).clip(0, None)
        green = low + (high - low) * season
        mix[q] = np.stack([green, np.full_like(green, share), 1.0 - green - share])
    gain = rng.normal(1.0, 0.04, count).astype(np.float32)
    return rows, mix, gain


def _clouds(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(H, W)`` cloud opacity in 0..1 covering 10–60 % of the patch."""
    field = fractal_noise(rng, n, coarsest=n / 1.5, finest=4.0)
    threshold = np.quantile(field, 1.0 - rng.uniform(0.1, 0.6))
    return np.clip((field - threshold) * 2.5, 0.0, 1.0).astype(np.float32)


def _previous_year(rng: np.random.Generator, leaves: np.ndarray, count: int) -> np.ndarray:
    """Last year's leaf row of every parcel: kept with :data:`KEEP_CLASS`, else rotated."""
    prior = leaves.copy()
    crop = np.flatnonzero(leaves >= 0)
    rotate = crop[rng.random(len(crop)) >= KEEP_CLASS]
    if count > 1:
        step = rng.integers(1, count, len(rotate))
        prior[rotate] = (leaves[rotate] + step) % count
    return prior


def _labels(taxonomy: Taxonomy, parcel: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """``(L, H, W)`` uint8 label maps: each parcel's leaf path, 0s for background."""
    table = np.zeros((len(leaves), taxonomy.levels), dtype=np.uint8)
    crop = leaves >= 0
    table[crop] = taxonomy.paths[leaves[crop]]
    return np.ascontiguousarray(np.moveaxis(table[parcel], -1, 0))


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Sensor noise: triangular (sum of two uniforms) of deviation ``sigma``, float32.

    Five times cheaper than Gaussian draws and as good for this purpose.
    """
    noise = rng.random(shape, dtype=np.float32)
    noise += rng.random(shape, dtype=np.float32)
    noise -= np.float32(1.0)
    noise *= np.float32(sigma * np.sqrt(6.0))
    return noise


def _block_cover(parcel: np.ndarray, weight: np.ndarray, count: int) -> np.ndarray:
    """``(H/3 · W/3, Q)`` share of each parcel in each 3×3 block, pixels weighted by ``weight``.

    ``share @ spectra`` is the mean of the 3×3 pixels' (weighted) spectra of every block.
    """
    n = parcel.shape[0]
    rows, cols = np.divmod(np.arange(n * n), n)
    block = (rows // 3) * (n // 3) + cols // 3
    key = block * count + parcel.reshape(-1) % count  # parcel -1 is the last entry
    share = np.bincount(key, weights=weight.reshape(-1) / 9.0, minlength=(n // 3) ** 2 * count)
    return share.reshape(-1, count).astype(np.float32)


def generate_patch(config: CropSynthConfig, index: int) -> SynthPatch:
    """Generate patch ``index`` of a dataset (module docstring).

    Args:
        config: Size, seed and taxonomy.
        index: Patch index (at least 0); the patch depends only on it and ``config``.

    Returns:
        The :class:`SynthPatch`.
    """
    taxonomy = config.classes
    sig = signatures(taxonomy)
    n = config.size
    layout, look, sky, noise = (
        np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, index]).spawn(4)
    )
    parcel = _parcels(layout, n)
    count = int(parcel.max()) + 1
    leaves = layout.integers(0, len(taxonomy.paths), count)
    background = layout.random(count) < BACKGROUND_SHARE
    leaves[background] = -1 - layout.integers(0, len(_BACKGROUND), int(background.sum()))
    margin = -1 - layout.integers(0, len(_BACKGROUND))
    leaves = np.append(leaves, margin)  # parcel -1 (margins) indexes this last entry
    prior_leaves = _previous_year(layout, leaves, len(taxonomy.paths))

    enmap_month = float(look.uniform(4.5, 7.5))
    months = np.append(np.arange(MONTHS, dtype=np.float64), enmap_month)
    rows, mix, gain = _cover(look, sig, leaves, months)
    texture = 1.0 + 0.04 * fractal_noise(look, n, coarsest=n / 4, finest=2.0)

    # Sentinel-2: (Q, T, C) parcel series, then per pixel.
    series = np.einsum("qkt,qkc->qtc", mix[:, :, :MONTHS], sig.s2[rows]) * gain[:, None, None]
    s2 = series[parcel].transpose(2, 3, 0, 1) * texture  # (T, C, H, W)
    s2 += _noise(noise, s2.shape, 0.004)
    cloudy = sky.random(MONTHS) < CLOUDY_MONTH
    for t in np.flatnonzero(cloudy):
        opacity = _clouds(sky, n)
        bright = sky.uniform(0.45, 0.8) * np.linspace(1.0, 0.7, s2.shape[1], dtype=np.float32)
        s2[t] = (1.0 - opacity) * s2[t] + opacity * bright[:, None, None]

    # EnMAP: per-pixel spectra at the acquisition month, then the mean of each 3x3 block.
    spectra = np.einsum("qk,qke->qe", mix[:, :, MONTHS], sig.enmap[rows]) * gain[:, None]
    cube = (_block_cover(parcel, texture, len(leaves)) @ spectra).T.reshape(-1, n // 3, n // 3)
    cube += _noise(noise, cube.shape, 0.003)

    def stored(values: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(values * 10000.0), -32768, 32767).astype(np.int16)

    return SynthPatch(
        s2=stored(s2),
        enmap=stored(cube),
        label=_labels(taxonomy, parcel, leaves),
        prior=_labels(taxonomy, parcel, prior_leaves),
        enmap_month=enmap_month,
        cloudy=cloudy,
    )
