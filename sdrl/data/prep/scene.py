"""One scene of ``sdrl prep pairs``: a before/after raster pair, masked and cut into tiles.

A scene is read window by window (memory does not grow with the raster), cut into tiles
(:func:`~sdrl.data.tiling.tile_grid`) and written with each tile's own georeferencing into a
dataset folder being built, tile ids ``<scene>_<row>_<col>``. :func:`write_scene` is the unit
of work of :mod:`~sdrl.data.prep.collection`: it runs in a worker process, writes only its
own tiles, and returns what the folder's ``dataset.json`` needs (band moments, label counts,
nodata counts, provenance), so scenes can be written in any order and in parallel. A scene's
files depend only on the scene and the options, never on the other scenes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError

from sdrl.data.grid import align_to, check_same_grid
from sdrl.data.io import Raster, RasterInfo, read_info, read_raster
from sdrl.data.masks.indices import index_mask
from sdrl.data.masks.kmeans import SpectralKMeans, sample_spectra, valid_pixels
from sdrl.data.masks.label import LabelRaster
from sdrl.data.masks.vector import VectorLabels
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.stats import BandMoments
from sdrl.data.tiling import Tile, tile_grid
from sdrl.data.writer import DatasetWriter
from sdrl.errors import ConfigError, DataError

__all__ = ["Scene", "SceneOptions", "SceneResult", "inspect_scene", "sample_scene", "write_scene"]

VECTOR_SUFFIXES = (".geojson", ".json")


@dataclass(frozen=True)
class Scene:
    """One before/after pair of a collection.

    Attributes:
        name: Tile id prefix (ids are ``<name>_<row>_<col>``), unique in the collection.
        before: Image at time 1 (its grid is the scene's grid).
        after: Image at time 2, same bands.
        labels: Label raster or GeoJSON of A (the change labels for ``kind="change"``).
        labels_after: Label raster or GeoJSON of B.
        origin: Where the pair was listed (``pairs.csv line 4``), named in its errors;
            ``None`` for a pair given on its own, whose errors name only the files.
        description: How errors name the scene, instead of its origin and files (a recipe
            whose files are intermediate, e.g. an OSCD city stacked into a temporary file).
        record: The scene's provenance entries instead of its ``before``/``after`` paths.
    """

    name: str
    before: Path
    after: Path
    labels: Path | None = None
    labels_after: Path | None = None
    origin: str | None = None
    description: str | None = None
    record: Mapping[str, Any] | None = None

    def inputs(self) -> list[Path]:
        """The scene's files."""
        return [p for p in (self.before, self.after, self.labels, self.labels_after) if p]

    def describe(self) -> str | None:
        """``scene 'NAME' (ORIGIN: before=..., after=...)``, or ``None`` without an origin."""
        if self.description is not None or self.origin is None:
            return self.description
        parts = [f"before={self.before}", f"after={self.after}"]
        parts += [f"labels={self.labels}"] if self.labels else []
        parts += [f"labels_after={self.labels_after}"] if self.labels_after else []
        return f"scene '{self.name}' ({self.origin}: {', '.join(parts)})"


@dataclass(frozen=True)
class SceneOptions:
    """How every scene of a collection is masked and tiled (resolved by the collection).

    Attributes:
        kind: ``pretrain`` or ``change``.
        source: ``labels``, ``indices`` or ``kmeans``.
        k: Number of k-means clusters (``kmeans`` only).
        tile: Tile size in pixels.
        stride: Step between tiles; ``tile`` when ``None``.
        align: Reproject ``after`` onto ``before``'s grid when they differ.
        band_names: The dataset's band names.
        check_band_names: Refuse a scene whose files name other bands (no ``--band-names``).
        nodata: Nodata value given by the user for every file, else each file's own is used.
        fill: Nodata value of the written tiles, put into every pixel without data.
        label_options: ``classes``, ``label_values``, ``ignore_value``, ``class_property``,
            ``all_touched`` of the label sources.
        seed: Seed of k-means (per scene).
        kmeans_sample: Pixels sampled per scene (over both dates) to fit k-means.
        thresholds: ``ndvi_threshold``, ``ndwi_threshold``, ``ndbi_threshold`` of ``indices``.
    """

    kind: str
    source: str
    k: int
    tile: int
    stride: int | None
    align: bool
    band_names: tuple[str, ...]
    check_band_names: bool
    nodata: float | None
    fill: float | None
    label_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    kmeans_sample: int = 100_000
    thresholds: dict[str, float] = field(default_factory=dict)


@dataclass
class SceneResult:
    """What :func:`write_scene` wrote, for the folder's split and ``dataset.json``.

    Attributes:
        name: The scene's name (tile id prefix).
        tiles: Tiles written (with data on both dates), in grid order.
        grid: Number of tiles in the scene's grid.
        nodata: ``(2,)`` pixels without data in A and B, per written tile.
        moments: Band moments of the written images (both dates).
        label_counts: Label part → pixel count per raw value written.
        provenance: The scene's entries for ``dataset.json``.
        crs: CRS of the scene, as a string.
        gsd: Ground sampling distance in metres, when the CRS is projected.
    """

    name: str
    tiles: list[Tile]
    grid: int
    nodata: list[np.ndarray]
    moments: BandMoments | None
    label_counts: dict[str, np.ndarray]
    provenance: dict[str, Any]
    crs: str | None
    gsd: float | None

    def tile_ids(self) -> list[str]:
        """The written tiles' ids."""
        return [t.tile_id(self.name) for t in self.tiles]


def _gsd(crs: CRS | None, resolution: tuple[float, float]) -> float | None:
    if crs is None or not crs.is_projected:
        return None
    try:
        factor = crs.linear_units_factor[1]
    except CRSError:
        return None
    return float((resolution[0] + resolution[1]) / 2 * factor)


def inspect_scene(
    scene: Scene, align: bool, band_names: Sequence[str] | None = None
) -> tuple[RasterInfo, RasterInfo, bool]:
    """Check a scene's two images without reading pixels.

    Args:
        scene: The scene.
        align: Whether ``after`` may be reprojected onto ``before``'s grid.
        band_names: Names given for the bands (their count is checked).

    Returns:
        ``(info of before, info of after, same grid)``.

    Raises:
        DataError: Band counts or grids that do not fit.
        ConfigError: ``band_names`` of another length than the bands.
    """
    info_a, info_b = read_info(scene.before), read_info(scene.after)
    if info_b.count != info_a.count:
        expected = f"{info_a.count} bands like {scene.before.name}"
        raise DataError(scene.after, expected, f"{info_b.count} bands")
    same_grid = check_same_grid(info_a, info_b, align=align)
    if band_names is not None and len(band_names) != info_a.count:
        raise ConfigError(f"--band-names: {info_a.count} names expected, found {len(band_names)}")
    return info_a, info_b, same_grid


@dataclass
class _Pair:
    """The before/after rasters, read window by window onto A's grid."""

    info_a: RasterInfo
    info_b: RasterInfo
    same_grid: bool
    override: float | None
    """Nodata value given by the user for both files, else each file's own is used."""
    fill: float | None
    """Nodata value of the written tiles, put into every pixel without data."""

    def read(self, tile: Tile) -> tuple[Raster, Raster, np.ndarray, np.ndarray]:
        """``(A, B, valid_a (h, w), valid_b (h, w))`` of one tile, nodata set to ``fill``."""
        window = tile.window
        a = read_raster(self.info_a.path, window=window)
        if self.same_grid:
            b = read_raster(self.info_b.path, window=window)
        else:
            b = align_to(self.info_b.path, self.info_a, Resampling.bilinear, window, self.fill)
        valid = []
        for raster in (a, b):
            ok = valid_pixels(
                raster.data, self.override if self.override is not None else raster.nodata
            )
            if self.fill is not None and not ok.all():
                raster.data[:, ~ok] = self.fill
            valid.append(ok)
        return a, b, valid[0], valid[1]

    def tiles(self, grid: Sequence[Tile]) -> Iterator[tuple[Tile, Raster, Raster, np.ndarray]]:
        """Tiles with data on both dates: ``(tile, A, B, valid (2, h, w))``."""
        for tile in grid:
            a, b, valid_a, valid_b = self.read(tile)
            if (valid_a & valid_b).any():
                yield tile, a, b, np.stack([valid_a, valid_b])


def _open(scene: Scene, options: SceneOptions) -> tuple[_Pair, list[Tile]]:
    """The scene's pair reader and tile grid, its band names checked."""
    info_a, info_b, same_grid = inspect_scene(scene, options.align)
    names = info_a.band_names
    if options.check_band_names and tuple(names) != options.band_names:
        raise DataError(
            scene.before,
            f"the bands of the first scene, {list(options.band_names)}",
            f"{list(names)}",
            "Pass --band-names when the files hold the same bands in the same order",
        )
    grid = list(tile_grid(info_a.height, info_a.width, options.tile, options.stride))
    if not grid:
        size = f"{info_a.height}x{info_a.width}"
        tile = options.tile
        raise DataError(
            scene.before, f"at least {tile}x{tile} pixels", size, "Use a smaller --tile"
        )
    return _Pair(info_a, info_b, same_grid, options.nodata, options.fill), grid


def _windows(pair: _Pair, grid: Sequence[Tile]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(image, valid)`` of both dates of every tile with data, one at a time."""
    for _, a, b, valid in pair.tiles(grid):
        yield a.data, valid[0]
        yield b.data, valid[1]


def sample_scene(scene: Scene, options: SceneOptions, pixels: int) -> np.ndarray:
    """Pixel spectra of a scene (both dates) for a k-means model fitted on several scenes.

    Draws ``ceil(pixels / (2 × tiles))`` valid pixels per tile and date (as one scene's own fit
    does), then at most ``pixels`` of them, with a generator seeded by ``options.seed``.

    Returns:
        ``(N, C)`` float32 spectra, ``N <= pixels``.
    """
    pair, grid = _open(scene, options)
    rng = np.random.default_rng(options.seed)
    per_tile = max(1, math.ceil(pixels / (2 * len(grid))))
    spectra = [sample_spectra(image, ok, per_tile, rng) for image, ok in _windows(pair, grid)]
    if not spectra:
        return np.zeros((0, len(options.band_names)), dtype=np.float32)
    sample = np.concatenate(spectra)
    if sample.shape[0] > pixels:
        sample = sample[np.sort(rng.choice(sample.shape[0], size=pixels, replace=False))]
    return sample


def _label_source(
    path: Path, reference: RasterInfo, options: dict[str, Any]
) -> LabelRaster | VectorLabels:
    classes = options["classes"]
    if path.suffix.lower() in VECTOR_SUFFIXES:
        return VectorLabels(
            path,
            reference,
            class_property=options["class_property"],
            classes=classes,
            all_touched=options["all_touched"],
        )
    values = options["label_values"]
    if values is None and classes is not None:
        values = list(range(len(classes)))
    return LabelRaster(path, reference, values, options["ignore_value"])


def write_scene(
    scene: Scene, root: Path, options: SceneOptions, model: SpectralKMeans | None = None
) -> SceneResult:
    """Mask and tile one scene into the dataset folder being built at ``root``.

    Args:
        scene: The pair and its name.
        root: The (staging) dataset folder; only this scene's tiles are written.
        options: The collection's options.
        model: A k-means model fitted on several scenes; for ``kmeans`` without it, one is
            fitted on this scene alone (seed ``options.seed``).

    Returns:
        The tiles written and what ``dataset.json`` needs of them.

    Raises:
        DataError: Bands, grids, labels or sizes that do not fit; no tile with data.
    """
    pair, grid = _open(scene, options)
    info_a, names = pair.info_a, list(options.band_names)
    provenance: dict[str, Any] = (
        dict(scene.record)
        if scene.record is not None
        else {"before": str(scene.before), "after": str(scene.after)}
    )
    provenance["aligned"] = not pair.same_grid
    sources: list[LabelRaster | VectorLabels | None] = [None, None]
    for i, (key, path) in enumerate(
        (("labels", scene.labels), ("labels_after", scene.labels_after))
    ):
        if path is not None and options.source == "labels":
            sources[i] = _label_source(path, info_a, options.label_options)
            provenance[key] = str(path)
    if options.source == "kmeans" and model is None:
        per_tile = max(1, math.ceil(options.kmeans_sample / (2 * len(grid))))
        model = SpectralKMeans(options.k, options.seed).fit_windows(
            _windows(pair, grid), per_tile, options.kmeans_sample, scene.before
        )
        provenance["kmeans"] = {
            "k": options.k,
            "fitted_pixels": model.fitted_pixels,
            "seed": options.seed,
        }

    def masks(t: Tile, a: Raster, b: Raster, valid: np.ndarray) -> list[np.ndarray | None]:
        """Masks of A and B for one tile, ignore where the date (change: either) has no data."""
        found: list[np.ndarray | None]
        if options.source == "indices":
            found = [
                index_mask(r.data, names, valid=v, source=scene.before, **options.thresholds)
                for r, v in ((a, valid[0]), (b, valid[1]))
            ]
        elif model is not None:
            found = [model.predict(a.data, valid[0]), model.predict(b.data, valid[1])]
        else:
            found = [s.read(t.window) if s is not None else None for s in sources]
        for i, mask in enumerate(found):
            if mask is not None:
                mask[~(valid.all(axis=0) if options.kind == "change" else valid[i])] = IGNORE_INDEX
        return found

    writer = DatasetWriter(root, ".tif", nodata=options.fill)
    written: list[Tile] = []
    nodata: list[np.ndarray] = []
    for t, a, b, valid in pair.tiles(grid):
        mask_a, mask_b = masks(t, a, b, valid)
        writer.add(
            t.tile_id(scene.name),
            a.data,
            b.data,
            label=mask_a,
            label_b=mask_b,
            crs=info_a.crs,
            transform=a.transform,
            band_names=names,
        )
        written.append(t)
        nodata.append((~valid).reshape(2, -1).sum(axis=1))
    if not written:
        raise DataError(scene.before, "tiles with data on both dates", "only nodata")
    return SceneResult(
        name=scene.name,
        tiles=written,
        grid=len(grid),
        nodata=nodata,
        moments=writer.moments,
        label_counts=dict(writer.label_counts),
        provenance=provenance,
        crs=info_a.crs.to_string() if info_a.crs is not None else None,
        gsd=_gsd(info_a.crs, info_a.resolution),
    )
