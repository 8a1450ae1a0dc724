"""LEVIR-CD and WHU-CD split-folder and flat layouts → the community 256-pixel tile layout.

Layouts read (``RAW`` is ``--src``):

* **split folders** (LEVIR-CD as distributed, most WHU-CD redistributions):
  ``RAW/{train,val,test}/{A,B,label}/<name>.<png|tif|jpg>``, RGB images of any size ≥ the tile;
  the folder is the (official) split. Tiles come from :func:`~sdrl.data.tiling.tile_grid`
  (1024 px → 16 tiles; for sizes that are not a multiple, the last tile is flush with the edge).
* **flat folder**: ``RAW/{A,B,label}/<name>...`` without split folders (e.g. a sample of WHU-CD
  1024-pixel tiles); ``split=`` (``--split``) names the one split all tiles go to.

WHU-CD's whole-image release is read by :mod:`sdrl.data.prep.whu`, which shares this module's
pair checks (:func:`check_pair`), tile cutting (:func:`cut_pair`) and metadata
(:func:`change_meta`) and hands the layouts above to :func:`prepare_folders`.

Output: ``OUT/{A,B,label}/<id>.png`` tiles (8-bit RGB; labels 0/255 as distributed, declared by
``label_values`` ``{0: 0, 255: 1}``), ``OUT/list/<split>.txt`` and ``OUT/dataset.json``. Tile
ids are ``<name>_<row>_<col>`` (:meth:`~sdrl.data.tiling.Tile.tile_id`, pixel offsets in the
source image), with ``<name>`` prefixed by ``<split>_`` unless it already starts with it, so
LEVIR-CD's ``train_1.png`` gives ``train_1_0000_0256`` and ids are unique across splits.
Source labels may be 0/255 or 0/1 (1 and 255 both mean change); other values are an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from sdrl.data.folder import IMAGE_EXTENSIONS, DatasetMeta
from sdrl.data.io import RasterInfo, Window, read_info, read_raster
from sdrl.data.outputs import check_output
from sdrl.data.prep.result import PrepResult
from sdrl.data.prep.splits import SPLITS
from sdrl.data.staging import staged_dir
from sdrl.data.tiling import Tile, check_tile_size, tile_grid
from sdrl.data.writer import DatasetWriter
from sdrl.errors import ConfigError, DataError

__all__ = [
    "CLASSES",
    "Pair",
    "change_meta",
    "check_pair",
    "cut_pair",
    "find_pairs",
    "prepare_folders",
    "prepare_levir",
]

log = logging.getLogger(__name__)

RGB = ("red", "green", "blue")
CLASSES = ["unchanged", "changed"]
LABEL_VALUES = {0: 0, 255: 1}
LEVIR_CITATION = (
    "Chen & Shi, A Spatial-Temporal Attention-Based Method and a New Dataset for Remote "
    "Sensing Image Change Detection, Remote Sensing 12(10):1662, 2020"
)
# the layouts a levir/whu raw folder may have, for error messages
_LAYOUTS = (
    "RAW/{train,val,test}/{A,B,label}/ (split folders), RAW/{A,B,label}/ with --split, or "
    "(WHU-CD) the whole-image release before/before.tif, after/after.tif, "
    "'change label/change_label.tif' (or --before/--after/--label)"
)


@dataclass(frozen=True)
class Pair:
    """The three source files of one bitemporal image.

    Attributes:
        name: Name used in the tile ids.
        a: Image at time 1.
        b: Image at time 2.
        label: Change mask.
    """

    name: str
    a: Path
    b: Path
    label: Path


def _natural(name: str) -> str:
    """Sort key putting ``train_2`` before ``train_10``."""
    return re.sub(r"\d+", lambda m: m.group().zfill(12), name)


def _entries(folder: Path) -> str:
    """``entries [a, b, ...]`` (at most 10 names) for error messages."""
    names = sorted(p.name for p in folder.iterdir())
    return f"entries {names[:10]}" + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(folder, "a folder of images", f"no such folder ({_entries(folder.parent)})")
    return {
        p.stem: p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    }


def _pairs_in(folder: Path, split: str) -> list[Pair]:
    """Pairs of ``folder/{A,B,label}``, matched by file stem, in natural order."""
    a, b, label = (_images(folder / part) for part in ("A", "B", "label"))
    if not a:
        raise DataError(folder / "A", "image files (.png, .tif, .jpg)", "none")
    pairs = []
    for stem in sorted(a, key=_natural):
        for part, files in (("B", b), ("label", label)):
            if stem not in files:
                expected = folder / part / a[stem].name
                raise DataError(expected, f"a {part}/ file for A/{a[stem].name}", "no such file")
        name = stem if stem.startswith(f"{split}_") else f"{split}_{stem}"
        pairs.append(Pair(name, a[stem], b[stem], label[stem]))
    return pairs


def find_pairs(src: str | Path, split: str | None = None) -> dict[str, list[Pair]]:
    """Find the image pairs of a split-folder or flat LEVIR-CD/WHU-CD layout.

    Args:
        src: The raw folder.
        split: For a flat ``RAW/{A,B,label}`` folder, the split all pairs go to.

    Returns:
        Split name → pairs, for the splits present.

    Raises:
        DataError: ``src`` has neither layout, or a file lacks its counterparts.
        ConfigError: ``split`` is given for a folder that has split folders.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(src, f"a raw dataset folder ({_LAYOUTS})", "no such folder")
    present = [s for s in SPLITS if (src / s).is_dir()]
    if present:
        if split is not None:
            raise ConfigError(f"--split {split}: {src} has split folders {present} already")
        return {s: _pairs_in(src / s, s) for s in present}
    if all((src / part).is_dir() for part in ("A", "B", "label")):
        if split is None:
            raise DataError(
                src,
                "train/ val/ test/ folders (the official split)",
                "A/ B/ label/ without split folders",
                "Pass --split NAME (e.g. --split test) to put every tile in that split",
            )
        return {split: _pairs_in(src, split)}
    raise DataError(src, _LAYOUTS, _entries(src))


