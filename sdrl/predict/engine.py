"""Georeferenced change prediction on a before/after pair of any size.

Shape letters: ``B`` tiles per batch, ``C`` bands, ``K`` logit channels (1 for a sigmoid
model, 2 for a softmax model whose class 1 is change), ``T`` tile size, ``H``/``W`` raster.

Memory: at most two batches of tiles (``2 × B × (2C + 1) × T²`` float32: the one in the
model and the one being read ahead in a thread), the model's activations on one batch, the
strip buffer (``(T + 256) × W`` float32, see :mod:`sdrl.predict.strip`), the pieces waiting
for the writing thread (:data:`~sdrl.predict.writer.IN_FLIGHT` × 256 × 2048) and a GDAL
block cache capped at :data:`GDAL_CACHE_MB`. None of it depends on the raster height; only
the strip depends on the width (3 MB per 1000 columns at ``T = 512``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import torch
from torch import nn
from tqdm.auto import tqdm

from sdrl.predict.inference import resolve_precision, tile_probabilities
from sdrl.predict.plan import PlannedTile, TilePlan, check_tiling
from sdrl.predict.reader import PairReader
from sdrl.predict.strip import StripBuffer
from sdrl.predict.writer import OUTPUTS, ChangeMapWriter, check_output_path

__all__ = ["GDAL_CACHE_MB", "PredictResult", "predict_change"]

GDAL_CACHE_MB = 32
"""GDAL's raster block cache during prediction (its default, 5% of RAM, would grow with
the raster as blocks are read and written)."""

Batch = tuple[list[PlannedTile], np.ndarray]


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_change` wrote.

    Attributes:
        out: The change map file.
        height: Rows ``H`` (those of ``before``).
        width: Columns ``W``.
        tiles: Number of tiles run through the model.
        seconds: Wall time of the whole prediction.
        changed_fraction: Share of valid (not nodata) pixels above the threshold.
        strip_shape: ``(rows, W)`` of the strip buffer: what memory held of the map.
        precision: What the model ran in: ``32``, ``bf16`` or ``16``
            (:func:`~sdrl.predict.inference.resolve_precision`).
        nodata_pixels: Pixels of the map without data (nodata or non-finite in either input),
            also recorded in the GeoTIFF tags (``nodata_pixels``, ``valid_pixels``).
    """

    out: Path
    height: int
    width: int
    tiles: int
    seconds: float
    changed_fraction: float
    strip_shape: tuple[int, int]
    precision: str
    nodata_pixels: int = 0

    def summary(self) -> str:
        """One line for the command line."""
        head = f"wrote {self.out} ({self.height}x{self.width}, {self.tiles} tiles, "
        head += f"{self.seconds:.1f} s): "
        if self.nodata_pixels >= self.height * self.width:
            return head + "no pixel with data in both inputs (all nodata)"
        text = f"{100 * self.changed_fraction:.2f}% changed"
        if self.nodata_pixels:
            share = 100 * self.nodata_pixels / (self.height * self.width)
            text += f" of the pixels with data ({self.nodata_pixels} nodata, {share:.2f}%)"
        return head + text


def _batches(plan: TilePlan, reader: PairReader, batch_size: int) -> Iterator[Batch]:
    """Tiles in row-major order, read ``batch_size`` at a time: ``(tiles, (B, 2C+1, T, T))``."""
    tiles = iter(plan)
    h, w, t = plan.rows.span, plan.cols.span, plan.rows.tile
    while chunk := list(islice(tiles, batch_size)):
        yield chunk, np.stack([reader.read(p.row, p.col, h, w, t) for p in chunk])


def _prefetch(batches: Iterator[Batch], pool: ThreadPoolExecutor) -> Iterator[Batch]:
    """Read the next batch in a thread while the caller runs the model on this one."""
    pending: Future[Batch | None] = pool.submit(next, batches, None)
    while (batch := pending.result()) is not None:
        pending = pool.submit(next, batches, None)
        yield batch


