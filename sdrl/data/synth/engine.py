"""One bitemporal scene: layout, changes, nuisances, misregistration, in a fixed order.

Scene ``i`` of seed ``k`` is drawn from ``np.random.SeedSequence([k, i])`` alone (four child
streams: layout, changes, appearance, sensor noise), so any scene regenerates identically on
its own, in any order or process. The band count only enters the last stream, so the same
seed, size, scale and rates give the same layouts, masks and change labels for 3, 4 or 13 bands.

**Grids.** A scene is drawn on a canvas ``pad`` pixels wider than the tile on every side.
Image A samples the canvas at a random sub-pixel phase around ``(pad, pad)``; image B samples it
at that position plus the misregistration ``shift`` (``max(|dy|, |dx|)`` uniform in
``[min(1, m), m]`` for ``misregistration = m`` px; 0 disables it). Each mask is the canvas
class map read at its image's position rounded to whole pixels, so ``mask_b`` describes the
pixels of B. The change label lies on A's grid: ``change = class₁ ≠ class₂`` at the ground
position of each pixel of A (before any nuisance). Hence
``change == (mask_a != class₂ at A's window)``, and without misregistration
``change == (mask_a != mask_b)``.

Shape letters: ``C`` bands, ``S`` tile side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sdrl.data.synth.change import ChangeRecord, apply_changes
from sdrl.data.synth.render import (
    Conditions,
    Textures,
    draw_conditions,
    render,
    sample_window,
    to_reflectance_uint16,
)
from sdrl.data.synth.scene import make_layout
from sdrl.data.synth.spectra import BandSet, band_set, material_spectra
from sdrl.errors import ConfigError

__all__ = ["SynthConfig", "SynthScene", "generate_scene"]


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the generator (everything that determines a scene besides its index).

    Attributes:
        size: Tile side ``S`` in pixels.
        bands: Number of bands ``C`` (3 RGB, 4 RGB+NIR, 13 Sentinel-2, else evenly spaced).
        seed: Seed of the dataset.
        change_rate: Multiplier of the probabilities of real changes (0 = none).
        misregistration: Largest shift of B against A in pixels (0 = perfectly registered).
        nuisance: Strength of illumination, season, haze, noise and sun changes (0 = none).
        scale: Size factor of objects (parcels ~64 px, buildings 8–22 px at 1).

    Raises:
        ConfigError: A value is out of range (the message names the flag).
    """

    size: int = 256
    bands: int = 3
    seed: int = 0
    change_rate: float = 1.0
    misregistration: float = 2.0
    nuisance: float = 1.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        checks = (
            ("--size", self.size, 16 <= self.size <= 16384, "an integer in 16..16384"),
            ("--bands", self.bands, 1 <= self.bands <= 1024, "an integer in 1..1024"),
            ("--seed", self.seed, self.seed >= 0, "an integer ≥ 0"),
            ("--change-rate", self.change_rate, 0 <= self.change_rate <= 10, "a number in 0..10"),
            (
                "--misregistration",
                self.misregistration,
                0 <= self.misregistration <= 16,
                "pixels in 0..16",
            ),
            ("--nuisance", self.nuisance, 0 <= self.nuisance <= 5, "a number in 0..5"),
            ("--scale", self.scale, 0.1 <= self.scale <= 10, "a number in 0.1..10"),
        )
        for flag, value, ok, expected in checks:
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(f"{flag}: expected {expected}, found {value}")

    @property
    def pad(self) -> int:
        """Canvas margin around the tile, enough for the largest shift plus interpolation."""
        return math.ceil(self.misregistration) + 2


