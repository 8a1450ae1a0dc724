"""``sdrl crop evaluate`` and ``sdrl crop predict``: metrics.json, per-level maps, pictures.

Both run :func:`~sdrl.tasks.crop.inference.predict_patches` (the one inference path).
``evaluate_crop`` accumulates :class:`~sdrl.tasks.crop.metrics.CropMetrics` over a split and
writes ``metrics.json``; with ``save_predictions`` (and always for ``predict_crop``) each patch
gets ``<id>.tif`` (``L`` bands, the ids of each level; the HDF5 patches carry no
georeferencing, so neither does the map) and ``<id>.png``: a row per level with the S2 RGB
composite, the truth (evaluate) and the prediction, classes coloured, with a legend of the
class names present.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdrl.data.crop.dataset import CropDataset
from sdrl.data.crop.taxonomy import Taxonomy
from sdrl.data.io import write_raster
from sdrl.data.staging import write_json_atomic
from sdrl.errors import DataError
from sdrl.tasks.crop.inference import (
    CropPredictor,
    load_crop_model,
    predict_patches,
    taxonomy_paths,
)
from sdrl.tasks.crop.metrics import CropMetrics
from sdrl.viz.figures import picture_table
from sdrl.viz.preview import to_rgb

__all__ = ["class_colours", "evaluate_crop", "predict_crop"]

log = logging.getLogger(__name__)


def class_colours(count: int) -> np.ndarray:
    """``(count, 3)`` uint8 colours of a level's ids.

    Background is dark grey; the classes take matplotlib's qualitative maps (tab20, tab20b,
    tab20c), cycled beyond 60.
    """
    from matplotlib import colormaps

    table = np.concatenate(
        [colormaps[n](np.arange(20))[:, :3] for n in ("tab20", "tab20b", "tab20c")]
    )
    colours = np.empty((count, 3), dtype=np.uint8)
    colours[0] = (40, 40, 40)
    for k in range(1, count):
        colours[k] = (table[(k - 1) % len(table)] * 255).round()
    return colours


def _paint(ids: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``(H, W)`` ids → ``(3, H, W)`` uint8."""
    return np.moveaxis(colours[np.clip(ids, 0, len(colours) - 1)], -1, 0)


def save_patch(
    out: Path,
    patch_id: str,
    pred: np.ndarray,
    s2: np.ndarray,
    band_names: Sequence[str],
    taxonomy: Taxonomy,
    truth: np.ndarray | None = None,
) -> None:
    """``out/<id>.tif`` (the ids of every level) and ``out/<id>.png`` (the picture).

    Args:
        out: The folder.
        patch_id: The patch's name.
        pred: ``(L, H, W)`` predicted ids.
        s2: ``(T, C, H, W)`` the series as the model saw it (normalised).
        band_names: The ``C`` S2 band names (B4/B3/B2 make the composite).
        taxonomy: Class names per level.
        truth: ``(L, H, W)`` reference ids, or ``None``.
    """
    levels = pred.shape[0]
    dtype = np.uint8 if max(taxonomy.num_classes) <= 256 else np.uint16
    names = [f"level{level + 1}" for level in range(levels)]
    write_raster(out / f"{patch_id}.tif", pred.astype(dtype), band_names=names)
    rgb = to_rgb(np.median(s2, axis=0), band_names)
    rows: list[list[np.ndarray]] = []
    legend: dict[str, tuple[int, int, int]] = {}
    for level in range(levels):
        colours = class_colours(taxonomy.num_classes[level])
        maps = [m[level] for m in (truth, pred) if m is not None]
        rows.append([rgb, *(_paint(m, colours) for m in maps)])
        for k in np.unique(np.concatenate([m.ravel() for m in maps])):
            label = "background" if k == 0 else taxonomy.names[level][int(k) - 1]
            red, green, blue = (int(c) for c in colours[int(k)])
            legend[f"L{level + 1} {label}"] = (red, green, blue)
    titles = ["S2 RGB (median month)", *(["truth"] if truth is not None else []), "prediction"]
    picture_table(
        rows,
        out / f"{patch_id}.png",
        column_titles=titles,
        row_titles=[f"level {level + 1}" for level in range(levels)],
        legend=legend,
        title=patch_id,
    )


def _dataset(predictor: CropPredictor, root: str | Path, split: str, labels: bool) -> CropDataset:
    return CropDataset(
        root,
        split,
        months=predictor.months,
        enmap=predictor.enmap,
        priors=predictor.priors,
        taxonomy=predictor.taxonomy if labels else None,
        stats=predictor.stats,
        labels=labels,
    )


def evaluate_crop(
    data: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    decoding: str | None = None,
    save_predictions: str | Path | None = None,
    batch_size: int = 4,
    device: str = "auto",
    precision: str = "auto",
    num_workers: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Per-level metrics of a crop checkpoint on a split, written to ``out`` (JSON).

    Returns:
        What was written: both schemes' per-level and mean scores, ``valid_paths``, the
        protocol, and what was evaluated (split, patches, decoding, checkpoint).

    Raises:
        DataError: The folder, its labels or the checkpoint do not fit.
    """
    predictor = load_crop_model(checkpoint, device)
    dataset = _dataset(predictor, data, split, labels=True)
    if not len(dataset):
        raise DataError(dataset.folder.root, f"patches in split {split!r}", "none")
    mode = decoding or str(predictor.header.extra.get("decoding", "independent"))
    metrics = CropMetrics(predictor.taxonomy.num_classes, taxonomy_paths(predictor.taxonomy))
    pictures = Path(save_predictions) if save_predictions else None
    if pictures is not None:
        pictures.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for batch in predict_patches(
        predictor,
        dataset,
        decoding=mode,
        batch_size=batch_size,
        num_workers=num_workers,
        precision=precision,
        progress=progress,
    ):
        metrics.update(batch["pred"], batch["label"])
        if pictures is not None:
            for i, patch_id in enumerate(batch["id"]):
                save_patch(
                    pictures,
                    str(patch_id),
                    batch["pred"][i].numpy(),
                    batch["s2"][i].numpy(),
                    predictor.header.bands,
                    predictor.taxonomy,
                    batch["label"][i].numpy(),
                )
    result = metrics.compute(per_class=True)
    result["evaluated"] = {
        "data": str(data),
        "split": split,
        "patches": len(dataset),
        "decoding": mode,
        "months": predictor.months,
        "enmap": predictor.enmap,
        "priors": predictor.priors,
        "checkpoint": str(checkpoint),
        "levels": [
            {"level": i + 1, "classes": k - 1} for i, k in enumerate(predictor.taxonomy.num_classes)
        ],
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_json_atomic(out, result)
    return result


def predict_crop(
    data: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    decoding: str | None = None,
    batch_size: int = 4,
    device: str = "auto",
    precision: str = "auto",
    num_workers: int = 0,
    progress: bool = False,
) -> list[Path]:
    """Per-level maps and pictures of every patch of a split (labels not needed).

    Returns:
        The ``<id>.tif`` maps written into ``out``.
    """
    predictor = load_crop_model(checkpoint, device)
    dataset = _dataset(predictor, data, split, labels=False)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for batch in predict_patches(
        predictor,
        dataset,
        decoding=decoding,
        batch_size=batch_size,
        num_workers=num_workers,
        precision=precision,
        progress=progress,
    ):
        for i, patch_id in enumerate(batch["id"]):
            save_patch(
                folder,
                str(patch_id),
                batch["pred"][i].numpy(),
                batch["s2"][i].numpy(),
                predictor.header.bands,
                predictor.taxonomy,
            )
            written.append(folder / f"{patch_id}.tif")
    return written
