"""``evaluate(...)``: change metrics of a finetuned model over a split, protocol made explicit.

Shape letters: ``C`` bands, ``H``/``W`` image rows/columns, ``T`` tile size, ``B`` tiles.

Two protocols, which differ by up to a point of F1 on LEVIR-CD, so the JSON always says which:

* ``whole`` (default): every image of the split is predicted whole by a sliding window —
  ``T × T`` tiles (``--tile``, default 512) overlapping by ``--overlap`` pixels (default
  ``min(64, T / 4)``),
  stitched by ``blend`` (weighted mean) or ``centre`` (centre crops). This is the tiling and
  stitching of ``sdrl predict`` (:class:`~sdrl.predict.plan.TilePlan`), applied to the images
  in memory (:func:`~sdrl.predict.windows.predict_windows`). An image no larger than a tile
  is one tile (padded by reflection to a multiple of the model's stride when needed), so
  256-pixel LEVIR tiles are run as they are.
* ``crops``: fixed non-overlapping crops, each run on its own (no context across crops).
  Without ``--tile`` the crop is the image as stored (one pass per image); with ``--tile S``
  the images are cut into ``S × S`` crops (the last one flush with the edge, each pixel
  counted once), e.g. the 256-pixel crops of LEVIR-CD's 1024-pixel images.

Metrics come from one confusion matrix over all pixels of the split
(:class:`~sdrl.metrics.ChangeMetrics`): pixels labelled ignore and pixels that are nodata in
A or B are left out of every count. Images are normalised with the checkpoint's mean/std.
Tiles go through :func:`~sdrl.predict.inference.tile_probabilities`, the inference step of
``sdrl predict``, with the same precision policy (``--precision auto``: bf16 autocast on a
GPU that supports it, float32 on CPU), so the metrics describe the maps ``sdrl predict``
writes. The JSON (written atomically) holds the ⚑ keys and what was evaluated, the device and
precision included (:func:`evaluate`).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sdrl import __version__
from sdrl.checkpoint import file_sha256
from sdrl.data.datasets import ChangeDataset
from sdrl.data.io import read_info, write_raster
from sdrl.data.outputs import check_output
from sdrl.data.staging import write_json_atomic
from sdrl.errors import ConfigError, DataError
from sdrl.metrics import ChangeMetrics, ChangeScores
from sdrl.models.init import tile_multiple
from sdrl.predict.inference import resolve_device, resolve_precision
from sdrl.predict.model import LoadedChangeModel, check_bands, load_change_model
from sdrl.predict.plan import TilePlan
from sdrl.predict.windows import StitchedImage, predict_windows
from sdrl.viz.change import change_comparison

__all__ = ["PROTOCOLS", "Protocol", "evaluate"]

log = logging.getLogger(__name__)

PROTOCOLS = ("whole", "crops")
IGNORE_HANDLING = (
    "pixels labelled ignore in label/ and pixels without data in A or B (their nodata value, "
    "or any band not finite) are left out of every count (tp, fp, fn, tn); 'ignored' counts "
    "them all, 'nodata' those without data"
)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Protocol:
    """How images are cut into model inputs (module doc).

    Attributes:
        name: ``whole`` or ``crops``.
        tile: Tile / crop size ``T``; ``None`` for the default (512 whole, the image crops).
        overlap: Pixels shared by neighbouring tiles (0 for crops).
        stitch: ``blend`` or ``centre`` (centre for crops: each pixel from one crop).
    """

    name: str
    tile: int | None
    overlap: int
    stitch: str

    @classmethod
    def build(
        cls, name: str, tile: int | None, overlap: int | None, stitch: str | None, multiple: int
    ) -> Protocol:
        """Check and complete the settings of protocol ``name``.

        Raises:
            ConfigError: Unknown protocol or stitching, a tile that is not a multiple of the
                model's stride, an overlap outside ``[0, tile)``.
        """
        if name not in PROTOCOLS:
            raise ConfigError(f"--protocol: expected one of {PROTOCOLS}, found {name!r}")
        if tile is not None and (tile < multiple or tile % multiple):
            raise ConfigError(
                f"--tile: expected a multiple of {multiple} (the model's stride), found {tile}"
            )
        if name == "crops":
            if overlap or stitch not in (None, "centre"):
                raise ConfigError("--protocol crops: crops do not overlap; drop --overlap/--stitch")
            return cls(name, tile, 0, "centre")
        tile = 512 if tile is None else tile
        overlap = min(64, tile // 4) if overlap is None else overlap
        if not 0 <= overlap < tile:
            raise ConfigError(f"--overlap: expected 0 <= overlap < --tile {tile}, found {overlap}")
        stitch = stitch or "blend"
        if stitch not in ("blend", "centre"):
            raise ConfigError(f"--stitch: expected blend or centre, found {stitch!r}")
        return cls(name, tile, overlap, stitch)

    def plan(self, height: int, width: int, multiple: int) -> TilePlan:
        """The tiles of one ``H × W`` image."""
        side = _round_up(max(height, width), multiple)
        if self.tile is None or side <= self.tile:
            return TilePlan.build(height, width, side, 0)  # one tile: the image itself
        return TilePlan.build(height, width, self.tile, self.overlap)

    def describe(self) -> dict[str, Any]:
        """The protocol as recorded in ``metrics.json``."""
        size = f"{self.tile}x{self.tile}"
        if self.name == "crops" and self.tile is None:
            text = "each image as stored, in one pass"
        elif self.name == "crops":
            text = f"non-overlapping {size} crops, each run on its own"
        else:
            text = (
                f"whole images by sliding {size} windows overlapping by {self.overlap} px, "
                f"{self.stitch} stitching; images no larger than a window in one pass"
            )
        return {
            "name": self.name,
            "tile": self.tile,
            "overlap": self.overlap,
            "stitch": self.stitch,
            "description": text,
        }


def evaluate(
    data: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    protocol: str = "whole",
    tile: int | None = None,
    overlap: int | None = None,
    stitch: str | None = None,
    threshold: float | None = None,
    batch_size: int = 4,
    save_predictions: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    num_workers: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a finetuned change model on a split and write ``metrics.json``.

    Args:
        data: A change dataset folder.
        checkpoint: A checkpoint of ``sdrl finetune``.
        out: The JSON file to write (atomically; its folder is created).
        split: Split list to evaluate (``test``, ``val``, ``all``...).
        protocol: ``whole`` or ``crops`` (module doc).
        tile: Tile (whole) or crop (crops) size; see the module doc for the defaults.
        overlap: Overlap of the whole protocol's windows (default ``min(64, tile / 4)``).
        stitch: ``blend`` (default) or ``centre`` for the whole protocol.
        threshold: Change probability above which a pixel is change (default: the
            checkpoint's, 0.5).
        batch_size: Tiles per forward pass.
        save_predictions: Folder for each image's predicted map (``<id>.tif`` with A's CRS
            and transform when A is georeferenced, 0/1; ``<id>.png`` otherwise, 0/255) and a
            picture ``<id>_compare.png``: before | after | truth | prediction with true
            positives white, false positives red, false negatives blue, ignored grey.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
        precision: ``auto`` (bf16 autocast on a GPU that supports it, else 16; 32 on CPU),
            ``32``, ``bf16`` or ``16``: that of ``sdrl predict``
            (:mod:`sdrl.predict.inference`).
        num_workers: Data-loader processes reading the images.
        progress: Show a progress bar over images (on a terminal).

    Returns:
        The contents of ``metrics.json``: the ⚑ keys ``precision``, ``recall``, ``f1``,
        ``iou``, ``oa``, ``kappa``, ``tp``, ``fp``, ``fn``, ``tn``, then the threshold-free
        ``average_precision``, ``best_f1`` and ``best_threshold``
        (:class:`~sdrl.metrics.ChangeScores`), ``ignored``,
        ``nodata`` (pixels without data in A or B, among the ignored), ``split``, ``tiles``
        (images), ``pixels`` (evaluated), ``protocol``, ``threshold``, ``ignore_handling``,
        ``ignore_label``, ``inference`` (``device`` and the
        ``precision`` the model ran in: ``32``, ``bf16`` or ``16``), ``checkpoint`` (path,
        sha256, step, model), ``data``, ``sdrl_version``, ``seconds``.

    Raises:
        DataError: A pretraining (or foreign) checkpoint, a band count other than the
            checkpoint's, a missing or empty split, no labelled pixel with data, an output
            that cannot be written or that is (or holds, or lies inside) an input.
        ConfigError: Invalid protocol settings, an unknown device or precision.
    """
    start = time.perf_counter()
    out = check_output(out, [data, checkpoint], folder=False)
    if save_predictions is not None:
        inputs = [data, checkpoint, out]
        check_output(save_predictions, inputs, folder=True, flag="--save-predictions")
    target = resolve_device(device)
    try:
        resolved = resolve_precision(precision, target)
    except ValueError as error:
        raise ConfigError(f"--precision: {error}") from None
    loaded = load_change_model(checkpoint)
    multiple = tile_multiple(loaded.model)
    proto = Protocol.build(protocol, tile, overlap, stitch, multiple)
    if batch_size < 1:
        raise ConfigError(f"--batch-size: expected at least 1, found {batch_size}")
    threshold = loaded.threshold if threshold is None else threshold
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold: expected a probability in [0, 1], found {threshold}")
    dataset = ChangeDataset(data, split, cache_stats=False, with_valid=True)  # never writes DATA
    if len(dataset) == 0:
        raise DataError(dataset.folder.root, f"tiles in split {split!r}", "none")
    check_bands(loaded.header, dataset.num_bands, dataset.folder.root)
    dataset.mean = np.asarray(loaded.mean, dtype=np.float32)[:, None, None]
    dataset.std = np.asarray(loaded.std, dtype=np.float32)[:, None, None]
    saver = _Saver(Path(save_predictions), dataset, loaded) if save_predictions else None
    options = {
        "device": target,
        "precision": resolved,
        "num_workers": num_workers,
        "progress": progress,
        "batch_size": batch_size,
        "threshold": threshold,
    }
    metrics, scores, nodata, images = _run(dataset, loaded, proto, options, saver)
    result: dict[str, Any] = {**metrics.compute(), **scores.compute()}
    pixels = int(sum(result[k] for k in ("tp", "fp", "fn", "tn")))
    if pixels == 0:
        raise DataError(
            dataset.folder.root,
            f"labelled pixels with data in both dates in split {split!r}",
            f"none ({result['ignored']} ignored, {nodata} of them without data)",
            "Metrics of no pixel would be meaningless; check the labels and the nodata values",
        )
    result.update(
        nodata=nodata,
        split=split,
        tiles=len(dataset),
        pixels=pixels,
        protocol=proto.describe(),
        threshold=threshold,
        ignore_handling=IGNORE_HANDLING,
        ignore_label=dataset.meta.ignore_index,
        inference={"device": str(target), "precision": resolved},
        checkpoint={
            "path": str(Path(checkpoint).resolve()),
            "sha256": file_sha256(checkpoint),
            "global_step": loaded.global_step,
            "model": loaded.meta.get("model"),
            "backbone": loaded.meta.get("backbone"),
        },
        data=str(Path(data).resolve()),
        sdrl_version=__version__,
        seconds=round(time.perf_counter() - start, 3),
    )
    if images is not None:
        result.update(_per_image(images))
    write_json_atomic(out, result)
    return result


