"""Hand-made sdrl checkpoints for the export tests: a header and a backbone, nothing trained.

No tests here: helpers only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sdrl.checkpoint import CheckpointHeader
from sdrl.models import build_backbone
from sdrl.models.base import Backbone

PREFIXES = {"pretrain": "method.backbone.", "change": "model.encoder."}


def fake_checkpoint(
    path: Path,
    backbone: str,
    bands: Sequence[str],
    *,
    wavelengths: Sequence[float | None] | None = None,
    kind: str = "pretrain",
    seed: int = 0,
    extra_state: dict[str, torch.Tensor] | None = None,
    **options: Any,
) -> Backbone:
    """Write an sdrl checkpoint of a randomised ``backbone`` on ``bands``; returns the backbone.

    Every parameter gets noise on top of its initialisation (so zero-initialised tensors such
    as biases are not all equal), the header names ``bands`` (and ``wavelengths``), and the
    backbone sits under the prefix of ``kind``; ``extra_state`` adds other tensors.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_backbone(backbone, len(bands), **options).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.02 * torch.randn(param.shape, generator=generator))
    header = CheckpointHeader(
        kind=kind,
        backbone=backbone,
        in_channels=len(bands),
        bands=list(bands),
        wavelengths_nm=list(wavelengths) if wavelengths is not None else None,
        mean=[100.0 + i for i in range(len(bands))],
        std=[10.0 + i for i in range(len(bands))],
        classes=["a", "b"],
        method="sdrl" if kind == "pretrain" else None,
        model="siamese" if kind == "change" else None,
        backbone_options=dict(options),
        data="data/somewhere",
    )
    state = {PREFIXES[kind] + k: v.clone() for k, v in model.state_dict().items()}
    state.update(extra_state or {})
    torch.save({"state_dict": state, "sdrl": header.to_dict(), "epoch": 1}, path)
    return model