def check_pair(pair: Pair, tile: int) -> RasterInfo:
    """Check that the three files share one size (and grid) of at least one tile.

    Args:
        pair: The two dates and the label.
        tile: Tile size in pixels.

    Returns:
        The metadata of ``pair.a``.

    Raises:
        DataError: Sizes or grids that differ, fewer than 3 bands, or an image under one tile.
    """
    ref = read_info(pair.a)
    for path in (pair.b, pair.label):
        info = read_info(path)
        same_size = (info.height, info.width) == (ref.height, ref.width)
        same_grid = not (info.georeferenced and ref.georeferenced) or (
            info.crs == ref.crs and info.transform.almost_equals(ref.transform, precision=1e-6)
        )
        if not (same_size and same_grid):
            raise DataError(
                path,
                f"the size and grid of {pair.a} ({ref.height}x{ref.width})",
                f"{info.height}x{info.width}" + ("" if same_grid else " on another grid"),
                "The two dates and the label must be pixel-aligned",
            )
    for path in (pair.a, pair.b):
        count = read_info(path).count
        if count < 3:
            raise DataError(path, "an RGB image (3 bands)", f"{count} band(s)")
    if ref.height < tile or ref.width < tile:
        raise DataError(pair.a, f"at least {tile}x{tile} pixels", f"{ref.height}x{ref.width}")
    return ref


def _binary_label(data: np.ndarray, path: Path) -> np.ndarray:
    """``(C, h, w)`` raw label → ``(h, w)`` uint8 0/255 (1 and 255 mean change)."""
    label = data[0]
    if data.shape[0] >= 3 and not (data[1:3] == label).all():
        raise DataError(path, "a single-band (or grey RGB) change mask", "RGB bands that differ")
    bad = (label != 0) & (label != 1) & (label != 255)
    if bad.any():
        values = np.unique(label[bad])[:5].tolist()
        hint = "Threshold the masks to 0/255 first (JPEG or resampled masks have such values)"
        raise DataError(path, "change mask values 0 and 255 (or 0 and 1)", f"{values}", hint)
    return np.where(label == 0, 0, 255).astype(np.uint8)


def _empty(image: np.ndarray, nodata: float | None) -> bool:
    return bool((image == (0 if nodata is None else nodata)).all())


def cut_pair(
    pair: Pair, tiles: Sequence[Tile], writer: DatasetWriter, prefix: str, skip_empty: bool
) -> tuple[list[Tile], int]:
    """Write the tiles of one pair, reading one row band of tiles at a time.

    Args:
        pair: The two dates and the label (checked with :func:`check_pair`).
        tiles: Tiles to write; those of one row share a size.
        writer: The dataset writer; tile ids are ``<prefix>_<row>_<col>``.
        prefix: Tile id prefix.
        skip_empty: Leave out tiles that are all black (or nodata) in either date.

    Returns:
        The written tiles, in order, and the number of skipped (empty) tiles.
    """
    width = read_info(pair.a).width
    by_row: dict[int, list[Tile]] = {}
    for tile in tiles:
        by_row.setdefault(tile.row, []).append(tile)
    written: list[Tile] = []
    skipped = 0
    for row, row_tiles in by_row.items():
        window = Window(0, row, width, row_tiles[0].size)
        a = read_raster(pair.a, window=window, bands=[1, 2, 3])
        b = read_raster(pair.b, window=window, bands=[1, 2, 3])
        label = _binary_label(read_raster(pair.label, window=window).data, pair.label)
        for tile in row_tiles:
            cols = slice(tile.col, tile.col + tile.size)
            tile_a, tile_b = a.data[:, :, cols], b.data[:, :, cols]
            if skip_empty and (_empty(tile_a, a.nodata) or _empty(tile_b, b.nodata)):
                skipped += 1
                continue
            writer.add(
                tile.tile_id(prefix),
                np.ascontiguousarray(tile_a),
                np.ascontiguousarray(tile_b),
                np.ascontiguousarray(label[:, cols]),
                crs=a.crs,
                transform=a.transform * Affine.translation(tile.col, 0),
                band_names=RGB,
            )
            written.append(tile)
    return written, skipped


