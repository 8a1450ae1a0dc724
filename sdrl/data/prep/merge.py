"""The scenes of a collection → one split and one ``dataset.json`` (:mod:`.collection`).

Every scene's tiles are already in the staging folder; here the scenes' band moments and
label counts are merged in scene order (Chan's formula; the first scene's taken as they
are, so one pair gives exactly what one writer would), one blocked split is drawn over all
scenes (:func:`~sdrl.data.prep.splits.blocked_split_scenes`), the tiles it drops are removed
(their statistics with them) and the lists and ``dataset.json`` are written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdrl.data.folder import SUBFOLDERS, DatasetMeta
from sdrl.data.prep.result import PrepResult
from sdrl.data.prep.scene import Scene, SceneOptions, SceneResult
from sdrl.data.prep.splits import blocked_split_scenes
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.stats import BandMoments
from sdrl.data.writer import DatasetWriter
from sdrl.errors import DataError

__all__ = ["finish_collection", "merge_moments"]


def merge_moments(total: BandMoments | None, part: BandMoments | None) -> BandMoments | None:
    """Chan's merge of two sets of band moments (``part`` as is when ``total`` is empty)."""
    if part is None:
        return total
    if total is None:
        return BandMoments(part.count.copy(), part.mean.copy(), part.m2.copy())
    merged = BandMoments(total.count.copy(), total.mean.copy(), total.m2.copy())
    merged.merge(part)
    return merged


def _add_counts(total: dict[str, np.ndarray], part: Mapping[str, np.ndarray]) -> None:
    for name, counts in part.items():
        previous = total.get(name, np.zeros(0, dtype=np.int64))
        size = max(len(previous), len(counts))
        total[name] = np.pad(previous, (0, size - len(previous))) + np.pad(
            counts, (0, size - len(counts))
        )


def finish_collection(
    root: Path,
    out: str | Path,
    scenes: Sequence[Scene],
    results: Sequence[SceneResult],
    options: SceneOptions,
    split_options: tuple[float, float, int],
    classes: Sequence[str] | None,
    record: dict[str, Any],
    provenance: Mapping[str, Any] | None,
    gsd: float | None = None,
) -> PrepResult:
    """Merge the scenes' results, split, and write the lists and ``dataset.json``.

    Args:
        root: The staging folder holding every scene's tiles.
        out: The final folder (for the result).
        scenes: The scenes, in order.
        results: What each scene wrote, in scene order.
        options: The collection's options.
        split_options: ``(val_fraction, test_fraction, split_block)``.
        classes: Class names, or ``None`` to name the ids found in the labels.
        record: The provenance so far (recipe, masks, tiles...).
        provenance: A recipe's own entries, added last.
        gsd: Ground sampling distance to record, instead of the scenes' own.

    Returns:
        What was written.

    Raises:
        DataError: Labels without a single labelled pixel (classes to infer).
    """
    writer = DatasetWriter(root, ".tif", nodata=options.fill)
    for result in results:
        writer.moments = merge_moments(writer.moments, result.moments)
        _add_counts(writer.label_counts, result.label_counts)
        writer.ids.extend(result.tile_ids())
    if classes is None:
        found = [np.flatnonzero(writer.class_pixels(p)[:IGNORE_INDEX]) for p in SUBFOLDERS[2:]]
        top = max((int(f.max()) for f in found if f.size), default=-1)
        if top < 0:
            labels = scenes[0].labels if len(scenes) == 1 else None
            raise DataError(labels, "some labelled pixels over the tiles", "only ignore")
        classes = [f"class_{i}" for i in range(top + 1)]
    step = options.stride or options.tile
    val, test, block = split_options
    splits = blocked_split_scenes([r.tiles for r in results], step, val, test, block, options.seed)
    ids: dict[str, list[str]] = {}
    nodata = np.zeros(2, dtype=np.int64)
    for result, split in zip(results, splits, strict=True):
        for t in split.dropped:
            writer.remove(t.tile_id(result.name))
        dropped = set(split.dropped)
        nodata += sum((n for t, n in zip(result.tiles, result.nodata, strict=True)
                       if t not in dropped), np.zeros(2, dtype=np.int64))  # fmt: skip
        for name, members in split.ids(result.name).items():
            ids.setdefault(name, []).extend(members)
    ids = {name: ids[name] for name in ("train", "val", "test") if name in ids}
    record["split"] = splits[0].record()
    if len(results) == 1:
        record.update(results[0].provenance)
    else:
        record["split"]["scenes"] = len(results)
        record["split"]["method"] += "; blocks never straddle two scenes"
        record["scenes"] = {
            r.name: {
                **r.provenance,
                "tiles": len(r.tiles) - len(s.dropped),
                "crs": r.crs,
                "gsd": r.gsd,
            }
            for r, s in zip(results, splits, strict=True)
        }
    fill = options.fill
    record["nodata"] = {
        "value": None if fill is None else ("nan" if math.isnan(fill) else fill),
        "pixels": {"A": int(nodata[0]), "B": int(nodata[1])},
        "policy": "the nodata value in every band, or any band not finite (NaN, inf)",
    }
    record.update(provenance or {})
    crs = {r.crs for r in results}
    gsds = {r.gsd for r in results} if gsd is None else {gsd}
    meta = DatasetMeta(
        kind=options.kind,  # type: ignore[arg-type]
        bands=list(options.band_names),
        classes=list(classes),
        ignore_index=IGNORE_INDEX,
        gsd=gsds.pop() if len(gsds) == 1 else None,
        crs=crs.pop() if len(crs) == 1 else None,
        provenance=record,
    )
    writer.finish(meta, ids)
    return PrepResult(
        out=Path(out),
        tiles={s: len(v) for s, v in ids.items()},
        kind=options.kind,
        classes=list(classes),
        skipped=sum(r.grid - len(r.tiles) for r in results),
        dropped=sum(len(s.dropped) for s in splits),
        unit="tiles" if len(results) == 1 else f"tiles of {len(results)} scenes",
    )
