"""``sdrl prep pairs``: a tiled dataset folder from one before/after raster pair.

One pair is a collection of one scene (:mod:`~sdrl.data.prep.collection` writes many pairs
into one folder; :mod:`~sdrl.data.prep.scene` masks and tiles each). The pair is read window
by window (memory does not grow with the raster), cut into tiles
(:func:`~sdrl.data.tiling.tile_grid`) and written with each tile's own georeferencing. Masks
come from one source:

- ``labels`` (raster or GeoJSON): the semantic mask of A; ``labels_after`` gives B's. Without
  it there is no ``label_B/`` and the datasets use A's mask for both dates.
- ``masks="indices"``: spectral-index rules (:mod:`~sdrl.data.masks.indices`) on both dates.
- ``masks="kmeans:K"``: one k-means model fitted on a pixel sample of both dates (first pass
  over the tiles, with one thread so the centres do not depend on the machine), then
  predicted tile by tile (second pass): cluster ids agree across dates.

With ``kind="change"`` the labels are change labels (0 unchanged, 1 changed, ``ignore_value``
unlabelled) and a change dataset is written. Written masks always hold class ids ``0..K-1``
and 255 (:data:`~sdrl.data.samples.IGNORE_INDEX`) for ignore; pixels without data on a date
are ignored in that date's mask (in the change mask when either date lacks data). A pixel
lacks data when every band equals the nodata value or any band is not finite (NaN, ±inf);
such pixels are written as the nodata value (the files', ``nodata``, or NaN for float images
without one, recorded in every GeoTIFF) and counted in ``dataset.json``'s provenance. Tiles
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

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sdrl.data.prep.collection import parse_masks, prepare_collection
from sdrl.data.prep.result import PrepResult
from sdrl.data.prep.scene import Scene
from sdrl.data.samples import IGNORE_INDEX
from sdrl.errors import ConfigError

__all__ = ["parse_masks", "prepare_pairs"]


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
        DataError: Bands, grids, labels or sizes that do not fit; an ``out`` that is, holds or
            lies inside an input (checked before anything is read).
    """
    if kind not in ("pretrain", "change"):
        raise ConfigError(f"--kind: expected pretrain or change, found '{kind}'")
    if (labels is None) == (masks is None):
        raise ConfigError("give exactly one mask source: --labels FILE or --masks indices|kmeans:K")
    if kind == "change" and (labels is None or labels_after is not None):
        raise ConfigError("--kind change takes the change labels as --labels (no --labels-after)")
    if labels_after is not None and labels is None:
        raise ConfigError("--labels-after needs --labels for the first date")
    before, after = Path(before).resolve(), Path(after).resolve()
    scene = Scene(
        name=name or before.stem,
        before=before,
        after=after,
        labels=Path(labels).resolve() if labels is not None else None,
        labels_after=Path(labels_after).resolve() if labels_after is not None else None,
    )
    return prepare_collection(
        [scene],
        out,
        masks=masks,
        kind=kind,
        tile=tile,
        stride=stride,
        align=align,
        classes=classes,
        label_values=label_values,
        ignore_value=ignore_value,
        class_property=class_property,
        all_touched=all_touched,
        band_names=band_names,
        nodata=nodata,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_block=split_block,
        seed=seed,
        kmeans_sample=kmeans_sample,
        ndvi_threshold=ndvi_threshold,
        ndwi_threshold=ndwi_threshold,
        ndbi_threshold=ndbi_threshold,
        overwrite=overwrite,
    )
