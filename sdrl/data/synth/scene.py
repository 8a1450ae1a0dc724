"""The layout of a scene: fields, water, roads and buildings on a square canvas.

Built in painter's order, each step overwriting the previous ones:

1. field parcels: a Voronoi partition with boundaries warped by smooth noise, each parcel
   bare soil, vegetation (crops, grass) or forest;
2. water: a lake (thresholded smooth noise) or a meandering river, or none;
3. roads: one to a few straight or gently curving bands crossing the canvas (over water they
   are bridges);
4. buildings: rotated rectangles along the roads (and a few isolated ones), only on soil or
   vegetation; lots left empty are remembered as places where date 2 may build.

All sizes are pixels × ``scale``. Shape letters: ``N`` canvas side.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sdrl.data.synth.geometry import Rect, Road, footprint, pixel_centres, random_road
from sdrl.data.synth.spectra import BUILDING, FOREST, ROAD, SOIL, VEGETATION, WATER
from sdrl.data.synth.surfaces import Surfaces
from sdrl.data.synth.texture import fractal_noise, smooth_noise

__all__ = ["Layout", "make_layout"]

_BUILDABLE = np.zeros(256, dtype=bool)
_BUILDABLE[[SOIL, VEGETATION]] = True


@dataclass
class Layout:
    """Class and object maps of one date of a scene, with what later steps need.

    Attributes:
        classes: ``(N, N)`` uint8 semantic class ids.
        objects: ``(N, N)`` int32 object ids (rows of ``surfaces``).
        roof: ``(N, N)`` bool, the far slope of gable roofs.
        surfaces: Appearance of every object.
        scale: Size factor of the scene.
        parcels: Object ids of the field parcels.
        buildings: Object id → footprint of each standing building.
        vacant: Empty building lots along roads.
        water_field: ``(N, N)`` float32 field whose values above ``water_level`` are water
            (a lake or a river), or ``None`` without water.
        water_level: Threshold of ``water_field``.
        water_step: Typical change of ``water_level`` for a flood or a drought.
        water_id: Object id of the water body (``-1`` without water).
    """

    classes: np.ndarray
    objects: np.ndarray
    roof: np.ndarray
    surfaces: Surfaces
    scale: float
    parcels: list[int] = field(default_factory=list)
    buildings: dict[int, Rect] = field(default_factory=dict)
    vacant: list[Rect] = field(default_factory=list)
    water_field: np.ndarray | None = None
    water_level: float = 0.0
    water_step: float = 0.0
    water_id: int = -1

    @property
    def size(self) -> int:
        """Canvas side ``N``."""
        return int(self.classes.shape[0])

    def copy(self) -> Layout:
        """An independent copy whose maps and lists can be edited (date 2)."""
        return replace(
            self,
            classes=self.classes.copy(),
            objects=self.objects.copy(),
            roof=self.roof.copy(),
            surfaces=self.surfaces.copy(),
            parcels=list(self.parcels),
            buildings=dict(self.buildings),
            vacant=list(self.vacant),
        )

    def buildable(self, rect: Rect) -> bool:
        """Whether every pixel of ``rect`` is bare soil or vegetation."""
        raster = footprint(rect, self.size)
        if raster is None:
            return False
        window, inside, _ = raster
        return bool(_BUILDABLE[self.classes[window][inside]].all())

    def paint(self, rect: Rect, cls: int, obj: int, only: np.ndarray | None = None) -> int:
        """Set the pixels of ``rect`` to a class and object.

        Args:
            rect: Where.
            cls: Class id to paint.
            obj: Object id to paint.
            only: ``(256,)`` bool table of the class ids that may be overwritten (all if ``None``).

        Returns:
            The number of pixels painted.
        """
        raster = footprint(rect, self.size)
        if raster is None:
            return 0
        window, inside, side = raster
        if only is not None:
            inside = inside & only[self.classes[window]]
        self.classes[window][inside] = cls
        self.objects[window][inside] = obj
        self.roof[window][inside] = side[inside]
        return int(inside.sum())

    def build(self, rng: np.random.Generator, rect: Rect) -> int:
        """Put a new building on ``rect`` (its appearance drawn now); returns its object id."""
        obj = self.surfaces.add(rng, BUILDING, self.scale)
        self.paint(rect, BUILDING, obj)
        self.buildings[obj] = rect
        return obj


def _parcels(rng: np.random.Generator, n: int, scale: float, layout: Layout) -> None:
    """Voronoi parcels of seeds jittered on a grid (each pixel checks the 3 × 3 nearby seeds)."""
    cell = 64.0 * scale * rng.uniform(0.8, 1.2)
    grid = int(np.ceil(n / cell)) + 2  # one spare cell on every side
    offsets = rng.uniform(0.05, 0.95, (2, grid, grid))
    seed_y = ((np.arange(grid)[:, None] - 1 + offsets[0]) * cell).astype(np.float32)
    seed_x = ((np.arange(grid)[None, :] - 1 + offsets[1]) * cell).astype(np.float32)
    yy, xx = (g.copy() for g in pixel_centres(n))
    warp = 0.15 * cell
    yy += warp * fractal_noise(rng, n, cell, cell / 4)
    xx += warp * fractal_noise(rng, n, cell, cell / 4)
    home_y = np.clip((yy // cell).astype(np.int64) + 1, 1, grid - 2)
    home_x = np.clip((xx // cell).astype(np.int64) + 1, 1, grid - 2)
    best = np.full((n, n), np.inf, dtype=np.float32)
    nearest = np.zeros((n, n), dtype=np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            index = (home_y + dy) * grid + (home_x + dx)
            distance = (yy - np.take(seed_y, index)) ** 2 + (xx - np.take(seed_x, index)) ** 2
            closer = distance < best
            best[closer] = distance[closer]
            nearest[closer] = index[closer]
    present = np.flatnonzero(np.bincount(nearest.ravel(), minlength=grid * grid))
    compact = np.zeros(grid * grid, dtype=np.int32)
    compact[present] = np.arange(len(present), dtype=np.int32)
    layout.objects[...] = np.take(compact, nearest)
    kinds = rng.choice([SOIL, VEGETATION, FOREST], size=len(present), p=[0.3, 0.47, 0.23])
    for kind in kinds:
        layout.parcels.append(layout.surfaces.add(rng, int(kind), scale))
    layout.classes[...] = layout.surfaces.array("cls")[layout.objects]


def _water(rng: np.random.Generator, n: int, scale: float, layout: Layout) -> None:
    if rng.random() >= 0.6:
        return
    if rng.random() < 0.6:  # a lake
        field_ = smooth_noise(rng, n, max(1, round(n / (90.0 * scale))))
        share = rng.uniform(0.05, 0.2)
        level = float(np.quantile(field_, 1.0 - share))
        step = 0.3
    else:  # a river
        width = rng.uniform(6.0, 20.0) * scale
        river = random_road(rng, n, width, meander=0.15)
        yy, xx = pixel_centres(n)
        _, off = river.offset(yy, xx)
        wobble = 0.15 * width * fractal_noise(rng, n, 32.0 * scale, 4.0 * scale)
        field_ = (width / 2 - np.abs(off) + wobble).astype(np.float32)
        level, step = 0.0, 0.2 * width
    water = field_ > level
    obj = layout.surfaces.add(rng, WATER, scale)
    layout.classes[water] = WATER
    layout.objects[water] = obj
    layout.water_field, layout.water_level, layout.water_step = field_, level, step
    layout.water_id = obj


def _lots(rng: np.random.Generator, n: int, scale: float, road: Road, layout: Layout) -> None:
    """Line both sides of a road with buildings (density drawn per road) and empty lots."""
    density = rng.uniform(0.15, 0.85)
    reach = float(np.hypot(n, n))
    for side in (-1.0, 1.0):
        u = -reach / 2 + rng.uniform(0, 10) * scale
        while u < reach / 2:
            length = rng.uniform(8.0, 22.0) * scale
            width = rng.uniform(7.0, 14.0) * scale
            setback = rng.uniform(2.0, 6.0) * scale
            centre_u = u + length / 2
            row, col, direction = road.frame(
                centre_u, side * (road.width / 2 + setback + width / 2)
            )
            rect = Rect(row, col, length, width, direction + float(rng.normal(0, 0.04)))
            if -length < row < n + length and -length < col < n + length:
                occupied = rng.random() < density
                if layout.buildable(rect):
                    if occupied:
                        layout.build(rng, rect)
                    else:
                        layout.vacant.append(rect)
            u += length + rng.uniform(2.0, 8.0) * scale


def make_layout(rng: np.random.Generator, n: int, scale: float = 1.0) -> Layout:
    """Draw the date-1 layout of a scene.

    Args:
        rng: Random generator (only scalar and ``(N, N)`` draws, so the layout does not depend
            on the band count).
        n: Canvas side ``N`` in pixels.
        scale: Size factor: parcels about 64 px, buildings 8–22 px, roads 4–9 px wide at 1.

    Returns:
        The :class:`Layout`.
    """
    layout = Layout(
        classes=np.zeros((n, n), dtype=np.uint8),
        objects=np.zeros((n, n), dtype=np.int32),
        roof=np.zeros((n, n), dtype=bool),
        surfaces=Surfaces(),
        scale=scale,
    )
    _parcels(rng, n, scale, layout)
    _water(rng, n, scale, layout)
    yy, xx = pixel_centres(n)
    roads = []
    for _ in range(1 + rng.poisson(0.8 * n / (256.0 * scale))):
        road = random_road(rng, n, rng.uniform(4.0, 9.0) * scale, meander=0.08)
        _, off = road.offset(yy, xx)
        on_road = np.abs(off) <= road.width / 2
        layout.classes[on_road] = ROAD
        layout.objects[on_road] = layout.surfaces.add(rng, ROAD, scale)
        roads.append(road)
    for road in roads:
        _lots(rng, n, scale, road, layout)
    for _ in range(rng.poisson(2.0 * (n / (256.0 * scale)) ** 2)):
        side = rng.uniform(8.0, 18.0) * scale
        row, col = rng.uniform(0, n, 2).tolist()
        rect = Rect(row, col, side, side * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi))
        if layout.buildable(rect):
            layout.build(rng, rect)
    return layout
