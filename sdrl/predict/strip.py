"""The strip buffer: the only part of the change map held in memory.

Tiles arrive in row-major order (:meth:`StripBuffer.add`). The buffer holds the raster rows
that tiles still write to, ``T + block`` rows at most, for the full width ``W``; once a row of
tiles is done, :meth:`StripBuffer.release` hands out the rows that no later tile can touch
(in whole output blocks, so that each block of the GeoTIFF is written once) and the rest is
shifted up. Its size depends on the tile size
and the raster width, never on the raster height.

Nodata pixels are NaN: NaN times any weight and plus any sum stays NaN, so a pixel that is
nodata in one tile stays nodata whatever else lands on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sdrl.predict.plan import PlannedTile, TilePlan

__all__ = ["StripBuffer"]


class StripBuffer:
    """Accumulate tile probabilities into full-width rows and release the finished ones.

    Args:
        plan: The tile plan.
        stitch: ``"blend"`` (weighted mean) or ``"centre"`` (centre crops).
        block: Output block size: rows are released in multiples of it (except at the end).
        chunk_blocks: Blocks per released piece along a row (bounds the temporary arrays of
            the release and the write, whatever the width).
    """

    def __init__(
        self, plan: TilePlan, stitch: str, block: int = 256, chunk_blocks: int = 8
    ) -> None:
        self.plan = plan
        self.stitch = stitch
        self.block = block
        self.chunk_blocks = chunk_blocks
        width = plan.cols.length
        self.data = np.zeros((min(plan.rows.span + block, plan.rows.length), width), np.float32)
        self.base = 0  # raster row of data[0]
        self.top = 0  # first raster row not yet released
        self.done = 0  # rows before this one are final
        self._col_sum = (
            plan.cols.weight_sum(0, width).astype(np.float32) if stitch == "blend" else None
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, W)`` of the buffer."""
        return (int(self.data.shape[0]), int(self.data.shape[1]))

    def add(self, tile: PlannedTile, prob: np.ndarray) -> None:
        """Add one tile's change probability (tiles must come in the plan's order).

        Args:
            tile: Where the tile lies.
            prob: ``(h, w)`` float32 probability over the tile's raster pixels (``h``/``w``
                are the axes' spans), NaN at nodata.
        """
        self._compact()
        rows, cols = self.plan.rows, self.plan.cols
        h, w = prob.shape
        r = tile.row - self.base
        if self.stitch == "blend":
            weight = np.outer(rows.weights(tile.i), cols.weights(tile.j)).astype(np.float32)
            self.data[r : r + h, tile.col : tile.col + w] += prob * weight
        else:
            (r0, r1), (c0, c1) = rows.keep(tile.i), cols.keep(tile.j)
            self.data[r0 - self.base : r1 - self.base, c0:c1] = prob[
                r0 - tile.row : r1 - tile.row, c0 - tile.col : c1 - tile.col
            ]
        if tile.last_in_row:
            self.done = rows.complete_after(tile.i, self.stitch)

    def release(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """Hand out the finished rows, in whole blocks (and the last rows at the end).

        Yields:
            ``(row, col, probability)``: the top-left raster pixel and the ``(n, w)`` float32
            stitched probability (NaN at nodata) of a piece of the finished rows, at most
            ``block`` rows by ``block × chunk_blocks`` columns, in row-major order.
        """
        length = self.plan.rows.length
        stop = length if self.done == length else self.done // self.block * self.block
        chunk = self.block * self.chunk_blocks
        while self.top < stop:
            row, n = self.top, min(self.block, stop - self.top)
            lines = self.data[row - self.base : row - self.base + n]
            row_sum = None
            if self._col_sum is not None:
                row_sum = self.plan.rows.weight_sum(row, row + n).astype(np.float32)[:, None]
            for col in range(0, lines.shape[1], chunk):
                piece = lines[:, col : col + chunk].copy()
                if self._col_sum is not None:
                    piece /= row_sum
                    piece /= self._col_sum[col : col + chunk]
                yield row, col, piece
            self.top += n
        self._compact()

    def _compact(self) -> None:
        """Drop the released rows: shift the rest up, zero the freed rows."""
        shift = self.top - self.base
        if shift:
            self.data[:-shift] = self.data[shift:]
            self.data[-shift:] = 0
            self.base = self.top
