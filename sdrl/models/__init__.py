"""Backbones, necks and weight loading.

Shape letters: ``B`` batch, ``C`` input bands, ``H``/``W`` input rows/columns, ``D_i``
channels of feature level ``i`` (C2..C5 at strides 4, 8, 16, 32).

The names below are imported on first use, so that :mod:`sdrl.models.names` (read by the
command line to build ``--help``) does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdrl.models.backbones import BACKBONES, backbone_names, build_backbone
    from sdrl.models.base import STRIDES, Backbone
    from sdrl.models.change import ChangeModel, ChangeNet
    from sdrl.models.fpn import FPN
    from sdrl.models.init import build_change_model, init_encoder
    from sdrl.models.resnet import ResNetBackbone
    from sdrl.models.swin import SwinBackbone
    from sdrl.models.unet import EarlyFusionUNet
    from sdrl.models.weight_files import META_FILE, WEIGHTS_FILE, WeightsFile, read_weights
    from sdrl.models.weights import (
        LoadReport,
        adapt_input_conv,
        load_state_dict_into,
        load_weights,
    )

_HOMES = {
    "BACKBONES": "backbones",
    "backbone_names": "backbones",
    "build_backbone": "backbones",
    "STRIDES": "base",
    "Backbone": "base",
    "ChangeModel": "change",
    "ChangeNet": "change",
    "FPN": "fpn",
    "build_change_model": "init",
    "init_encoder": "init",
    "ResNetBackbone": "resnet",
    "SwinBackbone": "swin",
    "EarlyFusionUNet": "unet",
    "META_FILE": "weight_files",
    "WEIGHTS_FILE": "weight_files",
    "WeightsFile": "weight_files",
    "read_weights": "weight_files",
    "LoadReport": "weights",
    "adapt_input_conv": "weights",
    "load_state_dict_into": "weights",
    "load_weights": "weights",
}

__all__ = [
    "BACKBONES",
    "FPN",
    "META_FILE",
    "STRIDES",
    "WEIGHTS_FILE",
    "Backbone",
    "ChangeModel",
    "ChangeNet",
    "EarlyFusionUNet",
    "LoadReport",
    "ResNetBackbone",
    "SwinBackbone",
    "WeightsFile",
    "adapt_input_conv",
    "backbone_names",
    "build_backbone",
    "build_change_model",
    "init_encoder",
    "load_state_dict_into",
    "load_weights",
    "read_weights",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"sdrl.models.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'sdrl.models' has no attribute {name!r}")