@dataclass(frozen=True)
class SynthScene:
    """One generated scene.

    Attributes:
        image_a: ``(C, S, S)`` uint16 reflectance × 10000 at date 1.
        image_b: ``(C, S, S)`` uint16 at date 2 (misregistered by ``shift``).
        mask_a: ``(S, S)`` uint8 class ids of A's pixels (:data:`~sdrl.data.synth.CLASSES`).
        mask_b: ``(S, S)`` uint8 class ids of B's pixels.
        change: ``(S, S)`` uint8, 1 where the class of the ground under A's pixel changed.
        shift: ``(dy, dx)`` sub-pixel position of B's grid relative to A's, in pixels.
        mask_shift: ``(dy, dx)`` whole-pixel offset between the windows of ``mask_b`` and
            ``mask_a``: ``mask_b[y, x]`` is the date-2 class of A's ground pixel
            ``(y + dy, x + dx)``.
        changes: What changed.
        conditions: The acquisition conditions of A and B.
    """

    image_a: np.ndarray
    image_b: np.ndarray
    mask_a: np.ndarray
    mask_b: np.ndarray
    change: np.ndarray
    shift: tuple[float, float]
    mask_shift: tuple[int, int]
    changes: ChangeRecord
    conditions: tuple[Conditions, Conditions]


@lru_cache(maxsize=16)
def _bands(count: int) -> tuple[BandSet, np.ndarray]:
    bands = band_set(count)
    return bands, material_spectra(bands.wavelengths)


def _draw_shift(rng: np.random.Generator, largest: float) -> tuple[float, float]:
    """A shift whose larger component is uniform in ``[min(1, largest), largest]``."""
    if largest <= 0:
        return 0.0, 0.0
    major = rng.uniform(min(1.0, largest), largest) * rng.choice([-1.0, 1.0])
    minor = rng.uniform(-abs(major), abs(major))
    return (major, minor) if rng.random() < 0.5 else (minor, major)


def _whole(position: float) -> int:
    return math.floor(position + 0.5)


def generate_scene(config: SynthConfig, index: int) -> SynthScene:
    """Generate scene ``index`` of a dataset.

    Args:
        config: Generator parameters.
        index: Scene number (``≥ 0``); with ``config.seed`` it fixes every random draw.

    Returns:
        The :class:`SynthScene`.
    """
    if index < 0:
        raise ValueError(f"scene index must be ≥ 0, got {index}")
    streams = np.random.SeedSequence([config.seed, index]).spawn(4)
    layout_rng, change_rng, look_rng, noise_rng = (np.random.default_rng(s) for s in streams)
    size, pad = config.size, config.pad
    n = size + 2 * pad
    before = make_layout(layout_rng, n, config.scale)
    after, record = apply_changes(change_rng, before, config.change_rate)
    cond_a = draw_conditions(look_rng, config.nuisance)
    cond_b = draw_conditions(look_rng, config.nuisance, (cond_a.sun_azimuth, cond_a.sun_elevation))
    tex_a = Textures.draw(look_rng, n, config.scale)
    tex_b = tex_a.next_date(look_rng, config.scale)
    shift = _draw_shift(look_rng, config.misregistration)
    row_a, col_a = (pad + look_rng.uniform(-0.5, 0.5, 2)).tolist()
    row_b, col_b = row_a + shift[0], col_a + shift[1]

    bands, spectra = _bands(config.bands)
    canvas = render(before, tex_a, cond_a, spectra, bands.wavelengths)
    image_a = to_reflectance_uint16(
        sample_window(canvas, row_a, col_a, size), cond_a.noise, noise_rng
    )
    canvas = render(after, tex_b, cond_b, spectra, bands.wavelengths)
    image_b = to_reflectance_uint16(
        sample_window(canvas, row_b, col_b, size), cond_b.noise, noise_rng
    )

    ra, ca, rb, cb = _whole(row_a), _whole(col_a), _whole(row_b), _whole(col_b)
    window_a = (slice(ra, ra + size), slice(ca, ca + size))
    mask_a = before.classes[window_a].copy()
    mask_b = after.classes[rb : rb + size, cb : cb + size].copy()
    change = (after.classes[window_a] != mask_a).astype(np.uint8)
    return SynthScene(
        image_a=image_a,
        image_b=image_b,
        mask_a=mask_a,
        mask_b=mask_b,
        change=change,
        shift=(float(shift[0]), float(shift[1])),
        mask_shift=(rb - ra, cb - ca),
        changes=record,
        conditions=(cond_a, cond_b),
    )
