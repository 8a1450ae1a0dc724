"""Building a change model by name and initialising its encoder.

:func:`build_change_model` makes a :class:`~sdrl.models.change.ChangeNet` (``"siamese"``) or an
:class:`~sdrl.models.unet.EarlyFusionUNet` (``"unet"``). :func:`init_encoder` fills the encoder
of a siamese model from one of the ``--init`` sources:

=====================  =================================================================
source                 read as
=====================  =================================================================
``"random"``           nothing is loaded (the model's own initialisation is kept)
``PATH.ckpt``          an sdrl pretraining checkpoint (Lightning); the backbone's keys sit
                       under ``method.backbone.`` (the momentum copy under
                       ``method.target_backbone.`` loses the tie on length); a finetuning
                       checkpoint works too (``model.encoder.``)
``DIR``                an ``sdrl export`` folder (``weights.safetensors`` + ``meta.json``;
                       its ``architecture`` must match the encoder)
``PATH.pth`` / other   a torchvision state dict saved with ``torch.save``
=====================  =================================================================

Every file is read with ``weights_only=True`` (nothing in it is executed) by
:func:`~sdrl.models.weights.load_weights`, which detects the prefix, checks every shape and
adapts a 3-band first layer to the model's band count; given the data's ``bands`` (and
wavelengths), weights trained on other bands are re-mapped by centre wavelength. Only
``model.encoder`` changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from torch import nn

from sdrl.errors import ConfigError
from sdrl.models.base import Backbone
from sdrl.models.change import ChangeModel, ChangeNet
from sdrl.models.names import ChangeModelName
from sdrl.models.unet import EarlyFusionUNet
from sdrl.models.weights import LoadReport, load_weights

__all__ = ["RANDOM", "ModelName", "build_change_model", "init_encoder", "tile_multiple"]

ModelName = ChangeModelName
RANDOM = "random"
"""The ``--init`` value that keeps the model's random initialisation."""

_MODELS: dict[str, type[ChangeModel]] = {"siamese": ChangeNet, "unet": EarlyFusionUNet}


def build_change_model(
    name: ModelName,
    in_channels: int,
    backbone: str | None = None,
    **options: Any,
) -> ChangeModel:
    """Build a change model by name.

    Args:
        name: ``"siamese"`` (:class:`~sdrl.models.change.ChangeNet`) or ``"unet"``
            (:class:`~sdrl.models.unet.EarlyFusionUNet`).
        in_channels: Bands ``C`` of each date.
        backbone: Backbone of the siamese model (``"resnet18"`` when ``None``); the U-Net has
            none and refuses one.
        **options: Keyword arguments of the model's class (``fusion``, ``head``,
            ``out_channels``, ``decoder_channels``, ``backbone_options`` for ``"siamese"``;
            ``out_channels``, ``base_width``, ``depth`` for ``"unet"``).

    Returns:
        The model, in training mode, randomly initialised.

    Raises:
        ValueError: If the name, an option or its value is invalid.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown change model {name!r}; choose one of {get_args(ModelName)}")
    cls = _MODELS[name]
    first = next(iter(inspect.signature(cls).parameters))
    accepted = [p for p in inspect.signature(cls).parameters if p not in (first, "backbone")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"the {name} model has no option {', '.join(unknown)}; its options: "
            f"{', '.join(accepted)}"
        )
    if name == "unet":
        if backbone is not None:
            raise ValueError(
                f"the early-fusion U-Net has no backbone (got backbone={backbone!r}); "
                "use name='siamese' for a backbone"
            )
        return EarlyFusionUNet(in_channels, **options)
    return ChangeNet(in_channels, backbone=backbone or "resnet18", **options)


def init_encoder(
    model: ChangeModel,
    source: str | Path,
    *,
    strip_prefix: str | None = None,
    adapt_first_layer: bool = True,
    bands: Sequence[str] | None = None,
    wavelengths_nm: Sequence[float | None] | None = None,
) -> LoadReport:
    """Initialise the encoder of a change model from ``source`` (module doc).

    Args:
        model: The model to fill in place; only ``model.encoder`` changes.
        source: ``"random"``, a checkpoint, an export folder or a state-dict file.
        strip_prefix: Prefix of the backbone's keys in the file; ``None`` detects it.
        adapt_first_layer: Adapt a 3-band first layer to the model's bands.
        bands: The data's band names: an export or checkpoint trained on other bands is then
            re-mapped by centre wavelength (:func:`~sdrl.models.weights.load_weights`).
        wavelengths_nm: The data's centre wavelengths in nm, where known.

    Returns:
        What was loaded: ``loaded`` and ``adapted`` name keys of ``model.encoder`` (prepend
        ``"encoder."`` for keys of the model), ``prefix`` the stripped file prefix and
        ``ignored`` the file's unused keys. For ``"random"``, an empty report.

    Raises:
        ConfigError: If the model's encoder is not a backbone (the U-Net) and a file is given.
        DataError: If the file is missing, unreadable, unsafe or does not fit the encoder
            (architecture, width, or a band count other than 3 that differs from the model's).
    """
    if str(source) == RANDOM:
        return LoadReport(source=RANDOM, prefix="", loaded=())
    encoder = model.encoder
    if not isinstance(encoder, Backbone):
        raise ConfigError(
            f"--init {source}: the {type(model).__name__} encoder is not a backbone and cannot "
            "load pretrained weights; use the siamese model or --init random"
        )
    return load_weights(
        encoder,
        source,
        strip_prefix=strip_prefix,
        adapt_first_layer=adapt_first_layer,
        bands=bands,
        wavelengths_nm=wavelengths_nm,
    )


def tile_multiple(model: nn.Module) -> int:
    """What tile sides must be a multiple of: 32 (backbones), ``2**depth`` (U-Net)."""
    depth = getattr(model, "depth", None)
    return 2 ** int(depth) if isinstance(depth, int) else 32
