"""WHU-CD → the community 256-pixel tile layout, from split folders or the whole-image release.

Layouts read (``RAW`` is ``--src``):

* **split folders** or a **flat folder** (most WHU-CD redistributions): as for LEVIR-CD, see
  :mod:`sdrl.data.prep.levir`; the folder is the split.
* **whole image** (the original release): ``RAW/before/before.tif``, ``RAW/after/after.tif``,
  ``RAW/change label/change_label.tif`` (32507×15354 px, 0.3 m; other names with
  ``before``/``after``/``label``), found in ``RAW`` or one of its child folders. The rasters
  are read one 256-row band at a time. Tiles do not overlap (the right/bottom remainder under
  one tile is dropped) and a tile that is all black (or nodata) in either date is skipped.
  There is no official split: the written tiles get a spatially blocked one
  (:func:`~sdrl.data.prep.splits.blocked_split`; by default blocks of 8×8 tiles and about
  80/10/10 train/val/test by tiles), recorded as NOT official in ``dataset.json``.

Output as for LEVIR-CD: ``OUT/{A,B,label}/whu_<row>_<col>.png`` (or ``.tif`` with the whole
image's CRS), ``OUT/list/<split>.txt`` and ``OUT/dataset.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from sdrl.data.outputs import check_output
from sdrl.data.prep.levir import (
    CLASSES,
    Pair,
    change_meta,
    check_pair,
    cut_pair,
    prepare_folders,
)
from sdrl.data.prep.result import PrepResult
from sdrl.data.prep.splits import blocked_split, check_split_options
from sdrl.data.staging import staged_dir
from sdrl.data.tiling import Tile, check_tile_size
from sdrl.data.writer import DatasetWriter
from sdrl.errors import ConfigError, DataError

__all__ = ["WHU_WHOLE_IMAGE", "prepare_whu"]

log = logging.getLogger(__name__)

WHU_WHOLE_IMAGE = {
    "before": Path("before/before.tif"),
    "after": Path("after/after.tif"),
    "label": Path("change label/change_label.tif"),
}
CITATION = (
    "Ji, Wei & Lu, Fully Convolutional Networks for Multisource Building Extraction From an "
    "Open Aerial and Satellite Imagery Data Set, IEEE TGRS 57(1):574-586, 2019"
)
GSD = 0.3


def _whole_image_files(
    src: Path, before: str | Path | None, after: str | Path | None, label: str | Path | None
) -> Pair | None:
    """The whole-image WHU files: flags if given, else the release's names in RAW or a child."""
    given = {"before": before, "after": after, "label": label}
    if any(v is not None for v in given.values()):
        paths = {k: src / (v if v is not None else WHU_WHOLE_IMAGE[k]) for k, v in given.items()}
        for key, path in paths.items():
            if not path.is_file():
                raise DataError(path, f"the {key} raster (--{key})", "no such file")
        return Pair("whu", paths["before"], paths["after"], paths["label"])
    for root in [src, *sorted(p for p in src.iterdir() if p.is_dir())]:
        paths = {k: root / v for k, v in WHU_WHOLE_IMAGE.items()}
        if all(p.is_file() for p in paths.values()):
            return Pair("whu", paths["before"], paths["after"], paths["label"])
    return None


def prepare_whu(
    src: str | Path,
    out: str | Path,
    tile: int = 256,
    overwrite: bool = False,
    split: str | None = None,
    before: str | Path | None = None,
    after: str | Path | None = None,
    label: str | Path | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_block: int = 8,
    seed: int = 0,
    image_format: Literal["png", "tif"] = "png",
) -> PrepResult:
    """Build a 256-pixel WHU-CD tile folder from split folders or the whole-image release.

    Args:
        src: ``RAW``: split folders, a flat folder (with ``split``), or the whole-image release.
        out: Output dataset folder (written atomically).
        tile: Tile size in pixels.
        overwrite: Replace an existing non-empty ``out``.
        split: Split of a flat folder's tiles.
        before: Whole-image "before" raster, relative to ``src`` (default
            ``before/before.tif``); giving any of ``before``/``after``/``label`` selects the
            whole-image layout.
        after: Whole-image "after" raster (default ``after/after.tif``).
        label: Whole-image change raster (default ``change label/change_label.tif``).
        val_fraction: Whole image: approximate share of the written tiles in val.
        test_fraction: Whole image: approximate share of the written tiles in test.
        split_block: Whole image: side of the split blocks, in tiles (see
            :func:`~sdrl.data.prep.splits.blocked_split`).
        seed: Whole image: seed of the block assignment.
        image_format: ``png`` (the community layout) or ``tif`` (keeps the whole image's CRS).

    Returns:
        What was written.

    Raises:
        ConfigError: ``split`` with the whole-image layout, or bad split fractions.
        DataError: Missing or misaligned rasters, or an image without content.
    """
    src, out = Path(src), Path(out)
    check_tile_size(tile)
    check_output(
        out, [src, *(src / p for p in (before, after, label) if p is not None)], folder=True
    )
    ext = f".{image_format}"
    provenance = {"citation": CITATION, "license": "research use only (see the source)"}
    pair = _whole_image_files(src, before, after, label) if src.is_dir() else None
    if pair is None:
        return prepare_folders("WHU-CD", src, out, tile, overwrite, split, GSD, provenance, ext)
    if split is not None:
        raise ConfigError(f"--split {split}: the whole-image layout is split by spatial blocks")
    check_split_options(val_fraction, test_fraction, split_block)
    info = check_pair(pair, tile)
    rows, cols = info.height // tile, info.width // tile
    shape = f"{info.height}x{info.width} px → {rows}x{cols} tiles of {tile}"
    log.info("WHU-CD whole image %s: %s, split blocks of %d tiles", pair.a, shape, split_block)
    written: list[Tile] = []
    skipped = 0
    with staged_dir(out, overwrite=overwrite) as root:
        writer = DatasetWriter(root, image_ext=ext, nodata=info.nodata)
        for r in range(rows):
            band = [Tile(r * tile, c * tile, tile) for c in range(cols)]
            row_written, empty = cut_pair(pair, band, writer, pair.name, skip_empty=True)
            written += row_written
            skipped += empty
            if (r + 1) % 8 == 0 or r + 1 == rows:
                log.info("WHU-CD: tile row %d/%d, %d tiles written", r + 1, rows, len(written))
        if not written:
            raise DataError(pair.a, "image content", "only empty (black / nodata) tiles")
        result = blocked_split(written, tile, val_fraction, test_fraction, split_block, seed)
        for t in result.dropped:  # none: the tiles do not overlap
            writer.remove(t.tile_id(pair.name))
        splits = result.ids(pair.name)
        record = {
            "source": {k: str(getattr(pair, k)) for k in ("a", "b", "label")},
            "recipe": "sdrl prep whu",
            "tile": tile,
            "split": result.record(),
            "tiles": {name: len(ids) for name, ids in splits.items()},
            "skipped_empty_tiles": skipped,
            "dropped_edge_pixels": {"right": info.width % tile, "bottom": info.height % tile},
            **provenance,
        }
        crs = info.crs.to_string() if info.crs is not None and ext == ".tif" else None
        writer.finish(change_meta("WHU-CD (whole-image release)", GSD, crs, record), splits)
    counts = {name: len(ids) for name, ids in splits.items()}
    dropped = len(result.dropped)
    return PrepResult(out, counts, classes=list(CLASSES), skipped=skipped, dropped=dropped)
