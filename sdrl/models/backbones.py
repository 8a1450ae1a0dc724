"""The backbone registry: every architecture by name, built for any band count.

===================  ===========================================  ======================
name                 architecture                                 channels C2..C5
===================  ===========================================  ======================
``resnet18``         torchvision ResNet-18                        64, 128, 256, 512
``resnet50``         torchvision ResNet-50                        256, 512, 1024, 2048
``swin_t``           torchvision Swin-T                           96, 192, 384, 768
``resnet_tiny``      test size: BasicBlock ResNet [1, 1, 1, 1]    8, 16, 32, 64
``swin_tiny_test``   test size: Swin, embed_dim 24, window 4      24, 48, 96, 192
===================  ===========================================  ======================

Every backbone maps ``(B, C, H, W)`` (``H``, ``W`` multiples of 32) to four levels at strides
4, 8, 16, 32 (:class:`~sdrl.models.base.Backbone`). Weights start random unless a local file
is given; nothing is downloaded.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sdrl.models.base import Backbone
from sdrl.models.resnet import resnet18, resnet50, resnet_tiny
from sdrl.models.swin import swin_t, swin_tiny_test
from sdrl.models.weights import load_weights

__all__ = ["BACKBONES", "backbone_names", "build_backbone"]

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "swin_t": swin_t,
    "resnet_tiny": resnet_tiny,
    "swin_tiny_test": swin_tiny_test,
}
"""Builder of each architecture: ``builder(in_channels, **options) -> Backbone``."""


def backbone_names() -> list[str]:
    """The registered architecture names, in registry order."""
    return list(BACKBONES)


def build_backbone(
    name: str,
    in_channels: int,
    weights: str | Path | None = None,
    *,
    strip_prefix: str | None = None,
    adapt_first_layer: bool = True,
    bands: Sequence[str] | None = None,
    wavelengths_nm: Sequence[float | None] | None = None,
    **options: Any,
) -> Backbone:
    """Build a backbone by name, optionally initialised from a local weights file.

    Args:
        name: A registered architecture (:data:`BACKBONES`).
        in_channels: Input bands ``C``.
        weights: A torchvision state-dict file, a checkpoint, a ``.safetensors`` file or an
            sdrl export folder (see :mod:`sdrl.models.weight_files`); ``None`` for random
            initialisation.
        strip_prefix: Prefix of the backbone's keys in ``weights``; ``None`` detects it
            (see :func:`~sdrl.models.weights.load_state_dict_into`).
        adapt_first_layer: Adapt a 3-band first layer in ``weights`` to ``in_channels``
            (:func:`~sdrl.models.weights.adapt_input_conv`).
        bands: Names of the ``in_channels`` bands: ``weights`` trained on other bands (an
            export or sdrl checkpoint that names them) are re-mapped by centre wavelength.
        wavelengths_nm: Centre wavelengths of the bands in nm, where known.
        **options: Keyword options of the architecture's builder, e.g. ``drop_path`` for
            ``swin_t`` or ``widths`` for ``resnet_tiny``.

    Returns:
        The backbone, in training mode.

    Raises:
        ValueError: If the name or an option is unknown, or an option's value is invalid.
        DataError: If ``weights`` cannot be read or does not fit the backbone.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    builder = BACKBONES[name]
    accepted = [p for p in inspect.signature(builder).parameters if p != "in_channels"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise ValueError(f"{name} has no option {', '.join(unknown)}; its options: {allowed}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    backbone = builder(in_channels, **options)
    if weights is not None:
        load_weights(
            backbone,
            weights,
            strip_prefix=strip_prefix,
            adapt_first_layer=adapt_first_layer,
            bands=bands,
            wavelengths_nm=wavelengths_nm,
        )
    return backbone
