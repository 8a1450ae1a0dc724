"""Geometry of scene objects: rotated rectangles (buildings, lots) and roads (or rivers).

Coordinates are canvas pixels ``(row, col)`` with pixel centres at ``+0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

__all__ = ["Rect", "Road", "footprint", "pixel_centres", "random_road"]


@lru_cache(maxsize=8)
def pixel_centres(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)``: two read-only ``(N, N)`` float32 grids of pixel-centre coordinates."""
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32) + np.float32(0.5)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


@dataclass(frozen=True)
class Rect:
    """A rotated rectangle (a building footprint or an empty lot).

    Attributes:
        cy: Centre row (pixels, may be fractional).
        cx: Centre column.
        length: Side along ``angle``.
        width: Side across ``angle``.
        angle: Direction of the long side, radians from the column axis.
    """

    cy: float
    cx: float
    length: float
    width: float
    angle: float

    def grown(self, margin: float) -> Rect:
        """The same rectangle with ``margin`` pixels added on every side."""
        return replace(self, length=self.length + 2 * margin, width=self.width + 2 * margin)


def footprint(rect: Rect, n: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """Rasterise a rectangle on an ``n × n`` canvas.

    Args:
        rect: The rectangle.
        n: Canvas side.

    Returns:
        ``(window, inside, side)``: the bounding-box slices, an ``(h, w)`` bool mask of the
        pixels inside, and an ``(h, w)`` bool mask of the half on one side of the long axis
        (the far slope of a gable roof); ``None`` when the rectangle misses the canvas.
    """
    radius = 0.5 * float(np.hypot(rect.length, rect.width)) + 1
    y0, y1 = max(int(rect.cy - radius), 0), min(int(rect.cy + radius) + 2, n)
    x0, x1 = max(int(rect.cx - radius), 0), min(int(rect.cx + radius) + 2, n)
    if y0 >= y1 or x0 >= x1:
        return None
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - rect.cy
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - rect.cx
    cos, sin = np.cos(rect.angle), np.sin(rect.angle)
    along = dx * cos + dy * sin
    across = dy * cos - dx * sin
    inside = (np.abs(along) <= rect.length / 2) & (np.abs(across) <= rect.width / 2)
    if not inside.any():
        return None
    return (slice(y0, y1), slice(x0, x1)), inside, across > 0


@dataclass(frozen=True)
class Road:
    """A road: centre line ``v = amp · sin(freq · u + phase)`` in a frame rotated by ``angle``."""

    py: float
    px: float
    angle: float
    amp: float
    freq: float
    phase: float
    width: float

    def offset(self, yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(u, v − centre(u))``: position along the road and signed distance from it."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        u = (xx - self.px) * cos + (yy - self.py) * sin
        v = (yy - self.py) * cos - (xx - self.px) * sin
        return u, v - self.amp * np.sin(self.freq * u + self.phase)

    def frame(self, u: float, v: float) -> tuple[float, float, float]:
        """Canvas ``(row, col, direction)`` of the point ``v`` pixels off the centre at ``u``."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        v = v + self.amp * np.sin(self.freq * u + self.phase)
        slope = self.amp * self.freq * np.cos(self.freq * u + self.phase)
        row = self.py + u * sin + v * cos
        col = self.px + u * cos - v * sin
        return float(row), float(col), float(self.angle + np.arctan(slope))


def random_road(rng: np.random.Generator, n: int, width: float, meander: float) -> Road:
    """A road (or river) through the middle 60% of an ``n × n`` canvas, straight or meandering.

    Args:
        rng: Random generator.
        n: Canvas side in pixels.
        width: Width in pixels.
        meander: Largest meander amplitude as a share of ``n``.

    Returns:
        The :class:`Road`.
    """
    straight = rng.random() < 0.5
    return Road(
        py=float(rng.uniform(0.2, 0.8) * n),
        px=float(rng.uniform(0.2, 0.8) * n),
        angle=float(rng.uniform(0, np.pi)),
        amp=0.0 if straight else float(rng.uniform(0.02, meander) * n),
        freq=float(2 * np.pi / (n * rng.uniform(0.8, 2.0))),
        phase=float(rng.uniform(0, 2 * np.pi)),
        width=float(width),
    )