def change_meta(
    dataset: str, gsd: float, crs: str | None, provenance: dict[str, Any]
) -> DatasetMeta:
    """``dataset.json`` of an RGB change dataset with LEVIR-CD's 0/255 labels.

    Args:
        dataset: Dataset name, recorded first in the provenance.
        gsd: Ground sampling distance in metres.
        crs: CRS of the tiles (``None`` for PNG tiles).
        provenance: The rest of the provenance record.

    Returns:
        The metadata (mean and std are filled in by :meth:`DatasetWriter.finish`).
    """
    return DatasetMeta(
        kind="change",
        bands=list(RGB),
        classes=list(CLASSES),
        label_values=dict(LABEL_VALUES),
        gsd=gsd,
        crs=crs,
        provenance={"dataset": dataset, **provenance},
    )


def prepare_folders(
    dataset: str,
    src: Path,
    out: Path,
    tile: int,
    overwrite: bool,
    split: str | None,
    gsd: float,
    provenance: dict[str, Any],
    image_ext: str = ".png",
) -> PrepResult:
    """Tile a split-folder or flat layout; the split of each tile is its source's.

    Args:
        dataset: Dataset name (``LEVIR-CD``, ``WHU-CD``).
        src: The raw folder (see :func:`find_pairs`).
        out: Output dataset folder (written atomically).
        tile: Tile size in pixels.
        overwrite: Replace an existing non-empty ``out``.
        split: Split of a flat folder's tiles.
        gsd: Ground sampling distance in metres.
        provenance: Citation and licence, added to ``dataset.json``'s provenance.
        image_ext: Tile format, ``.png`` or ``.tif``.

    Returns:
        What was written.
    """
    check_tile_size(tile)
    check_output(out, [src], folder=True)
    found = find_pairs(src, split)
    infos = {p: check_pair(p, tile) for pairs in found.values() for p in pairs}
    total = len(infos)
    log.info("%s: %d image pairs in %s (%s)", dataset, total, src, ", ".join(found))
    splits: dict[str, list[str]] = {}
    with staged_dir(out, overwrite=overwrite) as root:
        writer = DatasetWriter(root, image_ext=image_ext)
        done = 0
        for name, pairs in found.items():
            splits[name] = []
            for pair in pairs:
                info = infos[pair]
                grid = list(tile_grid(info.height, info.width, tile))
                written = cut_pair(pair, grid, writer, pair.name, skip_empty=False)[0]
                splits[name] += [t.tile_id(pair.name) for t in written]
                done += 1
                if done % 50 == 0 or done == total:
                    log.info("%s: %d/%d pairs tiled", dataset, done, total)
        source = "official (the source's split folders)" if split is None else "user (--split)"
        record = {
            "source": str(src),
            "recipe": f"sdrl prep {dataset.split('-')[0].lower()}",
            "tile": tile,
            "split": source,
            "pairs": {name: len(pairs) for name, pairs in found.items()},
            "tiles": {name: len(ids) for name, ids in splits.items()},
            **provenance,
        }
        writer.finish(change_meta(dataset, gsd, None, record), splits)
    counts = {name: len(ids) for name, ids in splits.items()}
    return PrepResult(Path(out), counts, classes=list(CLASSES))


def prepare_levir(
    src: str | Path,
    out: str | Path,
    tile: int = 256,
    overwrite: bool = False,
    split: str | None = None,
) -> PrepResult:
    """Build the LEVIR-CD 256-pixel tile layout from the raw 1024-pixel release.

    Args:
        src: ``RAW`` with ``{train,val,test}/{A,B,label}/<name>.png`` (or a flat
            ``{A,B,label}/`` folder with ``split``).
        out: Output dataset folder (written atomically).
        tile: Tile size in pixels; non-overlapping (1024 → 16 tiles per image).
        overwrite: Replace an existing non-empty ``out``.
        split: Split of a flat folder's tiles.

    Returns:
        What was written.
    """
    provenance = {"citation": LEVIR_CITATION, "license": "research use only (see the source)"}
    return prepare_folders(
        "LEVIR-CD", Path(src), Path(out), tile, overwrite, split, 0.5, provenance
    )
