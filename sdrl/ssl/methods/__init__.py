"""Pretraining methods: the sdrl objective, its self-supervised and supervised baselines.

The baselines are SimCLR, MoCo v2, BYOL and DetCon, and in-domain supervised pretraining on
the masks.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` image rows/columns, ``K`` semantic classes
(regions), ``D`` embedding dim.

Every method follows :class:`~sdrl.ssl.methods.base.PretrainMethod`: ``forward(view1, view2,
mask1, mask2)`` returns ``loss`` plus detached terms, ``momentum_update(progress)`` runs after
each optimiser step, ``region_embeddings(images, masks)`` feeds the validation probe, and
``backbone`` is the encoder that is exported. :func:`build_method` builds one by name.

==============  =====  ========================================================================
name            masks  what
==============  =====  ========================================================================
``sdrl``        yes    region pooling (FPN P2 or C5) → projection → :class:`~sdrl.ssl.SDRLLoss`
``simclr``      no     global pooling of C5 → SimCLR head → NT-Xent
``moco``        no     MoCo v2: momentum key encoder, memory bank of negatives
``byol``        no     BYOL: predictor, momentum target, negative cosine similarity
``detcon``      yes    DetCon-S (default) or DetCon-B on C5 region pooling
``supervised``  yes    semantic segmentation of the masks: FPN P2 (or C5) → 1×1 conv → CE
==============  =====  ========================================================================
"""

from __future__ import annotations

import inspect
from typing import Any

from sdrl.models.base import Backbone
from sdrl.ssl.methods.base import PretrainMethod
from sdrl.ssl.methods.byol import BYOLMethod
from sdrl.ssl.methods.detcon import DetConMethod
from sdrl.ssl.methods.moco import MoCoMethod
from sdrl.ssl.methods.sdrl import SDRLMethod
from sdrl.ssl.methods.simclr import SimCLRMethod
from sdrl.ssl.methods.supervised import SupervisedMethod

__all__ = [
    "METHODS",
    "BYOLMethod",
    "DetConMethod",
    "MoCoMethod",
    "PretrainMethod",
    "SDRLMethod",
    "SimCLRMethod",
    "SupervisedMethod",
    "build_method",
    "method_names",
    "method_options",
]

METHODS: dict[str, type[PretrainMethod]] = {
    "sdrl": SDRLMethod,
    "simclr": SimCLRMethod,
    "moco": MoCoMethod,
    "byol": BYOLMethod,
    "detcon": DetConMethod,
    "supervised": SupervisedMethod,
}
"""Each method's class by name."""


def method_names() -> list[str]:
    """The registered method names, in registry order."""
    return list(METHODS)


def method_options(name: str) -> dict[str, Any]:
    """The keyword options of a method and their defaults.

    Raises:
        ValueError: The name is unknown.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    parameters = inspect.signature(METHODS[name].__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_method(name: str, backbone: Backbone, num_classes: int, **options: Any) -> PretrainMethod:
    """Build a pretraining method by name around a backbone.

    Args:
        name: One of :func:`method_names`.
        backbone: The encoder to pretrain (:func:`~sdrl.models.build_backbone`).
        num_classes: ``K``, the semantic classes of the masks (used by region pooling and the
            validation probe, also by the global methods).
        **options: Keyword options of the method (see :func:`method_options` and each class).

    Returns:
        The method, in training mode.

    Raises:
        ValueError: The name or an option is unknown, or an option's value is invalid.
    """
    accepted = method_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"method {name!r} has no option {', '.join(unknown)}; its options: "
            f"{', '.join(accepted)}"
        )
    return METHODS[name](backbone, num_classes, **options)
