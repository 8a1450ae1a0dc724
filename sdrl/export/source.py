"""The backbone of an sdrl checkpoint, read for export through its header (no Lightning).

A pretraining checkpoint keeps the backbone under ``method.backbone.`` (the momentum copy of
MoCo/BYOL under ``method.target_backbone.`` is not exported), a change-detection checkpoint
under ``model.encoder.``; a later task names its own prefix in its header (``backbone_prefix``).
The tensors are loaded strictly into sdrl's backbone of the header's architecture, so a
checkpoint with missing or misshapen tensors is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdrl.bands import Band, lookup_bands
from sdrl.checkpoint import CheckpointHeader, file_sha256, read_checkpoint, read_header
from sdrl.errors import DataError
from sdrl.models.backbones import build_backbone
from sdrl.models.base import Backbone
from sdrl.models.weight_files import META_FILE
from sdrl.models.weights import BACKBONE_PREFIXES, load_state_dict_into

__all__ = ["SourceBackbone", "read_backbone"]

_WANTED = "an sdrl checkpoint file (.ckpt of sdrl pretrain or sdrl finetune)"


@dataclass(frozen=True)
class SourceBackbone:
    """A checkpoint's backbone with its description.

    Attributes:
        path: The checkpoint file.
        header: Its typed header.
        backbone: sdrl's backbone holding the checkpoint's weights (eval mode).
        bands: The ``C`` input bands with centre wavelengths where known.
        sha256: Hex SHA-256 of the checkpoint file.
    """

    path: Path
    header: CheckpointHeader
    backbone: Backbone
    bands: list[Band]
    sha256: str


def read_backbone(path: str | Path) -> SourceBackbone:
    """Read the backbone of a pretraining or finetuning checkpoint.

    Args:
        path: The checkpoint file.

    Returns:
        The backbone, its header and bands, and the file's hash.

    Raises:
        DataError: The path is a folder or missing, the file is truncated or not an sdrl
            checkpoint, the model has no backbone (the early-fusion U-Net), or its tensors do
            not make the backbone its header names.
    """
    path = Path(path)
    if path.is_dir():
        hint = (
            "This is an export folder already; pass the checkpoint it came from"
            if (path / META_FILE).is_file()
            else "Pass RUN/best.ckpt or RUN/last.ckpt of a run"
        )
        raise DataError(path, _WANTED, "a folder", hint)
    checkpoint = read_checkpoint(path)
    header = read_header(checkpoint, kinds=("pretrain", "change", "crop"), path=path)
    if header.backbone is None:
        raise DataError(
            path,
            "a checkpoint of a model with a backbone",
            f"a {header.model or header.kind} model without one",
            "Export a pretraining checkpoint or a siamese change model's",
        )
    prefix = header.extra.get("backbone_prefix") or BACKBONE_PREFIXES.get(header.kind)
    state = checkpoint.get("state_dict")
    if not isinstance(prefix, str):
        raise DataError(
            path,
            "a checkpoint whose header says where its backbone is (backbone_prefix)",
            f"a {header.kind} checkpoint without it",
        )
    if not isinstance(state, dict):
        raise DataError(path, f"{_WANTED} with a state_dict", "none")
    tensors = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not tensors:
        raise DataError(
            path, f"the {header.backbone} backbone's tensors under {prefix!r}", "none there"
        )
    options = header.backbone_options or header.model_options.get("backbone_options") or {}
    try:
        backbone = build_backbone(header.backbone, header.in_channels, **options)
    except ValueError as error:
        raise DataError(path, "a backbone that sdrl can build", str(error)) from None
    load_state_dict_into(backbone, tensors, source=path, strip_prefix="", adapt_first_layer=False)
    names = list(header.bands)
    if len(names) != header.in_channels:
        names = [f"band_{i + 1}" for i in range(header.in_channels)]
    wavelengths = header.wavelengths_nm
    if wavelengths is not None and len(wavelengths) != len(names):
        wavelengths = None
    return SourceBackbone(
        path=path,
        header=header,
        backbone=backbone.eval(),
        bands=lookup_bands(names, wavelengths),
        sha256=file_sha256(path),
    )
