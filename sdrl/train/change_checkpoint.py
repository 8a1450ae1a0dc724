"""The ``sdrl`` block of a change-detection checkpoint, and loading its model for inference.

Every checkpoint of ``sdrl finetune`` carries ``checkpoint["sdrl"]``, plain data that
``sdrl evaluate`` and ``sdrl predict`` need to rebuild and feed the model without the training
data or settings (the RNG state and counters of exact resume sit next to it)::

    kind              "change"  (pretraining checkpoints say "pretrain")
    version           sdrl version that wrote it
    model             "siamese" | "unet"
    model_options     keyword options of the model (fusion, head, out_channels, ...)
    backbone          encoder name of the siamese model, None for the U-Net
    in_channels       bands C of each date
    bands             band names, C of them
    mean, std         per-band normalisation (x - mean) / std of the training data
    classes           ["unchanged", "changed"]
    label_values      raw label value -> class id of the training labels (None: raw = id)
    ignore_index      raw label value meaning "not labelled" (None: none)
    ignore            target value that losses and metrics skip (255)
    output            "softmax" (K = 2, class 1 = change) | "sigmoid" (K = 1)
    threshold         change probability above which a pixel is change (0.5)
    tile_multiple     tile sides must be multiples of it (32 siamese, 2**depth U-Net)
    loss, change_weight, init, label_fraction, train_tiles, train_tiles_total, data, crop_size
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from sdrl.errors import DataError
from sdrl.models.change import ChangeModel
from sdrl.models.init import build_change_model
from sdrl.train.checkpoint import read_checkpoint
from sdrl.train.run_dir import checkpoint_kind

__all__ = ["LoadedChangeModel", "check_bands", "file_sha256", "load_change_model", "tile_multiple"]

CHANGE_KIND = "change"
_PREFIX = "model."


def tile_multiple(model: nn.Module) -> int:
    """What tile sides must be a multiple of: 32 (backbones), ``2**depth`` (U-Net)."""
    depth = getattr(model, "depth", None)
    return 2 ** int(depth) if isinstance(depth, int) else 32


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LoadedChangeModel:
    """A change model rebuilt from a finetuning checkpoint, in eval mode.

    Attributes:
        path: The checkpoint file.
        model: The model, weights loaded.
        meta: The checkpoint's ``sdrl`` block (schema in the module doc).
        global_step: Optimiser steps of the run when it was saved.
    """

    path: Path
    model: ChangeModel
    meta: dict[str, Any]
    global_step: int

    @property
    def mean(self) -> list[float]:
        """Per-band mean of the normalisation."""
        return [float(v) for v in self.meta["mean"]]

    @property
    def std(self) -> list[float]:
        """Per-band standard deviation of the normalisation."""
        return [float(v) for v in self.meta["std"]]

    @property
    def in_channels(self) -> int:
        """Bands ``C`` of each date."""
        return int(self.meta["in_channels"])

    @property
    def threshold(self) -> float:
        """The checkpoint's change threshold (0.5 unless recorded otherwise)."""
        return float(self.meta.get("threshold", 0.5))


def _check_kind(path: Path, block: Any) -> dict[str, Any]:
    kind = checkpoint_kind(block) if isinstance(block, dict) else None
    if kind == "pretrain":
        assert isinstance(block, dict)
        raise DataError(
            path,
            "a change-detection checkpoint (from sdrl finetune)",
            f"a pretraining checkpoint ({block.get('method')} on {block.get('data')})",
            f"This is a pretraining checkpoint; finetune it first: sdrl finetune --data DIR "
            f"--init {path} --out RUN, then use RUN/best.ckpt",
        )
    if kind != CHANGE_KIND:
        raise DataError(
            path,
            "a change-detection checkpoint of sdrl finetune (with its 'sdrl' description)",
            "a checkpoint without it" if kind is None else f"a checkpoint of kind {kind!r}",
        )
    assert isinstance(block, dict)
    return block


def load_change_model(path: str | Path, map_location: Any = "cpu") -> LoadedChangeModel:
    """Rebuild the change model of a finetuning checkpoint (read without running code).

    Args:
        path: ``RUN/best.ckpt``, ``RUN/last.ckpt`` or a copy.
        map_location: Where the tensors go.

    Raises:
        DataError: Missing or unreadable file, a pretraining checkpoint ("finetune it
            first"), a checkpoint of something else, or weights that do not fit its model.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path, map_location)
    meta = _check_kind(path, checkpoint.get("sdrl"))
    try:
        model = build_change_model(
            meta["model"], int(meta["in_channels"]), meta.get("backbone"), **meta["model_options"]
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(path, "a valid change-model description", f"'{error}'") from None
    state = {
        k.removeprefix(_PREFIX): v
        for k, v in checkpoint.get("state_dict", {}).items()
        if k.startswith(_PREFIX)
    }
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise DataError(path, f"weights of its {meta['model']} model", first) from None
    model.eval()
    return LoadedChangeModel(path, model, dict(meta), int(checkpoint.get("global_step", 0)))


def check_bands(meta: dict[str, Any], count: int, where: str | Path, fix: str = "") -> None:
    """Raise a :class:`DataError` unless ``count`` bands match the checkpoint's ``in_channels``.

    Args:
        meta: The checkpoint's ``sdrl`` block.
        count: Bands of the input.
        where: The input (file or folder), for the message.
        fix: A hint appended to the message.
    """
    expected = int(meta["in_channels"])
    if count != expected:
        raise DataError(
            where,
            f"{expected} bands {list(meta.get('bands') or [])} like the checkpoint's model",
            f"{count} bands",
            fix or "Use the checkpoint of a model finetuned on data with these bands",
        )
