"""Real changes between the two dates of a scene.

Date 2 is date 1 with, each drawn independently (probabilities × ``rate``):

* demolished buildings (the footprint becomes bare soil, a cleared site);
* new buildings on the empty lots along roads, some with a cleared construction apron;
* land-cover conversions of whole field parcels: vegetation → bare soil or forest (ploughing,
  afforestation), bare soil → vegetation, forest → bare soil or vegetation (clear-cut);
* a flood or a drought moving the water line (new water, or exposed wet shore as bare soil).

Everything else — illumination, season, haze, noise, shadows, misregistration — is a nuisance
rendered later and never changes a class. The change label is therefore exactly the set of
pixels whose class differs between the two layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdrl.data.synth.scene import Layout
from sdrl.data.synth.spectra import FOREST, SOIL, VEGETATION, WATER

__all__ = ["ChangeRecord", "apply_changes"]

P_DEMOLISH = 0.05
P_BUILD = 0.25
P_CONVERT = 0.1
P_WATER = 0.3

_CONVERSIONS = {
    SOIL: ((VEGETATION,), (1.0,)),
    VEGETATION: ((SOIL, FOREST), (0.9, 0.1)),
    FOREST: ((SOIL, VEGETATION), (0.6, 0.4)),
}
_LAND = np.zeros(256, dtype=bool)
_LAND[[SOIL, VEGETATION, FOREST]] = True
_CLEARABLE = np.zeros(256, dtype=bool)
_CLEARABLE[[SOIL, VEGETATION]] = True


@dataclass(frozen=True)
class ChangeRecord:
    """What changed in a scene (counts of events, whole canvas).

    Attributes:
        demolished: Buildings removed.
        built: Buildings added.
        converted: Field parcels whose land cover changed.
        water: ``+1`` flood, ``-1`` drought, ``0`` no change of the water line.
    """

    demolished: int = 0
    built: int = 0
    converted: int = 0
    water: int = 0


def apply_changes(
    rng: np.random.Generator, before: Layout, rate: float = 1.0
) -> tuple[Layout, ChangeRecord]:
    """Draw the date-2 layout of a scene.

    Args:
        rng: Random generator.
        before: The date-1 layout (left unchanged).
        rate: Multiplier of every change probability; 0 gives a date 2 with no real change.

    Returns:
        ``(after, record)``: the date-2 layout and what changed.
    """
    after = before.copy()
    if rate <= 0:
        return after, ChangeRecord()
    scale = after.scale
    demolished = built = converted = water = 0
    for obj in list(after.buildings):
        if rng.random() < min(P_DEMOLISH * rate, 1.0):
            site = after.surfaces.add(rng, SOIL, scale, material="soil_dry")
            raster_mask = after.objects == obj
            after.classes[raster_mask] = SOIL
            after.objects[raster_mask] = site
            after.roof[raster_mask] = False
            del after.buildings[obj]
            demolished += 1
    for rect in list(after.vacant):
        if rng.random() < min(P_BUILD * rate, 1.0) and after.buildable(rect):
            if rng.random() < 0.4:
                apron = after.surfaces.add(rng, SOIL, scale, material="soil_dry")
                after.paint(rect.grown(rng.uniform(2.0, 5.0) * scale), SOIL, apron, _CLEARABLE)
            after.build(rng, rect)
            after.vacant.remove(rect)
            built += 1
    for parcel in before.parcels:
        if rng.random() >= min(P_CONVERT * rate, 1.0):
            continue
        old = before.surfaces.cls[parcel]
        targets, weights = _CONVERSIONS[old]
        new = int(rng.choice(targets, p=weights))
        pixels = (after.objects == parcel) & (after.classes == old)
        if not pixels.any():
            continue
        obj = after.surfaces.add(rng, new, scale)
        after.classes[pixels] = new
        after.objects[pixels] = obj
        converted += 1
    if after.water_field is not None and rng.random() < min(P_WATER * rate, 1.0):
        water = 1 if rng.random() < 0.5 else -1
        level = after.water_level - water * rng.uniform(0.5, 1.5) * after.water_step
        wet_before = after.water_field > after.water_level
        wet_after = after.water_field > level
        flooded = wet_after & ~wet_before & _LAND[after.classes]
        after.classes[flooded] = WATER
        after.objects[flooded] = after.water_id
        dried = wet_before & ~wet_after & (after.classes == WATER)
        if dried.any():
            shore = after.surfaces.add(rng, SOIL, scale, material="soil_wet")
            after.classes[dried] = SOIL
            after.objects[dried] = shore
        after.water_level = level
    return after, ChangeRecord(demolished, built, converted, water)
