"""The torchvision model of an export folder, ready to use (for notebooks and scripts).

An export's ``weights.safetensors`` loads with ``strict=True`` into the torchvision model its
``meta.json`` names once the classifier is ``nn.Identity()`` and the first layer takes the
export's bands; :func:`load_torchvision` does exactly that::

    from sdrl.export import load_torchvision
    model = load_torchvision("exports/s2")        # torchvision ResNet / Swin, eval mode
    features = model(images)                      # (B, D) pooled features

==================  ==================================================  =====================
architecture        torchvision model                                   first layer
==================  ==================================================  =====================
``resnet18``/``50``  ``torchvision.models.resnet18/50(weights=None)``   ``conv1``
``swin_t``          ``torchvision.models.swin_t(weights=None)``         ``features[0][0]``
``swin3d_t``        ``torchvision.models.video.swin3d_t(weights=None)``  ``patch_embed.proj``
other Swin sizes    ``SwinTransformer`` / ``SwinTransformer3d`` of ``architecture_config``
==================  ==================================================  =====================

The test-size ``resnet_tiny`` has stage widths that torchvision's ResNet cannot build: load it
into sdrl's backbone instead (``build_backbone("resnet_tiny", C, weights=folder)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torchvision
from torch import nn
from torchvision.models import SwinTransformer

from sdrl.errors import DataError
from sdrl.export.inflate import build_swin3d
from sdrl.models.base import Backbone
from sdrl.models.resnet import ResNetBackbone
from sdrl.models.swin import SwinBackbone
from sdrl.models.weight_files import META_FILE, read_weights

__all__ = ["architecture_config", "load_torchvision", "torchvision_model"]

_RESNETS = ("resnet18", "resnet50")


def architecture_config(backbone: Backbone) -> dict[str, Any]:
    """The hyper-parameters of a backbone that rebuild it in torchvision (``meta.json``)."""
    if isinstance(backbone, SwinBackbone):
        stages = [backbone.features[i] for i in (1, 3, 5, 7)]
        embed = backbone.features[0][0]
        return {
            "family": "swin",
            "patch_size": list(embed.kernel_size),
            "embed_dim": int(backbone.channels[0]),
            "depths": [len(stage) for stage in stages],
            "num_heads": [int(stage[0].attn.num_heads) for stage in stages],
            "window_size": list(stages[0][0].attn.window_size),
        }
    if isinstance(backbone, ResNetBackbone):
        stages = [backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4]
        return {
            "family": "resnet",
            "block": type(backbone.layer1[0]).__name__,
            "layers": [len(stage) for stage in stages],
            "widths": [int(stage[0].conv1.out_channels) for stage in stages],
        }
    raise ValueError(f"no torchvision description for a {type(backbone).__name__}")


def torchvision_model(meta: Mapping[str, Any], where: str | Path = META_FILE) -> nn.Module:
    """The empty torchvision model an export's weights load into (see the module table).

    Args:
        meta: The export's ``meta.json``.
        where: The file named in errors.

    Returns:
        The model with random weights, its first layer for ``meta["in_channels"]`` bands and
        its classifier ``nn.Identity()``.

    Raises:
        DataError: The architecture has no torchvision model, or ``meta`` lacks a field.
    """
    arch = meta.get("architecture")
    bands = meta.get("in_channels")
    config = meta.get("architecture_config") or {}
    if not isinstance(arch, str) or not isinstance(bands, int) or bands < 1:
        raise DataError(
            where, "an sdrl export's meta.json with architecture and in_channels", str(meta)[:80]
        )
    if arch in _RESNETS:
        resnet = getattr(torchvision.models, arch)(weights=None)
        resnet.conv1 = nn.Conv2d(bands, 64, kernel_size=7, stride=2, padding=3, bias=False)
        resnet.fc = nn.Identity()
        return resnet
    family = config.get("family")
    if family == "swin" and len(config.get("patch_size", [])) == 3:
        return build_swin3d(config, bands)
    if family == "swin" or arch == "swin_t":
        if arch == "swin_t":
            swin: Any = torchvision.models.swin_t(weights=None)
            dim, patch = 96, (4, 4)
        else:
            dim, patch = int(config["embed_dim"]), tuple(config["patch_size"])
            swin = SwinTransformer(
                patch_size=list(patch),
                embed_dim=dim,
                depths=list(config["depths"]),
                num_heads=list(config["num_heads"]),
                window_size=list(config["window_size"]),
                stochastic_depth_prob=0.0,
            )
        swin.features[0][0] = nn.Conv2d(bands, dim, kernel_size=patch, stride=patch)
        swin.head = nn.Identity()
        return swin
    raise DataError(
        where,
        "an export of a torchvision architecture (resnet18, resnet50, swin_t, swin3d_t or a "
        "Swin of another size)",
        f"architecture {arch!r}",
        f"Load it into sdrl's backbone: sdrl.models.build_backbone({arch!r}, {bands}, "
        "weights=FOLDER)",
    )


def load_torchvision(folder: str | Path) -> nn.Module:
    """The torchvision model of an export folder with its weights, in eval mode.

    Args:
        folder: A folder written by ``sdrl export`` (``weights.safetensors`` + ``meta.json``).

    Returns:
        The torchvision model (module table), classifier ``nn.Identity()``: it maps
        ``(B, C, H, W)`` (``(B, C, T, H, W)`` for a video Swin) to pooled features ``(B, D)``.

    Raises:
        DataError: The folder is not an export, or its weights do not fit its ``meta.json``.
    """
    weights = read_weights(folder)
    meta_path = Path(folder) / META_FILE
    if weights.meta is None:
        raise DataError(meta_path, "the meta.json of an sdrl export", "no such file")
    model = torchvision_model(weights.meta, meta_path)
    try:
        model.load_state_dict(weights.state_dict, strict=True)
    except RuntimeError as error:
        found = str(error).strip().splitlines()
        raise DataError(
            weights.path,
            f"the tensors of a {weights.meta['architecture']} with "
            f"{weights.meta['in_channels']} bands (as meta.json says)",
            " ".join(line.strip() for line in found[:3])[:300],
            "Export the checkpoint again with sdrl export",
        ) from None
    return model.eval()