def _run(
    dataset: ChangeDataset,
    loaded: LoadedChangeModel,
    proto: Protocol,
    options: dict[str, Any],
    saver: _Saver | None,
) -> tuple[ChangeMetrics, ChangeScores, int, dict[str, tuple[ChangeMetrics, ChangeScores]] | None]:
    """Predict every image, tile batch by tile batch; count the outcomes and the nodata pixels.

    Returns:
        The counts and the probability histograms over the split, the nodata pixels, and the
        counts and histograms per image when there are at most :data:`PER_IMAGE_LIMIT` images
        (``None`` beyond).
    """
    target = options["device"]
    model = loaded.model.to(target).eval()
    multiple = tile_multiple(model)
    metrics, scores = ChangeMetrics(), ChangeScores()
    loader = DataLoader(dataset, batch_size=None, num_workers=options["num_workers"])
    show = options["progress"] and sys.stderr.isatty()
    images = (
        StitchedImage(
            sample,
            sample["image_a"].numpy(),
            sample["image_b"].numpy(),
            proto.plan(int(sample["change"].shape[0]), int(sample["change"].shape[1]), multiple),
            proto.stitch,
        )
        for sample in loader
    )
    windows = predict_windows(model, images, options["batch_size"], target, options["precision"])
    nodata = 0
    per_image: dict[str, tuple[ChangeMetrics, ChangeScores]] | None = (
        {} if len(dataset) <= PER_IMAGE_LIMIT else None
    )
    for sample, prob in tqdm(windows, total=len(dataset), unit="image", disable=not show):
        pred = torch.from_numpy(prob > options["threshold"]).long()
        image = (ChangeMetrics(), ChangeScores())
        image[0].update(pred, sample["change"])
        image[1].update(prob, sample["change"].numpy())
        metrics.merge(image[0])
        scores.merge(image[1])
        if per_image is not None:
            per_image[str(sample["id"])] = image
        nodata += int((~sample["valid"]).sum())
        if saver is not None:
            saver.save(sample, pred.numpy().astype(bool))
    return metrics, scores, nodata, per_image


