"""Many before/after pairs (scenes) → one tiled dataset folder (``sdrl prep pairs --pairs``).

:func:`prepare_collection` writes every scene's tiles (:func:`~sdrl.data.prep.scene.
write_scene`, ids ``<scene>_<row>_<col>``) into one staged folder, in ``workers`` processes
(:func:`~sdrl.data.prep.parallel.run_scenes`), then makes one spatially blocked split over
all scenes (:func:`~sdrl.data.prep.splits.blocked_split_scenes`: blocks never straddle two
scenes; tiles overlapping a tile of another split are removed) and one ``dataset.json``
whose band statistics and class counts cover the kept tiles of all scenes. Scene results are
merged in scene order, so the folder is the same, file for file, whatever ``workers`` is. A
scene that fails stops the run with one line naming it (where it was listed and its files)
and nothing is left at ``out``.

Masks per scene (``masks``):

- ``indices``: the spectral-index rules of every scene; class ids mean the same everywhere.
- ``kmeans:K`` with ``kmeans_fit="scene"`` (the default): one k-means model per scene,
  fitted on a pixel sample of its two dates. Clusters follow each scene's own spectra
  (season, illumination, sensor and landscape differ between scenes), a scene's masks do
  not change when scenes are added or removed, and the fits run in parallel. Cluster ``3``
  of one scene is not cluster ``3`` of another; the pretraining losses only match regions
  within a pair, so this does not matter for them.
- ``kmeans:K`` with ``kmeans_fit="joint"``: one model fitted on an equal pixel sample of
  every scene (``kmeans_sample / scenes`` each), then applied to all: cluster ids mean the
  same spectra in every scene (useful when the masks serve as classes, e.g. supervised
  pretraining on them), at the cost of coarser regions in scenes unlike the others and one
  more pass over the data.
- Labels: each scene's ``labels`` (and ``labels_after``), with one set of class options.

With one scene, the scene's entries are recorded at the top of the provenance (as for
``sdrl prep pairs --before --after``); with several, under ``provenance.scenes``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from sdrl.data.io import RasterInfo
from sdrl.data.masks.indices import INDEX_CLASSES, find_bands
from sdrl.data.masks.kmeans import SpectralKMeans
from sdrl.data.outputs import check_output
from sdrl.data.prep.merge import finish_collection
from sdrl.data.prep.parallel import Workers, naming
from sdrl.data.prep.result import PrepResult
from sdrl.data.prep.scene import (
    VECTOR_SUFFIXES,
    Scene,
    SceneOptions,
    inspect_scene,
    sample_scene,
    write_scene,
)
from sdrl.data.prep.sources import check_scene_names
from sdrl.data.prep.splits import check_split_options
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.staging import staged_dir
from sdrl.errors import ConfigError, DataError

__all__ = ["CHANGE_CLASSES", "KMEANS_FITS", "parse_masks", "prepare_collection"]

log = logging.getLogger(__name__)

CHANGE_CLASSES = ["unchanged", "changed"]
KMEANS_FITS = ("scene", "joint")


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


def _check_sources(scenes: Sequence[Scene], masks: str | None, kind: str) -> None:
    """One mask source for every scene: ``masks``, or labels given for each."""
    for scene in scenes:
        where = f"scene '{scene.name}' ({scene.origin or 'the flags'})"
        if masks is not None and scene.labels is not None:
            raise ConfigError(f"{where}: labels and --masks {masks}; give one mask source")
        if masks is None and scene.labels is None:
            raise ConfigError(f"{where}: no labels; give labels for every pair, or --masks")
        if kind == "change" and scene.labels_after is not None:
            raise ConfigError(f"{where}: --kind change takes one change label file per pair")
        if scene.labels_after is not None and scene.labels is None:
            raise ConfigError(f"{where}: labels_after needs labels for the first date")


def _same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _fill(
    infos: Sequence[tuple[RasterInfo, RasterInfo, bool]], nodata: float | None
) -> float | None:
    """Nodata value of the written tiles: ``nodata``, else the files' (first in scene order).

    As for one pair: else NaN when every image is float (non-finite pixels are nodata), else
    0 when some ``after`` is reprojected (its area outside its footprint), else none.
    """
    if nodata is not None:
        return nodata
    values = [i.nodata for a, b, _ in infos for i in (a, b) if i.nodata is not None]
    if values:
        others = sorted({str(v) for v in values if not _same_value(v, values[0])})
        if others:
            log.warning("scenes declare nodata %s and %s; tiles use %s (--nodata overrides)",
                        values[0], ", ".join(others), values[0])  # fmt: skip
        return values[0]
    if all(np.dtype(i.dtype).kind == "f" for a, b, _ in infos for i in (a, b)):
        return math.nan  # non-finite pixels are nodata: the tiles record NaN as such
    if not all(same for _, _, same in infos):
        return 0  # B's area outside its footprint
    return None


def _joint_model(
    scenes: Sequence[Scene], options: SceneOptions, workers: Workers
) -> tuple[SpectralKMeans, dict[str, Any]]:
    """One k-means model fitted on an equal sample of every scene."""
    share = max(1, math.ceil(options.kmeans_sample / len(scenes)))
    samples = workers.run(
        sample_scene,
        [(scene, options, share) for scene in scenes],
        [s.name for s in scenes],
        [s.describe() for s in scenes],
        stage="k-means sample",
        summary=lambda sample: f"{len(sample)} pixels",
    )
    pixels = np.concatenate(samples)
    if pixels.shape[0] < options.k:
        expected = f"at least {options.k} pixels with data over the scenes"
        raise DataError(scenes[0].before, expected, f"{pixels.shape[0]}")
    with threadpool_limits(limits=1):  # the same centres whatever the machine
        model = SpectralKMeans(options.k, options.seed).fit(pixels)
    record = {"k": options.k, "fitted_pixels": model.fitted_pixels, "seed": options.seed}
    return model, {**record, "fit": "joint", "pixels_per_scene": share}


def prepare_collection(
    scenes: Sequence[Scene],
    out: str | Path,
    *,
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
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    split_block: int = 4,
    seed: int = 0,
    kmeans_sample: int = 100_000,
    kmeans_fit: Literal["scene", "joint"] = "scene",
    ndvi_threshold: float = 0.3,
    ndwi_threshold: float = 0.0,
    ndbi_threshold: float = 0.0,
    workers: int | Workers = 1,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
    inputs: Iterable[str | Path] = (),
    gsd: float | None = None,
) -> PrepResult:
    """Build one tiled pretraining (or change) dataset folder from many before/after pairs.

    Args:
        scenes: The pairs (:func:`~sdrl.data.prep.sources.read_pairs_csv`,
            :func:`~sdrl.data.prep.sources.match_dirs`), names unique.
        out: Output folder, written atomically.
        masks: ``indices``, ``kmeans`` or ``kmeans:K``; ``None`` to use each scene's labels.
        kind: ``pretrain`` (semantic masks) or ``change`` (labels are change labels).
        tile: Tile size in pixels.
        stride: Step between tiles; ``tile`` when ``None``.
        align: Reproject each ``after`` onto its ``before``'s grid when they differ.
        classes: Class names of the labels (index = class id).
        label_values: Raw label values of the classes, in class order.
        ignore_value: Raw label value meaning "not labelled" (``None``: no such value).
        class_property: GeoJSON feature property with the class.
        all_touched: Burn every pixel a GeoJSON geometry touches.
        band_names: Names of the bands, overriding the files' (which must then agree).
        nodata: Image nodata value, overriding the files'.
        val_fraction: Approximate share of all tiles in ``val``.
        test_fraction: Approximate share of all tiles in ``test``.
        split_block: Side of the split blocks, in tile steps.
        seed: Seed of the split and of k-means.
        kmeans_sample: Pixels sampled to fit k-means, per scene (``scene``) or in all
            (``joint``).
        kmeans_fit: ``scene`` (a model per scene, the default) or ``joint`` (one model); see
            the module docstring.
        ndvi_threshold: NDVI above which ``indices`` says vegetation.
        ndwi_threshold: NDWI above which ``indices`` says water.
        ndbi_threshold: NDBI above which ``indices`` says built-up.
        workers: Processes writing scenes (0: one per core), or a recipe's running
            :class:`~sdrl.data.prep.parallel.Workers`; the output does not depend on it.
        overwrite: Replace an existing ``out``.
        provenance: Entries added to ``dataset.json``'s provenance (a recipe's own).
        inputs: Further inputs ``out`` must not overwrite (a recipe's source folder).
        gsd: Ground sampling distance to record, in metres; by default the scenes' (when
            their CRS is projected and they agree).

    Returns:
        What was written (tiles per split, tiles skipped without data or dropped by the split).

    Raises:
        ConfigError: Conflicting or missing options, scene names that are not unique.
        DataError: A file that does not fit; :class:`~sdrl.data.prep.parallel.SceneError`
            names the scene (where it was listed, its files) when it has an origin.
    """
    if kind not in ("pretrain", "change"):
        raise ConfigError(f"--kind: expected pretrain or change, found '{kind}'")
    if kmeans_fit not in KMEANS_FITS:
        raise ConfigError(f"--kmeans-fit: expected scene or joint, found '{kmeans_fit}'")
    if not scenes:
        raise ConfigError("no scene: give --before/--after, --pairs or --before-dir/--after-dir")
    check_split_options(val_fraction, test_fraction, split_block)
    source, k = parse_masks(masks) if masks is not None else ("labels", 0)
    if tile <= 0 or (stride is not None and stride <= 0):
        raise ConfigError("--tile and --stride: expected positive pixel counts")
    check_scene_names(scenes)
    _check_sources(scenes, masks, kind)
    owned = not isinstance(workers, Workers)  # else a recipe's, which closes it
    pool = workers if isinstance(workers, Workers) else Workers(workers)
    check_output(out, [*inputs, *(p for s in scenes for p in s.inputs())], folder=True)
    infos = []
    for scene in scenes:
        with naming(scene.describe()):
            infos.append(inspect_scene(scene, align, band_names))
            first = infos[0][0]
            if infos[-1][0].count != first.count:
                expected = f"{first.count} bands like {scenes[0].before}"
                raise DataError(scene.before, expected, f"{infos[-1][0].count} bands")
            if band_names is None and infos[-1][0].band_names != first.band_names:
                expected = f"the bands of {scenes[0].before.name}, {list(first.band_names)}"
                hint = "Pass --band-names when the files hold the same bands in the same order"
                raise DataError(scene.before, expected, f"{list(infos[-1][0].band_names)}", hint)
    names = tuple(band_names) if band_names is not None else tuple(infos[0][0].band_names)
    record: dict[str, Any] = {
        "recipe": "sdrl prep pairs",
        "masks": source if source != "kmeans" else f"kmeans:{k}",
        "tile": tile,
        "stride": stride or tile,
        "seed": seed,
    }
    label_options = {
        "class_property": class_property,
        "all_touched": all_touched,
        "label_values": label_values,
        "ignore_value": ignore_value,
    }
    if source == "labels":
        vector = all(Path(str(s.labels)).suffix.lower() in VECTOR_SUFFIXES for s in scenes)
        if classes is None and kind == "change":
            classes = list(CHANGE_CLASSES)
        elif classes is None and vector:
            classes = ["background", "foreground"] if class_property is None else None
        record.update({key: v for key, v in label_options.items() if v is not None})
    elif source == "indices":
        classes = list(INDEX_CLASSES)
        roles = find_bands(names, source=scenes[0].before)
        record["index_bands"] = {role: names[i] for role, i in roles.items()}
        record["thresholds"] = {"ndvi": ndvi_threshold, "ndwi": ndwi_threshold}
        if "swir1" in roles:
            record["thresholds"]["ndbi"] = ndbi_threshold
        else:
            log.warning("%s: no SWIR-1 band, so no built_up class (NDBI)", scenes[0].before)
    else:
        classes = [f"cluster_{i}" for i in range(k)]
    options = SceneOptions(
        kind=kind,
        source=source,
        k=k,
        tile=tile,
        stride=stride,
        align=align,
        band_names=names,
        check_band_names=band_names is None,
        nodata=nodata,
        fill=_fill(infos, nodata),
        label_options={**label_options, "classes": classes},
        seed=seed,
        kmeans_sample=kmeans_sample,
        thresholds={
            "ndvi_threshold": ndvi_threshold,
            "ndwi_threshold": ndwi_threshold,
            "ndbi_threshold": ndbi_threshold,
        },
    )
    with (
        staged_dir(out, overwrite=overwrite) as root,
        pool if owned else nullcontext(),
    ):
        model = None
        if source == "kmeans" and kmeans_fit == "joint" and len(scenes) > 1:
            model, record["kmeans"] = _joint_model(scenes, options, pool)
        elif source == "kmeans" and len(scenes) > 1:
            record["kmeans_fit"] = "scene"
        results = pool.run(
            write_scene,
            [(scene, root, options, model) for scene in scenes],
            [s.name for s in scenes],
            [s.describe() for s in scenes],
            summary=lambda r: f"{len(r.tiles)} tiles, {r.grid - len(r.tiles)} without data",
        )
        split = (val_fraction, test_fraction, split_block)
        return finish_collection(
            root, out, scenes, results, options, split, classes, record, provenance, gsd
        )
