"""The names of the registered networks, importable without torch (for the command line).

:data:`~sdrl.models.backbones.BACKBONES` and :func:`~sdrl.models.init.build_change_model` key
their builders by these names; a test checks that the registries and these lists agree.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "BACKBONE_NAMES",
    "CHANGE_MODEL_NAMES",
    "TEST_BACKBONES",
    "BackboneName",
    "ChangeModelName",
]

BackboneName = Literal["resnet18", "resnet50", "swin_t"]
"""Backbones offered to users."""

BACKBONE_NAMES: tuple[str, ...] = get_args(BackboneName)

TEST_BACKBONES = ("resnet_tiny", "swin_tiny_test")
"""Test sizes: accepted everywhere, offered nowhere (not in ``--help``)."""

ChangeModelName = Literal["siamese", "unet"]
"""Change models: the siamese network with a backbone, the early-fusion U-Net."""

CHANGE_MODEL_NAMES: tuple[str, ...] = get_args(ChangeModelName)
