"""Rendering a layout to a multispectral image, with the nuisances of an acquisition date.

Per pixel: the spectra of its object's primary and secondary materials, mixed by a
class-specific texture (crop rows, moisture patches, tree crowns, turbidity, roof slopes),
times a brightness texture; then the date's conditions: seasonal browning of vegetation,
cast shadows of buildings and trees for the date's sun, atmospheric transmittance,
illumination gain and offset, spatially smooth haze; finally the sensor's sub-pixel sampling
grid (which carries the misregistration) and noise.

Shape letters: ``C`` bands, ``N`` canvas side, ``S`` output side, ``M`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sdrl.data.synth.scene import Layout
from sdrl.data.synth.spectra import (
    CLASSES,
    MATERIALS,
    haze_spectrum,
    shadow_remaining,
    transmission,
)
from sdrl.data.synth.texture import fractal_noise

__all__ = [
    "Conditions",
    "Textures",
    "cast_shadows",
    "draw_conditions",
    "render",
    "sample_window",
    "to_reflectance_uint16",
]

# per class: constant, smooth, rough, fine weights of the primary→secondary mixing fraction
_MIX = np.array(
    [
        [0.35, 0.25, 0.08, 0.00],  # bare_soil: wet patches
        [0.00, 0.05, 0.10, 0.05],  # vegetation: soil between plants (plus 1 − cover, rows)
        [0.35, 0.05, 0.05, 0.30],  # forest: crown shadows
        [0.30, 0.25, 0.00, 0.00],  # water: turbidity
        [0.15, 0.00, 0.10, 0.05],  # road: wear
        [0.00, 0.00, 0.00, 0.03],  # building: flat or gable roof (plus gable · slope)
    ],
    dtype=np.float32,
)
# per class: amplitude of the multiplicative brightness texture
_GRAIN = np.array([0.07, 0.06, 0.10, 0.02, 0.04, 0.03], dtype=np.float32)
assert len(_MIX) == len(_GRAIN) == len(CLASSES)
_DRY = MATERIALS.index("vegetation_dry")


@lru_cache(maxsize=8)
def _columns(n: int) -> np.ndarray:
    """``(1, N)`` float32 column coordinates (transpose for rows), read-only."""
    columns = np.arange(n, dtype=np.float32)[None, :]
    columns.setflags(write=False)
    return columns


@dataclass(frozen=True)
class Conditions:
    """Acquisition conditions of one date (all nuisances: none of them is a change).

    Attributes:
        gain: Overall illumination factor.
        gain_tilt: Spectral tilt of the illumination per 1000 nm.
        offset: Additive reflectance offset (calibration, adjacency).
        season: Browning of vegetation, 0 = fully green.
        haze: Haze path reflectance at 550 nm (0 = clear).
        noise: Standard deviation of the sensor noise (reflectance).
        sun_azimuth: Sun azimuth, radians clockwise from north (up).
        sun_elevation: Sun elevation, radians.
    """

    gain: float = 1.0
    gain_tilt: float = 0.0
    offset: float = 0.0
    season: float = 0.0
    haze: float = 0.0
    noise: float = 0.0
    sun_azimuth: float = np.pi
    sun_elevation: float = np.pi / 4


def draw_conditions(
    rng: np.random.Generator, strength: float, sun: tuple[float, float] | None = None
) -> Conditions:
    """Draw the conditions of one date.

    Args:
        rng: Random generator (scalar draws only).
        strength: Nuisance strength; 0 gives neutral conditions (and ``sun`` unchanged).
        sun: ``(azimuth, elevation)`` of the other date; this date's sun differs from it by
            20–70° of azimuth × ``strength``. A fresh sun when ``None``.

    Returns:
        The :class:`Conditions`.
    """
    if sun is None:
        azimuth = rng.uniform(np.radians(110), np.radians(250))
        elevation = rng.uniform(np.radians(30), np.radians(65))
    else:
        turn = rng.uniform(np.radians(20), np.radians(70)) * rng.choice([-1.0, 1.0])
        azimuth = sun[0] + turn * min(strength, 1.0)
        elevation = sun[1] + rng.uniform(-0.15, 0.15) * min(strength, 1.0)
    s = float(strength)
    return Conditions(
        gain=float(1.0 + rng.uniform(-0.15, 0.15) * s),
        gain_tilt=float(rng.uniform(-0.06, 0.06) * s),
        offset=float(rng.normal(0.0, 0.004) * s),
        season=float(rng.uniform(0.0, 0.4) * min(s, 2.0)),
        haze=float((rng.uniform(0.005, 0.06) if rng.random() < 0.5 else 0.0) * s),
        noise=float(rng.uniform(0.001, 0.004) * s),
        sun_azimuth=float(azimuth),
        sun_elevation=float(np.clip(elevation, np.radians(15), np.radians(80))),
    )


@dataclass(frozen=True)
class Textures:
    """Noise fields of one date, each ``(N, N)`` float32 with unit variance.

    Attributes:
        smooth: Large patches (soil moisture, turbidity).
        rough: Medium grain.
        fine: Pixel-scale grain (tree crowns, roof details).
        haze: Very smooth field modulating the haze.
    """

    smooth: np.ndarray
    rough: np.ndarray
    fine: np.ndarray
    haze: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, scale: float) -> Textures:
        """Fresh fields for date 1."""
        return cls(
            smooth=fractal_noise(rng, n, 64.0 * scale, 8.0 * scale, beta=3.0),
            rough=fractal_noise(rng, n, 16.0 * scale, 2.0),
            fine=fractal_noise(rng, n, 3.0 * scale, 1.5, beta=1.0),
            haze=fractal_noise(rng, n, 2.0 * n, n / 4.0, beta=3.0),
        )

    def next_date(self, rng: np.random.Generator, scale: float) -> Textures:
        """Fields for date 2: the same ground grain, moisture partly redrawn, new haze."""
        n = self.smooth.shape[0]
        fresh = fractal_noise(rng, n, 64.0 * scale, 8.0 * scale, beta=3.0)
        return Textures(
            smooth=np.float32(0.8) * self.smooth + np.float32(0.6) * fresh,
            rough=self.rough,
            fine=self.fine,
            haze=fractal_noise(rng, n, 2.0 * n, n / 4.0, beta=3.0),
        )


def cast_shadows(heights: np.ndarray, azimuth: float, elevation: float) -> np.ndarray:
    """Pixels in the cast shadow of taller neighbours.

    A pixel is shaded when some caster ``t`` pixels towards the sun stands higher than the
    pixel by more than ``t · tan(elevation)``.

    Args:
        heights: ``(N, N)`` float32 object heights in pixels.
        azimuth: Sun azimuth, radians clockwise from north (up).
        elevation: Sun elevation, radians.

    Returns:
        ``(N, N)`` bool shadow mask.
    """
    n = heights.shape[0]
    top = float(heights.max())
    if top <= 0:
        return np.zeros_like(heights, dtype=bool)
    drop = float(np.tan(elevation))
    step_y, step_x = np.cos(azimuth), -np.sin(azimuth)  # away from the sun
    shade = np.zeros_like(heights)
    for t in range(1, int(np.ceil(top / drop)) + 1):
        dy, dx = round(t * step_y), round(t * step_x)
        if abs(dy) >= n or abs(dx) >= n:
            break
        dst_y = slice(max(dy, 0), n + min(dy, 0))
        src_y = slice(max(-dy, 0), n + min(-dy, 0))
        dst_x = slice(max(dx, 0), n + min(dx, 0))
        src_x = slice(max(-dx, 0), n + min(-dx, 0))
        np.maximum(shade[dst_y, dst_x], heights[src_y, src_x] - t * drop, out=shade[dst_y, dst_x])
    return shade > heights + 0.5


def render(
    layout: Layout,
    textures: Textures,
    conditions: Conditions,
    spectra: np.ndarray,
    wavelengths: np.ndarray,
) -> np.ndarray:
    """Render one date of a scene on its canvas.

    Args:
        layout: The date's layout.
        textures: The date's noise fields.
        conditions: The date's acquisition conditions.
        spectra: ``(len(MATERIALS), C)`` material reflectance at the band centres.
        wavelengths: ``(C,)`` band centres in nm.

    Returns:
        ``(C, N, N)`` float32 reflectance (before sensor sampling and noise).
    """
    s = layout.surfaces
    obj = layout.objects
    kind = s.array("cls")
    tilt = 1.0 + s.array("tilt")[:, None] * ((wavelengths[None, :] - 1000.0) / 1000.0)
    gain = s.array("brightness")[:, None] * tilt.astype(np.float32)
    primary = spectra[s.array("primary")] * gain
    secondary = spectra[s.array("secondary")] * gain * s.array("secondary_gain")[:, None]
    browning = (conditions.season * s.array("season"))[:, None]
    primary = primary * (1 - browning) + spectra[_DRY][None, :] * gain * browning

    def per_pixel(values: np.ndarray) -> np.ndarray:
        """``(M,)`` per-object values → ``(N, N)`` (``np.take`` is much faster than indexing)."""
        return np.take(np.ascontiguousarray(values, dtype=np.float32), obj)

    angle, period = s.array("stripe_angle"), s.array("stripe_period")
    rows = per_pixel(np.cos(angle) / period) * _columns(layout.size)
    rows += per_pixel(np.sin(angle) / period) * _columns(layout.size).T
    rows = 0.5 + 0.5 * np.sin(np.float32(2 * np.pi) * rows)
    mix = _MIX[kind]
    fraction = per_pixel(mix[:, 0] + 1.0 - s.array("cover"))
    fraction += per_pixel(mix[:, 1]) * textures.smooth
    fraction += per_pixel(mix[:, 2]) * textures.rough
    fraction += per_pixel(mix[:, 3]) * textures.fine
    fraction += per_pixel(s.array("stripe_amp")) * rows
    fraction += per_pixel(s.array("gable")) * layout.roof
    np.clip(fraction, 0.0, 1.0, out=fraction)
    grain = 1.0 + per_pixel(_GRAIN[kind]) * (0.6 * textures.rough + 0.4 * textures.fine)
    a = np.take(np.ascontiguousarray(primary.T, dtype=np.float32), obj, axis=1)
    b = np.take(np.ascontiguousarray(secondary.T, dtype=np.float32), obj, axis=1)
    b -= a
    b *= fraction
    a += b
    image = a
    image *= grain
    heights = per_pixel(s.array("height"))
    shadow = cast_shadows(heights, conditions.sun_azimuth, conditions.sun_elevation)
    image[:, shadow] *= shadow_remaining(wavelengths)[:, None]
    illumination = conditions.gain * (1.0 + conditions.gain_tilt * (wavelengths - 1000.0) / 1000.0)
    factor = (transmission(wavelengths) * illumination).astype(np.float32)
    haze = (conditions.haze * haze_spectrum(wavelengths)).astype(np.float32)[:, None, None]
    veil = np.clip(0.6 + 0.4 * textures.haze, 0.0, 1.5)
    image *= factor[:, None, None]
    if conditions.haze > 0:
        image *= 1.0 - 0.5 * haze * veil
        image += haze * veil
    image += np.float32(conditions.offset)
    return image


def sample_window(canvas: np.ndarray, row: float, col: float, size: int) -> np.ndarray:
    """Read a ``size × size`` window at a fractional position, bilinearly.

    Args:
        canvas: ``(C, N, N)`` image.
        row: Top edge of the window in canvas pixels (fractional).
        col: Left edge (fractional).
        size: Window side ``S``.

    Returns:
        ``(C, S, S)`` float32.
    """
    r0, c0 = int(np.floor(row)), int(np.floor(col))
    fy, fx = np.float32(row - r0), np.float32(col - c0)
    top = canvas[:, r0 : r0 + size + 1, c0 : c0 + size + 1]
    rows = top[:, :-1] * (1 - fy) + top[:, 1:] * fy
    out: np.ndarray = rows[:, :, :-1] * (1 - fx) + rows[:, :, 1:] * fx
    return out


def to_reflectance_uint16(image: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Add sensor noise and quantise reflectance × 10000 to uint16 (Sentinel-2 L2A scaling).

    Args:
        image: ``(C, S, S)`` float32 reflectance.
        noise: Noise standard deviation (reflectance).
        rng: Random generator.

    Returns:
        ``(C, S, S)`` uint16.
    """
    if noise > 0:
        image = image + np.float32(noise) * rng.standard_normal(image.shape, dtype=np.float32)
    scaled = image * np.float32(10000.0)
    scaled += np.float32(0.5)  # round half up: the cast truncates the non-negative values
    return np.clip(scaled, 0, 65535, out=scaled).astype(np.uint16)
