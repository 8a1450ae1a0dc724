"""Sliding-window inference on images held in memory, with the tiling of ``sdrl predict``.

Shape letters: ``C`` bands, ``H``/``W`` image rows/columns, ``T`` tile size, ``B`` tiles.

:func:`predict_windows` runs a change model over the tiles of many images (each with its own
:class:`~sdrl.predict.plan.TilePlan`), batching tiles across image boundaries, and yields each
image's stitched change probability as soon as its last tile is done. Tiles smaller than ``T``
(images smaller than a tile) are padded by reflection and cropped back, and the stitching is
that of the raster engine: ``blend`` (the plan's raised-cosine weights, normalised by their
sum) or ``centre`` (each pixel from the tile it is most central in).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from sdrl.predict.inference import resolve_device, resolve_precision, tile_probabilities
from sdrl.predict.plan import PlannedTile, TilePlan

__all__ = ["StitchedImage", "predict_windows"]


class StitchedImage:
    """One image being predicted: its tiles' probabilities stitched into ``(H, W)``.

    Args:
        key: Anything that identifies the image to the caller (returned with the result).
        image_a: ``(C, H, W)`` float32 date 1, normalised.
        image_b: ``(C, H, W)`` float32 date 2.
        plan: Its tiles.
        stitch: ``blend`` or ``centre``.
    """

    def __init__(
        self, key: Any, image_a: np.ndarray, image_b: np.ndarray, plan: TilePlan, stitch: str
    ) -> None:
        if stitch not in ("blend", "centre"):
            raise ValueError(f"stitch must be 'blend' or 'centre', got {stitch!r}")
        self.key, self.plan, self.stitch = key, plan, stitch
        self.image = np.concatenate([image_a, image_b]).astype(np.float32, copy=False)
        self.prob = np.zeros((plan.rows.length, plan.cols.length), dtype=np.float64)
        self.pending = len(plan)

    def tiles(self) -> Iterator[tuple[PlannedTile, np.ndarray]]:
        """``(tile, (2C, T, T) float32 input)`` for each planned tile, in row-major order."""
        t, h, w = self.plan.rows.tile, self.plan.rows.span, self.plan.cols.span
        for p in self.plan:
            x = self.image[:, p.row : p.row + h, p.col : p.col + w]
            if (h, w) != (t, t):
                x = np.pad(x, ((0, 0), (0, t - h), (0, t - w)), mode="reflect")
            yield p, np.ascontiguousarray(x)

    def add(self, p: PlannedTile, prob: np.ndarray) -> bool:
        """Add a tile's ``(T, T)`` probability; return whether the image is complete."""
        rows, cols = self.plan.rows, self.plan.cols
        prob = prob[: rows.span, : cols.span]
        if self.stitch == "blend":
            weight = np.outer(rows.weights(p.i), cols.weights(p.j))
            self.prob[p.row : p.row + rows.span, p.col : p.col + cols.span] += prob * weight
        else:
            (r0, r1), (c0, c1) = rows.keep(p.i), cols.keep(p.j)
            self.prob[r0:r1, c0:c1] = prob[r0 - p.row : r1 - p.row, c0 - p.col : c1 - p.col]
        self.pending -= 1
        if self.pending == 0 and self.stitch == "blend":
            self.prob /= np.outer(rows.weight_sum(0, rows.length), cols.weight_sum(0, cols.length))
        return self.pending == 0


def predict_windows(
    model: nn.Module,
    images: Iterable[StitchedImage],
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    precision: str = "auto",
) -> Iterator[tuple[Any, np.ndarray]]:
    """Change probabilities of images, tile batch by tile batch.

    Each batch goes through :func:`~sdrl.predict.inference.tile_probabilities`, the inference
    step of :func:`~sdrl.predict.engine.predict_change`: the same precision gives the same
    tile probabilities.

    Args:
        model: ``model(image_a (B, C, T, T), image_b (B, C, T, T))`` → ``(B, K, T, T)``
            logits, ``K = 1`` (sigmoid) or 2 (softmax, class 1 change); used as it is (put it
            in eval mode and on ``device`` first).
        images: The images, read lazily (one is held per tile batch, plus the unfinished).
        batch_size: Tiles per forward pass ``B``.
        device: Where the tiles go.
        precision: ``auto``, ``32``, ``bf16`` or ``16`` (:mod:`sdrl.predict.inference`).

    Yields:
        ``(key, probability (H, W) float64)`` per image, in input order.

    Raises:
        ValueError: ``batch_size < 1``, an unknown precision, a model whose output is not
            ``(B, 1|2, T, T)``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    target = resolve_device(device)
    resolved = resolve_precision(precision, target)
    queue: list[tuple[StitchedImage, PlannedTile, np.ndarray]] = []

    def flush() -> Iterator[tuple[Any, np.ndarray]]:
        x = torch.from_numpy(np.stack([q[2] for q in queue]))
        c = x.shape[1] // 2
        prob = tile_probabilities(model, x[:, :c], x[:, c:], target, resolved).numpy()
        for (image, p, _), tile_prob in zip(queue, prob, strict=True):
            if image.add(p, tile_prob):
                yield image.key, image.prob
        queue.clear()

    for image in images:
        for p, x in image.tiles():
            if queue and x.shape != queue[0][2].shape:  # an image smaller than the window
                yield from flush()
            queue.append((image, p, x))
            if len(queue) == batch_size:
                yield from flush()
    if queue:
        yield from flush()
