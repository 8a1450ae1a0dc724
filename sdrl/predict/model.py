"""The change model of a finetuning checkpoint, rebuilt from its header for inference.

``sdrl evaluate`` and ``sdrl predict`` (and any notebook) call :func:`load_change_model`: it
reads the checkpoint without running code, checks its :class:`~sdrl.checkpoint.CheckpointHeader`
(kind ``change``: a pretraining checkpoint gets "finetune it first"), builds the model the
header names and loads the weights with ``strict=True``. The change task's own header fields
(``extra``) used here::

    output            "softmax" (K = 2, class 1 = change) | "sigmoid" (K = 1)
    threshold         change probability above which a pixel is change (0.5)
    label_values      raw label value -> class id of the training labels (None: raw = id)
    ignore_index      raw label value meaning "not labelled" (None: none)
    ignore            target value that losses and metrics skip (255)
    loss, change_weight, init, label_fraction, label_seed, train_tiles, train_tiles_total,
    crop_size         how it was trained

No Lightning is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdrl.checkpoint import CheckpointHeader, read_checkpoint, read_header
from sdrl.errors import DataError
from sdrl.models.change import ChangeModel
from sdrl.models.init import build_change_model, tile_multiple

__all__ = ["LoadedChangeModel", "check_bands", "load_change_model", "tile_multiple"]

_PREFIX = "model."


@dataclass
class LoadedChangeModel:
    """A change model rebuilt from a finetuning checkpoint, in eval mode.

    Attributes:
        path: The checkpoint file.
        model: The model, weights loaded.
        header: The checkpoint's header.
        global_step: Optimiser steps of the run when it was saved.
    """

    path: Path
    model: ChangeModel
    header: CheckpointHeader
    global_step: int

    @property
    def meta(self) -> dict[str, Any]:
        """The header as the flat dict stored in the checkpoint."""
        return self.header.to_dict()

    @property
    def mean(self) -> list[float]:
        """Per-band mean of the normalisation."""
        return [float(v) for v in self.header.mean]

    @property
    def std(self) -> list[float]:
        """Per-band standard deviation of the normalisation."""
        return [float(v) for v in self.header.std]

    @property
    def in_channels(self) -> int:
        """Bands ``C`` of each date."""
        return int(self.header.in_channels)

    @property
    def threshold(self) -> float:
        """The checkpoint's change threshold (0.5 unless recorded otherwise)."""
        return float(self.header.extra.get("threshold", 0.5))


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
    header = read_header(checkpoint, kinds=("change",), path=path)
    if header.model is None:
        raise DataError(path, "a change-model description (model name)", "none in its header")
    try:
        model = build_change_model(
            header.model,  # type: ignore[arg-type]  # checked by build_change_model
            int(header.in_channels),
            header.backbone,
            **header.model_options,
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
        raise DataError(path, f"weights of its {header.model} model", first) from None
    model.eval()
    return LoadedChangeModel(path, model, header, int(checkpoint.get("global_step", 0)))


def check_bands(header: CheckpointHeader, count: int, where: str | Path, fix: str = "") -> None:
    """Raise a :class:`DataError` unless ``count`` bands match the header's ``in_channels``.

    Args:
        header: The checkpoint's header.
        count: Bands of the input.
        where: The input (file or folder), for the message.
        fix: A hint appended to the message.
    """
    expected = int(header.in_channels)
    if count != expected:
        raise DataError(
            where,
            f"{expected} bands {list(header.bands or [])} like the checkpoint's model",
            f"{count} bands",
            fix or "Use the checkpoint of a model finetuned on data with these bands",
        )
