"""Per-object appearance: which materials, how bright, how textured, how tall.

Every object of a scene (a field parcel, a water body, a road, a building roof...) gets its
own :class:`Surfaces` row drawn at random for its class, so two buildings never look the same
and a field has its own crop, row direction and cover. The draws use only scalar random numbers,
so a scene's layout and appearance do not depend on the band count.

Shape letters: ``M`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from sdrl.data.synth.spectra import BUILDING, FOREST, MATERIALS, ROAD, SOIL, VEGETATION, WATER

__all__ = ["Surfaces"]

_MAT = {name: i for i, name in enumerate(MATERIALS)}
_ROOFS = ("concrete", "roof_tile", "roof_metal", "roof_dark")
_ROOF_P = (0.35, 0.3, 0.15, 0.2)


@dataclass
class Surfaces:
    """Appearance of the objects of a scene, one list entry per object id.

    Attributes:
        cls: Semantic class id.
        primary: Material id of the main surface.
        secondary: Material id mixed in by texture (soil between crop rows, wet soil patches,
            turbid water, the far slope of a gable roof...).
        secondary_gain: Brightness factor of the secondary material.
        brightness: Overall brightness factor of the object.
        tilt: Spectral tilt: reflectance × ``(1 + tilt · (λ − 1000 nm) / 1000 nm)``.
        cover: Vegetation cover of a field (share of the primary material), 1 for others.
        stripe_angle: Direction of crop rows or plough furrows (radians).
        stripe_period: Row spacing in pixels.
        stripe_amp: Strength of the rows (0 = none).
        gable: 1 for a gable roof (one slope darker), 0 for a flat roof.
        height: Height in pixels of shadow length at 45° sun (buildings, trees), 0 for flat.
        season: Sensitivity of the object's spectrum to the seasonal browning of a date.
    """

    cls: list[int] = field(default_factory=list)
    primary: list[int] = field(default_factory=list)
    secondary: list[int] = field(default_factory=list)
    secondary_gain: list[float] = field(default_factory=list)
    brightness: list[float] = field(default_factory=list)
    tilt: list[float] = field(default_factory=list)
    cover: list[float] = field(default_factory=list)
    stripe_angle: list[float] = field(default_factory=list)
    stripe_period: list[float] = field(default_factory=list)
    stripe_amp: list[float] = field(default_factory=list)
    gable: list[float] = field(default_factory=list)
    height: list[float] = field(default_factory=list)
    season: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cls)

    def copy(self) -> Surfaces:
        """An independent copy (the date-2 scene adds objects to it)."""
        return Surfaces(**{f.name: list(getattr(self, f.name)) for f in fields(self)})

    def array(self, name: str) -> np.ndarray:
        """``(M,)`` array of one attribute (int64 for ids, float32 otherwise)."""
        dtype = np.int64 if name in ("cls", "primary", "secondary") else np.float32
        return np.asarray(getattr(self, name), dtype=dtype)

    def add(self, rng: np.random.Generator, cls: int, scale: float, material: str = "") -> int:
        """Draw the appearance of a new object of class ``cls``.

        Args:
            rng: Random generator.
            cls: Semantic class id.
            scale: Size factor of the scene (row spacing and heights are in pixels × scale).
            material: Force this primary material (e.g. ``soil_wet`` for exposed shore).

        Returns:
            The new object id.
        """
        secondary_gain, cover, stripe_amp, gable, height, season = 1.0, 1.0, 0.0, 0.0, 0.0, 0.0
        brightness = rng.uniform(0.85, 1.15)
        if cls == SOIL:
            primary = "soil_dry" if rng.random() < 0.7 else "soil_red"
            secondary = "soil_wet"
            stripe_amp = rng.uniform(0.05, 0.3) if rng.random() < 0.5 else 0.0
        elif cls == VEGETATION:
            crop = rng.random() < 0.6
            primary = "crop_green" if crop else "grass"
            secondary = "soil_dry"
            cover = rng.uniform(0.7, 0.97)
            stripe_amp = rng.uniform(0.05, 0.3) if crop else 0.0
            season = rng.uniform(0.6, 1.0)
        elif cls == FOREST:
            primary, secondary = "forest", "forest"
            secondary_gain = rng.uniform(0.35, 0.5)
            brightness = rng.uniform(0.85, 1.1)
            height = rng.uniform(2.0, 4.0) * scale
            season = rng.uniform(0.1, 0.3)
        elif cls == WATER:
            primary, secondary = "water_clear", "water_turbid"
        elif cls == ROAD:
            asphalt = rng.random() < 0.75
            primary = "asphalt" if asphalt else "gravel"
            secondary = "gravel" if asphalt else "soil_dry"
        elif cls == BUILDING:
            primary = _ROOFS[int(rng.choice(len(_ROOFS), p=_ROOF_P))]
            secondary = primary
            secondary_gain = rng.uniform(0.6, 0.85)
            gable = float(rng.random() < 0.5)
            height = rng.uniform(3.0, 10.0) * scale
        else:
            raise ValueError(f"unknown class id {cls}")
        self.cls.append(cls)
        self.primary.append(_MAT[material or primary])
        self.secondary.append(_MAT[secondary])
        self.secondary_gain.append(float(secondary_gain))
        self.brightness.append(float(brightness))
        self.tilt.append(float(rng.normal(0.0, 0.06)))
        self.cover.append(float(cover))
        self.stripe_angle.append(float(rng.uniform(0.0, np.pi)))
        self.stripe_period.append(float(rng.uniform(3.0, 8.0) * max(scale, 0.5)))
        self.stripe_amp.append(float(stripe_amp))
        self.gable.append(gable)
        self.height.append(float(height))
        self.season.append(float(season))
        return len(self.cls) - 1