def predict_change(
    model: nn.Module,
    before: str | Path,
    after: str | Path,
    out: str | Path,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    stitch: Literal["blend", "centre"] = "blend",
    align: bool = False,
    outputs: Sequence[str] = OUTPUTS,
    threshold: float = 0.5,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    progress: bool = True,
) -> PredictResult:
    """Predict a change map for two rasters of any size, tile by tile, into a GeoTIFF.

    The rasters are read window by window, never whole. Overlapping ``tile × tile`` windows
    cover ``before``'s grid (see :mod:`sdrl.predict.plan`; rasters smaller than a tile are
    padded by reflection and cropped back); each is normalised per band as the datasets do
    (``(x - mean) / std``, nodata pixels 0), run through ``model(image_a, image_b)`` in
    batches by :func:`~sdrl.predict.inference.tile_probabilities` (the inference step of
    ``sdrl evaluate`` too) and stitched into the output file. GeoTIFFs
    (best tiled) read fast at any size; PNG has no random access: keep PNG inputs small.

    Args:
        model: A change model: ``model(image_a (B, C, T, T), image_b (B, C, T, T))`` returns
            ``(B, K, T, T)`` logits, ``K = 1`` (sigmoid) or ``2`` (softmax, class 1 change).
            It is put in eval mode and moved to ``device`` (its mode is restored after).
        before: Date-1 raster (GeoTIFF, PNG...); the output has its grid, CRS and transform.
        after: Date-2 raster, on the same grid unless ``align``.
        out: Output ``.tif`` (or ``.png`` for a small binary map without georeferencing).
        mean: ``(C,)`` per-band mean the model was trained with.
        std: ``(C,)`` per-band standard deviation.
        tile: Tile size ``T`` fed to the model.
        overlap: Pixels shared by neighbouring tiles, ``0 <= overlap < tile``.
        batch_size: Tiles per forward pass ``B``.
        stitch: ``"blend"`` (weighted mean of overlapping tiles) or ``"centre"`` (each
            pixel from the tile it is most central in).
        align: Reproject ``after`` onto ``before``'s grid (bilinear) when the grids differ.
        outputs: Bands to write: ``"probability"`` and/or ``"binary"``.
        threshold: Probability above which a pixel is change in the binary band.
        device: Torch device.
        precision: ``auto`` (``bf16`` autocast on a CUDA GPU that supports it, ``16`` on
            older GPUs, ``32`` on CPU), ``32``, ``bf16`` or ``16``; see
            :mod:`sdrl.predict.inference`. Recorded in the GeoTIFF tags.
        progress: Show a progress bar over tiles (only on a terminal).

    Returns:
        A :class:`PredictResult`.

    Raises:
        DataError: Unreadable inputs, grids that differ (without ``align``) or cannot be
            aligned, different band counts, ``mean``/``std`` not matching the band count,
            or an output path that cannot be written (all before any computation).
        ValueError: Invalid ``tile``/``overlap``/``batch_size``/``stitch``/``outputs``/
            ``threshold``/``precision``, or a model whose output is not ``(B, 1|2, T, T)``.
    """
    start = time.perf_counter()
    check_tiling(tile, overlap)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if stitch not in ("blend", "centre"):
        raise ValueError(f"stitch must be 'blend' or 'centre', got {stitch!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    out = Path(out)
    check_output_path(out, outputs, inputs=(Path(before), Path(after)))
    device = torch.device(device)
    resolved = resolve_precision(precision, device)
    was_training = model.training
    with ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20))
        reader = PairReader(before, after, mean, std, align, stack)
        info = reader.info
        plan = TilePlan.build(info.height, info.width, tile, overlap)
        strip = StripBuffer(plan, stitch)
        tags = {
            "stitch": stitch,
            "tile": tile,
            "overlap": overlap,
            "threshold": threshold,
            "precision": resolved,
        }
        writer = stack.enter_context(
            ChangeMapWriter(
                out, info.height, info.width, info.crs, info.transform, outputs, threshold, tags
            )
        )
        pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="sdrl-read"))
        bar = stack.enter_context(
            tqdm(
                total=len(plan),
                unit="tile",
                desc="predict",
                disable=not (progress and sys.stderr.isatty()),
            )
        )
        model.eval().to(device)
        stack.callback(model.train, was_training)
        c = reader.count
        h, w = plan.rows.span, plan.cols.span
        for tiles, data in _prefetch(_batches(plan, reader, batch_size), pool):
            x = torch.from_numpy(data)
            prob = tile_probabilities(model, x[:, :c], x[:, c : 2 * c], device, resolved).numpy()
            prob = np.where(data[:, 2 * c] > 0, prob, np.float32(np.nan))
            for p, tile_prob in zip(tiles, prob, strict=True):
                strip.add(p, tile_prob[:h, :w])
                for row, col, piece in strip.release():
                    writer.write(row, col, piece)
            bar.update(len(tiles))
    return PredictResult(
        out=out,
        height=info.height,
        width=info.width,
        tiles=len(plan),
        seconds=time.perf_counter() - start,
        changed_fraction=writer.changed / writer.valid if writer.valid else 0.0,
        strip_shape=strip.shape,
        precision=resolved,
        nodata_pixels=info.height * info.width - writer.valid,
    )
