"""``sdrl export``: pretrained backbones for downstream models, other sensors and video Swins.

:func:`export_backbone` writes the ⚑ export folder of a checkpoint (``weights.safetensors``
with torchvision's key names + ``meta.json``), optionally re-mapped to another sensor's bands
(``bands``; tables in :mod:`sdrl.bands`, rule in :mod:`sdrl.models.band_mapping`) or inflated to
torchvision's video Swin (``temporal``; :mod:`sdrl.export.inflate`). :func:`load_torchvision`
returns the ready torchvision model of an export folder. Nothing here imports Lightning::

    from sdrl.export import export_backbone, load_torchvision
    export_backbone("runs/pre/best.ckpt", "exports/s2", bands="sentinel2")
    model = load_torchvision("exports/s2")
"""

from sdrl.export.source import SourceBackbone, read_backbone
from sdrl.export.torchvision_models import load_torchvision, torchvision_model
from sdrl.export.writer import FORMAT_VERSION, ExportResult, export_backbone

__all__ = [
    "FORMAT_VERSION",
    "ExportResult",
    "SourceBackbone",
    "export_backbone",
    "load_torchvision",
    "read_backbone",
    "torchvision_model",
]
