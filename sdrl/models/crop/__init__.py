"""The hierarchical dual-stream crop classifier (after H2Crop), initialised from sdrl exports.

Shape letters: ``B`` batch, ``T`` frames (months), ``C`` S2 bands, ``H``/``W`` rows/columns of
the S2 grid, ``N`` EnMAP bands, ``h``/``w`` of the EnMAP grid, ``L`` taxonomy levels,
``N_l = K_l + 1`` classes of level ``l`` (0 = background), ``P`` taxonomy paths.

::

    from sdrl.models.crop import CropModelConfig, build_crop_model, hierarchical_loss
    model = build_crop_model(CropModelConfig(num_classes=(7, 37, 83, 102), size="default"))
    init_temporal_from_export(model, "exports/s2_video")     # sdrl export --temporal 12
    logits = model(s2, enmap)                                # L x (B, N_l, H, W)
    loss, per_level = hierarchical_loss(logits, label, ignore_index=255)
    ids = decode_consistent(logits, paths)                   # (B, L, H, W), valid paths only

=================  ==================================================================
module             what
=================  ==================================================================
``config``         :class:`CropModelConfig` and the size presets
``temporal``       video Swin encoder (torchvision) + time folding + U-Net decoder
``spectral``       EnMAP stream: pixel/band transformers, or a 2D sdrl backbone
``heads``          the cascaded per-level heads (previous logits, optional priors)
``model``          :class:`CropModel`, :func:`build_crop_model`, :func:`count_parameters`
``loss``           :func:`hierarchical_loss`
``decoding``       independent and taxonomy-consistent decoding, valid-path share
``init``           encoders from ``sdrl export`` folders
=================  ==================================================================
"""

from sdrl.models.crop.config import PRESETS, CropModelConfig, CropSizes
from sdrl.models.crop.decoding import decode_consistent, decode_independent, valid_path_share
from sdrl.models.crop.init import init_spectral_from_export, init_temporal_from_export
from sdrl.models.crop.loss import hierarchical_loss
from sdrl.models.crop.model import CropModel, build_crop_model, count_parameters

__all__ = [
    "PRESETS",
    "CropModel",
    "CropModelConfig",
    "CropSizes",
    "build_crop_model",
    "count_parameters",
    "decode_consistent",
    "decode_independent",
    "hierarchical_loss",
    "init_spectral_from_export",
    "init_temporal_from_export",
    "valid_path_share",
]
