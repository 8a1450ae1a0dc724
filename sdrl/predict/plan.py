"""The tile plan of a sliding-window prediction: where tiles go and how they are stitched.

A plan is the product of two 1-D plans (rows and columns). Along an axis of ``L`` pixels,
tiles of ``T`` pixels start every ``T - overlap`` pixels and the last one is shifted to end
flush with the raster edge, so every pixel is covered and no tile reads outside the raster.
An axis shorter than a tile gets one tile of ``L`` pixels that the engine pads to ``T``.

Two ways to stitch the overlapping tile predictions:

* ``"centre"``: each pixel is taken from one tile only. Consecutive tiles split their overlap
  at its middle, so every kept pixel lies at least ``overlap // 2`` pixels inside its tile
  (except at the raster's own edges, where the tile's border is kept).
* ``"blend"``: a weighted mean of every tile covering the pixel. A tile's 1-D weight is 1 in
  its interior and rises as a raised cosine ``sin²(π(k + ½) / 2·overlap)`` over the
  ``overlap`` pixels next to a neighbouring tile (never towards the raster edge, where no
  other tile can take over). Weights are > 0 everywhere and the 2-D weight is the outer
  product of the row and column weights, so the sum of weights over all tiles is separable
  too and needs no accumulator of its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["AxisPlan", "TilePlan", "check_tiling"]


def check_tiling(tile: int, overlap: int) -> None:
    """Validate a tile size and overlap.

    Raises:
        ValueError: ``tile < 1``, ``overlap < 0`` or ``overlap >= tile``.
    """
    if tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile) = [0, {tile}), got {overlap}")


def _ramp(n: int) -> np.ndarray:
    """``(n,)`` raised-cosine rise from just above 0 to just below 1."""
    k = np.arange(n, dtype=np.float64)
    return np.sin(np.pi * (k + 0.5) / (2 * n)) ** 2


@dataclass(frozen=True)
class AxisPlan:
    """Tile offsets along one axis and their stitching.

    Attributes:
        length: Raster pixels ``L`` along the axis.
        tile: Tile size ``T``.
        overlap: Pixels shared by consecutive tiles (the last pair may share more).
        offsets: Start of each tile, ascending; the last tile ends at ``min(L, T)`` past it.
    """

    length: int
    tile: int
    overlap: int
    offsets: tuple[int, ...]

    @classmethod
    def build(cls, length: int, tile: int, overlap: int) -> AxisPlan:
        """Plan an axis of ``length`` pixels with tiles of ``tile`` pixels."""
        check_tiling(tile, overlap)
        if length < 1:
            raise ValueError(f"cannot tile an axis of {length} pixels")
        if length <= tile:
            return cls(length, tile, overlap, (0,))
        offsets = list(range(0, length - tile + 1, tile - overlap))
        if offsets[-1] != length - tile:
            offsets.append(length - tile)  # flush with the edge
        return cls(length, tile, overlap, tuple(offsets))

    @property
    def span(self) -> int:
        """Raster pixels inside one tile: ``min(T, L)`` (the rest is padding)."""
        return min(self.tile, self.length)

    def keep(self, i: int) -> tuple[int, int]:
        """Raster interval ``[start, stop)`` that tile ``i`` owns under centre stitching."""
        o = self.offsets
        start = 0 if i == 0 else (o[i - 1] + self.span + o[i]) // 2
        stop = self.length if i == len(o) - 1 else (o[i] + self.span + o[i + 1]) // 2
        return start, stop

    @cached_property
    def _rise(self) -> np.ndarray:
        return _ramp(self.overlap)

    def weights(self, i: int) -> np.ndarray:
        """``(span,)`` float64 blending weights of tile ``i``, all > 0."""
        w = np.ones(self.span)
        n = min(self.overlap, self.span)
        if n and i > 0:
            w[:n] *= self._rise[:n]
        if n and i < len(self.offsets) - 1:
            w[self.span - n :] *= self._rise[:n][::-1]
        return w

    def weight_sum(self, start: int, stop: int) -> np.ndarray:
        """``(stop - start,)`` float64 sum of every tile's weights over ``[start, stop)``."""
        total = np.zeros(stop - start)
        first = bisect.bisect_right(self.offsets, start - self.span)
        for i in range(first, len(self.offsets)):
            lo = self.offsets[i]
            if lo >= stop:
                break
            a, b = max(lo, start), min(lo + self.span, stop)
            if a < b:
                total[a - start : b - start] += self.weights(i)[a - lo : b - lo]
        return total

    def complete_after(self, i: int, stitch: str) -> int:
        """Rows before this index receive nothing from tiles after tile ``i``."""
        if i == len(self.offsets) - 1:
            return self.length
        return self.keep(i)[1] if stitch == "centre" else self.offsets[i + 1]


@dataclass(frozen=True)
class PlannedTile:
    """One tile of a plan.

    Attributes:
        index: Position in row-major order.
        i: Tile row index.
        j: Tile column index.
        row: First raster row.
        col: First raster column.
        last_in_row: Whether it ends its row of tiles (the strip may then be flushed).
    """

    index: int
    i: int
    j: int
    row: int
    col: int
    last_in_row: bool


@dataclass(frozen=True)
class TilePlan:
    """Overlapping tiles over an ``H × W`` raster, in row-major order.

    Attributes:
        rows: Plan of the row axis (``H``).
        cols: Plan of the column axis (``W``).
    """

    rows: AxisPlan
    cols: AxisPlan

    @classmethod
    def build(cls, height: int, width: int, tile: int, overlap: int) -> TilePlan:
        """Plan an ``H × W`` raster (see the module docstring)."""
        return cls(AxisPlan.build(height, tile, overlap), AxisPlan.build(width, tile, overlap))

    def __len__(self) -> int:
        return len(self.rows.offsets) * len(self.cols.offsets)

    def __iter__(self) -> Iterator[PlannedTile]:
        n_cols = len(self.cols.offsets)
        for i, row in enumerate(self.rows.offsets):
            for j, col in enumerate(self.cols.offsets):
                yield PlannedTile(i * n_cols + j, i, j, row, col, j == n_cols - 1)
