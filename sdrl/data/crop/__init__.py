"""Crop data after H2Crop: taxonomy, patch files, dataset folders, augmentation, data engine.

Shape letters: ``B`` batch, ``T`` months, ``C`` Sentinel-2 bands, ``E`` EnMAP bands, ``L``
taxonomy levels, ``H``/``W`` rows/columns at 10 m (EnMAP: ``H/3``, ``W/3`` at 30 m).

Modules: :mod:`.taxonomy` (the class tree and its CSV), :mod:`.h5` (one HDF5 patch),
:mod:`.stats` (normalisation statistics), :mod:`.folder` (the ⚑ crop folder: split lists,
file lookup, ``dataset.json``), :mod:`.dataset` (the torch dataset), :mod:`.augment`
(batch augmentation), :mod:`.signatures` (class phenology and spectra of the data engine),
:mod:`.synth` (one generated patch), :mod:`.synth_folder` (``sdrl synth --kind crop``).

The names below are imported on first use, so that the data engine and the readers do not
pull in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdrl.data.crop.augment import CropAugment
    from sdrl.data.crop.dataset import CropDataset
    from sdrl.data.crop.folder import CropFolder, CropFolderInfo, crop_folder_info
    from sdrl.data.crop.h5 import CropPatch, read_patch
    from sdrl.data.crop.stats import CropStats, load_stats
    from sdrl.data.crop.synth import CropSynthConfig, generate_patch
    from sdrl.data.crop.synth_folder import generate_crop_dataset
    from sdrl.data.crop.taxonomy import Taxonomy, builtin_taxonomy, load_taxonomy

_HOMES = {
    "CropAugment": "augment",
    "CropDataset": "dataset",
    "CropFolder": "folder",
    "CropFolderInfo": "folder",
    "crop_folder_info": "folder",
    "CropPatch": "h5",
    "read_patch": "h5",
    "CropStats": "stats",
    "load_stats": "stats",
    "CropSynthConfig": "synth",
    "generate_patch": "synth",
    "generate_crop_dataset": "synth_folder",
    "Taxonomy": "taxonomy",
    "builtin_taxonomy": "taxonomy",
    "load_taxonomy": "taxonomy",
}

__all__ = [
    "CropAugment",
    "CropDataset",
    "CropFolder",
    "CropFolderInfo",
    "CropPatch",
    "CropStats",
    "CropSynthConfig",
    "Taxonomy",
    "builtin_taxonomy",
    "crop_folder_info",
    "generate_crop_dataset",
    "generate_patch",
    "load_stats",
    "load_taxonomy",
    "read_patch",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"sdrl.data.crop.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'sdrl.data.crop' has no attribute {name!r}")
