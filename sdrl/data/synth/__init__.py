"""The built-in data engine: procedurally generated bitemporal scenes (``sdrl synth``).

No generative model: scenes are laid out from semantic classes (bare soil, vegetation, forest,
water, road, building), rendered with class-specific reflectance spectra at the bands' centre
wavelengths and textured surfaces, changed between the two dates by real land-cover changes,
and disturbed by nuisances that are not change (illumination, season, haze, sensor noise, sun
direction, 1–2 px misregistration). Deterministic for a seed.

Modules: :mod:`.spectra` (classes, bands, material curves), :mod:`.texture` (noise),
:mod:`.surfaces` (per-object appearance), :mod:`.scene` (layout), :mod:`.change` (real
changes), :mod:`.render` (image formation and nuisances), :mod:`.engine` (one scene),
:mod:`.dataset` (a dataset folder).
"""

from sdrl.data.synth.dataset import SynthKind, generate_dataset, scene_splits
from sdrl.data.synth.engine import SynthConfig, SynthScene, generate_scene
from sdrl.data.synth.spectra import CLASSES, BandSet, band_set

__all__ = [
    "CLASSES",
    "BandSet",
    "SynthConfig",
    "SynthKind",
    "SynthScene",
    "band_set",
    "generate_dataset",
    "generate_scene",
    "scene_splits",
]
