"""``sdrl prep pairs``: a tiled dataset folder from one before/after raster pair.

The pair is read window by window (memory does not grow with the raster), cut into tiles
(:func:`~sdrl.data.tiling.tile_grid`) and written with each tile's own georeferencing. Masks
come from one source:

- ``labels`` (raster or GeoJSON): the semantic mask of A; ``labels_after`` gives B's. Without
  it there is no ``label_B/`` and the datasets use A's mask for both dates.
- ``masks="indices"``: spectral-index rules (:mod:`~sdrl.data.masks.indices`) on both dates.
- ``masks="kmeans:K"``: one k-means model fitted on a pixel sample of both dates (first pass
  over the tiles), then predicted tile by tile (second pass): cluster ids agree across dates.

With ``kind="change"`` the labels are change labels (0 unchanged, 1 changed, ``ignore_value``
unlabelled) and a change dataset is written. Written masks always hold class ids ``0..K-1``
and 255 (:data:`~sdrl.data.samples.IGNORE_INDEX`) for ignore; pixels without data on a date
are ignored in that date's mask (in the change mask when either date lacks data). Tiles
without a single pixel with data on both dates are skipped; tiles that are entirely ignore in
the labels are kept (their images still serve pretraining and the losses skip them).

Splits are spatially blocked (:func:`~sdrl.data.prep.splits.blocked_split`), so that
neighbouring (and overlapping) tiles do not end up on both sides: whole blocks of
``split_block`` tile steps, drawn at random (``seed``), go to val, then test, until each holds
``round(fraction × tiles)`` tiles or more (at least one tile for a positive fraction, blocks
halved on small rasters so that one exists); train tiles that overlap a val/test tile
(``stride < tile``, or the edge tile shifted to end flush with the raster) and val tiles that
overlap a test tile are then removed from the folder (:meth:`DatasetWriter.remove
<sdrl.data.writer.DatasetWriter.remove>`, statistics included), so no pixel is in two splits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError

from sdrl.data.folder import SUBFOLDERS, DatasetMeta
from sdrl.data.grid import align_to, check_same_grid
from sdrl.data.io import Raster, RasterInfo, read_info, read_raster
from sdrl.data.masks.indices import INDEX_CLASSES, find_bands, index_mask
from sdrl.data.masks.kmeans import SpectralKMeans, valid_pixels
from sdrl.data.masks.label import LabelRaster
from sdrl.data.masks.vector import VectorLabels
from sdrl.data.prep.result import PrepResult
from sdrl.data.prep.splits import blocked_split, check_split_options
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.staging import staged_dir
from sdrl.data.tiling import Tile, tile_grid
from sdrl.data.writer import DatasetWriter
from sdrl.errors import ConfigError, DataError

__all__ = ["parse_masks", "prepare_pairs"]

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".geojson", ".json")
CHANGE_CLASSES = ["unchanged", "changed"]


def parse_masks(spec: str) -> tuple[str, int]:
    """Parse a mask source: ``indices``, ``kmeans`` (8 clusters) or ``kmeans:K``.

    Returns:
        ``(source, K)`` (``K`` is 0 for indices).

    Raises:
        ConfigError: Any other value.
    """
    name, _, count = spec.partition(":")
    if name == "indices" and not count:
        return name, 0
    if name == "kmeans" and (not count or count.isdigit()):
        k = int(count) if count else 8
        if 2 <= k < IGNORE_INDEX:
            return name, k
    raise ConfigError(f"--masks: expected indices, kmeans or kmeans:K (2..254), found '{spec}'")


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


def _label_source(
    path: Path, reference: RasterInfo, classes: Sequence[str] | None, options: dict[str, Any]
) -> LabelRaster | VectorLabels:
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


def _gsd(crs: CRS | None, resolution: tuple[float, float]) -> float | None:
    if crs is None or not crs.is_projected:
        return None
    try:
        factor = crs.linear_units_factor[1]
    except CRSError:
        return None
    return float((resolution[0] + resolution[1]) / 2 * factor)


def prepare_pairs(
    before: str | Path,
    after: str | Path,
    out: str | Path,
    *,
    labels: str | Path | None = None,
    labels_after: str | Path | None = None,
    masks: str | None = None,
    kind: Literal["pretrain", "change"] = "pretrain",
    tile: int = 256,
    stride: int | None = None,
    align: bool = False,
    classes: Sequence[str] | None = None,
    label_values: Sequence[int] | None = None,
    ignore_value: float | None = IGNORE_INDEX,
    class_property: str | None = None,
    all_touched: bool = False,
    band_names: Sequence[str] | None = None,
    nodata: float | None = None,
    name: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    split_block: int = 4,
    seed: int = 0,
    kmeans_sample: int = 100_000,
    ndvi_threshold: float = 0.3,
    ndwi_threshold: float = 0.0,
    ndbi_threshold: float = 0.0,
    overwrite: bool = False,
) -> PrepResult:
    """Build a tiled pretraining or change dataset folder from a before/after raster pair.

    Args:
        before: Image at time 1 (its grid is the dataset's grid).
        after: Image at time 2, same bands; on another grid only with ``align``.
        out: Output folder, written atomically.
        labels: Label raster or GeoJSON: A's semantic mask, or the change mask for ``change``.
        labels_after: B's semantic label raster or GeoJSON (``pretrain`` only).
        masks: ``indices``, ``kmeans`` or ``kmeans:K`` instead of ``labels``.
        kind: ``pretrain`` (semantic masks) or ``change`` (change labels).
        tile: Tile size in pixels.
        stride: Step between tiles; ``tile`` when ``None``.
        align: Reproject ``after`` onto ``before``'s grid (bilinear) when they differ.
        classes: Class names of ``labels`` (index = class id). Default: unchanged/changed for
            ``change``, ``class_<i>`` for the ids found otherwise.
        label_values: Raw label values of the classes, in class order (default ``0..K-1``).
        ignore_value: Raw label value meaning "not labelled" (``None``: no such value).
        class_property: GeoJSON feature property with the class; ``None`` burns features as 1.
        all_touched: Burn every pixel a GeoJSON geometry touches.
        band_names: Names of the bands, overriding the file's (needed for ``indices`` when the
            file has none).
        nodata: Image nodata value, overriding the files'.
        name: Tile id prefix (ids are ``<name>_<row>_<col>``); ``before``'s stem by default.
        val_fraction: Approximate share of tiles in ``val``.
        test_fraction: Approximate share of tiles in ``test``.
        split_block: Side of the split blocks, in tile steps.
        seed: Seed of the split and of k-means.
        kmeans_sample: Pixels sampled (over both dates) to fit k-means.
        ndvi_threshold: NDVI above which ``indices`` says vegetation.
        ndwi_threshold: NDWI above which ``indices`` says water.
        ndbi_threshold: NDBI above which ``indices`` says built-up.
        overwrite: Replace an existing ``out``.

    Returns:
        What was written (tiles per split, tiles skipped without data or dropped by the split).

    Raises:
        ConfigError: Conflicting or missing options.
        DataError: Bands, grids, labels or sizes that do not fit.
    """
    if kind not in ("pretrain", "change"):
        raise ConfigError(f"--kind: expected pretrain or change, found '{kind}'")
    if (labels is None) == (masks is None):
        raise ConfigError("give exactly one mask source: --labels FILE or --masks indices|kmeans:K")
    if kind == "change" and (labels is None or labels_after is not None):
        raise ConfigError("--kind change takes the change labels as --labels (no --labels-after)")
    if labels_after is not None and labels is None:
        raise ConfigError("--labels-after needs --labels for the first date")
    check_split_options(val_fraction, test_fraction, split_block)
    source, k = parse_masks(masks) if masks is not None else ("labels", 0)
    before, after = Path(before).resolve(), Path(after).resolve()
    info_a, info_b = read_info(before), read_info(after)
    if info_b.count != info_a.count:
        raise DataError(after, f"{info_a.count} bands like {before.name}", f"{info_b.count} bands")
    same_grid = check_same_grid(info_a, info_b, align=align)
    names = list(band_names) if band_names is not None else list(info_a.band_names)
    if len(names) != info_a.count:
        raise ConfigError(f"--band-names: {info_a.count} names expected, found {len(names)}")
    grid = list(tile_grid(info_a.height, info_a.width, tile, stride))
    if not grid:
        size = f"{info_a.height}x{info_a.width}"
        raise DataError(before, f"at least {tile}x{tile} pixels", size, "Use a smaller --tile")
    fill = nodata
    if fill is None:
        fill = next((v for v in (info_a.nodata, info_b.nodata) if v is not None), None)
        fill = 0 if fill is None and not same_grid else fill  # B's area outside its footprint
    pair = _Pair(info_a, info_b, same_grid, nodata, fill)
    provenance: dict[str, Any] = {
        "recipe": "sdrl prep pairs",
        "before": str(before),
        "after": str(after),
        "aligned": not same_grid,
        "masks": source if source != "kmeans" else f"kmeans:{k}",
        "tile": tile,
        "stride": stride or tile,
        "seed": seed,
    }
    label_sources: list[LabelRaster | VectorLabels | None] = [None, None]
    model = None
    if source == "labels":
        if classes is None and kind == "change":
            classes = list(CHANGE_CLASSES)
        elif classes is None and Path(str(labels)).suffix.lower() in VECTOR_SUFFIXES:
            classes = ["background", "foreground"] if class_property is None else None
        options = {
            "class_property": class_property,
            "all_touched": all_touched,
            "label_values": label_values,
            "ignore_value": ignore_value,
        }
        for i, path in enumerate((labels, labels_after)):
            if path is not None:
                label_sources[i] = _label_source(Path(path).resolve(), info_a, classes, options)
                provenance["labels" if i == 0 else "labels_after"] = str(Path(path).resolve())
        provenance.update({key: v for key, v in options.items() if v is not None})
    elif source == "indices":
        classes = list(INDEX_CLASSES)
        roles = find_bands(names, source=before)
        provenance["index_bands"] = {role: names[i] for role, i in roles.items()}
        provenance["thresholds"] = {"ndvi": ndvi_threshold, "ndwi": ndwi_threshold}
        if "swir1" in roles:
            provenance["thresholds"]["ndbi"] = ndbi_threshold
        else:
            log.warning("%s: no SWIR-1 band, so no built_up class (NDBI)", before)
    else:
        classes = [f"cluster_{i}" for i in range(k)]
        windows = (
            (raster.data, valid[i])
            for _, a, b, valid in pair.tiles(grid)
            for i, raster in enumerate((a, b))
        )
        per_tile = max(1, math.ceil(kmeans_sample / (2 * len(grid))))
        model = SpectralKMeans(k, seed).fit_windows(windows, per_tile, kmeans_sample, before)
        provenance["kmeans"] = {"k": k, "fitted_pixels": model.fitted_pixels, "seed": seed}

    def tile_masks(t: Tile, a: Raster, b: Raster, valid: np.ndarray) -> list[np.ndarray | None]:
        """Masks of A and B for one tile, ignore where the date (change: either) has no data."""
        masks_ab: list[np.ndarray | None]
        if source == "indices":
            thresholds = {
                "ndvi_threshold": ndvi_threshold,
                "ndwi_threshold": ndwi_threshold,
                "ndbi_threshold": ndbi_threshold,
            }
            masks_ab = [
                index_mask(r.data, names, valid=v, source=before, **thresholds)
                for r, v in ((a, valid[0]), (b, valid[1]))
            ]
        elif model is not None:
            masks_ab = [model.predict(a.data, valid[0]), model.predict(b.data, valid[1])]
        else:
            masks_ab = [s.read(t.window) if s is not None else None for s in label_sources]
        for i, mask in enumerate(masks_ab):
            if mask is not None:
                mask[~(valid.all(axis=0) if kind == "change" else valid[i])] = IGNORE_INDEX
        return masks_ab

    prefix = name or before.stem
    with staged_dir(out, overwrite=overwrite) as root:
        writer = DatasetWriter(root, ".tif", nodata=fill)
        written: list[Tile] = []
        for t, a, b, valid in pair.tiles(grid):
            mask_a, mask_b = tile_masks(t, a, b, valid)
            writer.add(
                t.tile_id(prefix),
                a.data,
                b.data,
                label=mask_a,
                label_b=mask_b,
                crs=info_a.crs,
                transform=a.transform,
                band_names=names,
            )
            written.append(t)
        if not written:
            raise DataError(before, "tiles with data on both dates", "only nodata")
        if classes is None:
            found = [np.flatnonzero(writer.class_pixels(p)[:IGNORE_INDEX]) for p in SUBFOLDERS[2:]]
            top = max((int(f.max()) for f in found if f.size), default=-1)
            if top < 0:
                raise DataError(labels, "some labelled pixels over the tiles", "only ignore")
            classes = [f"class_{i}" for i in range(top + 1)]
        split = blocked_split(
            written, stride or tile, val_fraction, test_fraction, split_block, seed
        )
        for t in split.dropped:
            writer.remove(t.tile_id(prefix))
        provenance["split"] = split.record()
        meta = DatasetMeta(
            kind=kind,
            bands=names,
            classes=list(classes),
            ignore_index=IGNORE_INDEX,
            gsd=_gsd(info_a.crs, info_a.resolution),
            crs=info_a.crs.to_string() if info_a.crs is not None else None,
            provenance=provenance,
        )
        ids = split.ids(prefix)
        writer.finish(meta, ids)
    return PrepResult(
        out=Path(out),
        tiles={s: len(v) for s, v in ids.items()},
        kind=kind,
        classes=list(classes),
        skipped=len(grid) - len(written),
        dropped=len(split.dropped),
    )