PER_IMAGE_LIMIT = 100
"""Splits of at most this many images also get ``per_image`` metrics in ``metrics.json``."""


def _per_image(images: dict[str, tuple[ChangeMetrics, ChangeScores]]) -> dict[str, Any]:
    """``per_image`` (each image's metrics), ``mean_image_f1`` and ``mean_image_ap``.

    The means are over the images with change. Pooled metrics weigh images by their pixel
    count, so one large image (an OSCD city with seasonal differences everywhere) can decide
    them; the mean over images weighs each alike.
    """
    keys = ("f1", "iou", "precision", "recall", "tp", "fp", "fn", "tn")
    per = {}
    for name, (metrics, scores) in images.items():
        counts = metrics.compute()
        per[name] = {k: counts[k] for k in keys}
        per[name]["average_precision"] = scores.compute()["average_precision"]
    with_change = [v for v in per.values() if v["tp"] + v["fn"] > 0]

    def mean(key: str) -> float:
        return float(np.mean([v[key] for v in with_change])) if with_change else float("nan")

    return {
        "per_image": per,
        "mean_image_f1": mean("f1"),
        "mean_image_ap": mean("average_precision"),
    }


class _Saver:
    """Writes each image's predicted map and comparison picture (see :func:`evaluate`)."""

    def __init__(self, folder: Path, dataset: ChangeDataset, loaded: LoadedChangeModel) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(folder, "a folder for the predictions", f"'{error}'") from None
        self.folder, self.dataset = folder, dataset
        self.bands = list(loaded.meta.get("bands") or dataset.meta.bands)

    def save(self, sample: dict[str, Any], pred: np.ndarray) -> None:
        tile_id = str(sample["id"])
        info = read_info(self.dataset.folder.path("A", tile_id))
        if info.georeferenced:
            path = self.folder / f"{tile_id}.tif"
            write_raster(
                path, pred.astype(np.uint8), info.crs, info.transform, band_names=["change"]
            )
        else:
            write_raster(self.folder / f"{tile_id}.png", pred.astype(np.uint8) * 255)
        picture = change_comparison(
            sample["image_a"].numpy(),
            sample["image_b"].numpy(),
            sample["change"].numpy(),
            pred,
            self.bands,
        )
        write_raster(self.folder / f"{tile_id}_compare.png", picture)
