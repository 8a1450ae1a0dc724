"""The crop classifier's one inference path: checkpoint → model → per-level ids per patch.

``sdrl crop evaluate`` and ``sdrl crop predict`` both go through :func:`predict_patches`;
nothing here imports Lightning. A checkpoint is read with ``weights_only=True`` and its header
(kind ``crop``) rebuilds the model, the normalisation of both sensors, the month window and
the taxonomy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from sdrl.checkpoint import CheckpointHeader, read_checkpoint, read_header
from sdrl.data.crop.stats import CropStats
from sdrl.data.crop.taxonomy import Taxonomy
from sdrl.data.samples import collate
from sdrl.errors import DataError
from sdrl.models.crop import (
    CropModel,
    CropModelConfig,
    build_crop_model,
    decode_consistent,
    decode_independent,
)
from sdrl.predict.inference import autocast, resolve_device, resolve_precision

__all__ = [
    "MODEL_NAME",
    "CropPredictor",
    "decode",
    "load_crop_model",
    "predict_patches",
    "taxonomy_paths",
]

MODEL_NAME = "crop-dual-stream"
"""The header's ``model`` of crop checkpoints."""


def taxonomy_paths(taxonomy: Taxonomy) -> Tensor:
    """``(P, L)`` int64: the taxonomy's valid paths (one per leaf)."""
    return torch.tensor(np.array(taxonomy.paths), dtype=torch.int64)


def decode(logits: Sequence[Tensor], paths: Tensor, decoding: str) -> Tensor:
    """Per-level ids ``(B, L, H, W)``: each level's argmax, or the best taxonomy path."""
    if decoding == "consistent":
        return decode_consistent(logits, paths.to(logits[0].device))
    if decoding == "independent":
        return decode_independent(logits)
    raise ValueError(f"decoding must be independent or consistent, got {decoding!r}")


@dataclass
class CropPredictor:
    """A crop checkpoint ready to predict.

    Attributes:
        model: The classifier, in eval mode on ``device``.
        header: The checkpoint header.
        taxonomy: The taxonomy it was trained with.
        stats: Normalisation of both sensors (raw values → model input).
        months: Monthly composites ``T`` the model takes.
        device: Where the model runs.
        path: The checkpoint file.
    """

    model: CropModel
    header: CheckpointHeader
    taxonomy: Taxonomy
    stats: CropStats
    months: int
    device: torch.device
    path: Path

    @property
    def enmap(self) -> bool:
        """Whether the model has an EnMAP stream."""
        return self.model.spectral is not None

    @property
    def priors(self) -> bool:
        """Whether the heads take the previous year's labels."""
        return bool(self.model.config.priors)


def load_crop_model(checkpoint: str | Path, device: str = "auto") -> CropPredictor:
    """Rebuild the classifier of a ``sdrl crop train`` checkpoint (no code from the file runs).

    Raises:
        DataError: Not a crop checkpoint, or weights that do not fit its own header.
    """
    path = Path(checkpoint)
    stored = read_checkpoint(path)
    header = read_header(stored, kinds=("crop",), path=path)
    extra = header.extra
    try:
        options = dict(header.model_options)
        options["num_classes"] = tuple(options["num_classes"])
        config = CropModelConfig(**options)
        taxonomy = Taxonomy.from_dict(extra["taxonomy"])
        enmap_mean = np.asarray(extra.get("enmap_mean") or [], dtype=np.float32)
        enmap_std = np.asarray(extra.get("enmap_std") or [], dtype=np.float32)
        stats = CropStats(
            np.asarray(header.mean, dtype=np.float32),
            np.asarray(header.std, dtype=np.float32),
            enmap_mean if len(enmap_mean) else None,
            enmap_std if len(enmap_std) else None,
        )
        months = int(extra["months"])
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(path, "a crop checkpoint header", f"an incomplete one ({error})") from None
    model = build_crop_model(config)
    state = stored.get("state_dict") or {}
    weights = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise DataError(path, "weights that fit the model its header describes", first) from None
    target = resolve_device(device)
    model.to(target).eval()
    return CropPredictor(model, header, taxonomy, stats, months, target, path)


@torch.inference_mode()
def predict_patches(
    predictor: CropPredictor,
    dataset: Any,
    *,
    decoding: str | None = None,
    batch_size: int = 4,
    num_workers: int = 0,
    precision: str = "auto",
    progress: bool = False,
) -> Iterator[dict[str, Any]]:
    """Predict every patch of a crop dataset, batch by batch.

    Args:
        predictor: From :func:`load_crop_model`.
        dataset: A :class:`~sdrl.data.crop.dataset.CropDataset` (with or without labels)
            built with the predictor's months, statistics and EnMAP/prior settings.
        decoding: ``independent`` or ``consistent``; default: the checkpoint's.
        batch_size: Patches per forward pass.
        num_workers: Loader processes.
        precision: ``auto``, ``32``, ``bf16`` or ``16``: the policy of the change models'
            inference (:mod:`sdrl.predict.inference`); decoding runs in float32.
        progress: Show a progress bar of the patches (stderr).

    Yields:
        The batch on the CPU (``id``, ``s2``... as the dataset gives them) plus ``pred``
        ``(B, L, H, W)`` int64 ids.
    """
    mode = decoding or str(predictor.header.extra.get("decoding", "independent"))
    paths = taxonomy_paths(predictor.taxonomy).to(predictor.device)
    resolved = resolve_precision(precision, predictor.device)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
    bar = tqdm(total=len(dataset), unit="patch", disable=not progress)
    for batch in loader:
        device = predictor.device
        s2 = batch["s2"].to(device)
        enmap = batch["enmap"].to(device) if predictor.enmap else None
        prior = batch["prior"].to(device) if predictor.priors else None
        with autocast(device, resolved):
            logits = predictor.model(s2, enmap, prior)
        logits = [level.float() for level in logits]
        batch["pred"] = decode(logits, paths, mode).cpu()
        bar.update(len(batch["id"]))
        yield batch
    bar.close()
