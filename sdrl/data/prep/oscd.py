"""OSCD (Onera Satellite Change Detection) raw layout → one 13-band GeoTIFF per date and city.

Layout read (``RAW`` is ``--src``; the long names are the extracted archives' names)::

    RAW/images/ or "Onera Satellite Change Detection dataset - Images"/
        train.txt, test.txt                 comma-separated city names on one line
        <city>/imgs_1/*B01.tif ... *B12.tif, *B8A.tif   one GeoTIFF per band, native resolution
        <city>/imgs_2/...                   (imgs_N_rect/ is used when imgs_N/ is absent)
    RAW/train_labels/ or "... - Train Labels"/<city>/cm/<city>-cm.tif   1 = no change, 2 = change
    RAW/test_labels/  or "... - Test Labels"/<city>/cm/<city>-cm.tif    (cm/cm.png as fallback)

Every date is stacked in Sentinel-2 order :data:`S2_BANDS` onto the 10 m grid of date 1's B02
with :func:`~sdrl.data.io.stack_bands`: the 20 m and 60 m bands are resampled bilinearly (a
georeferenced band through a warped VRT, so slightly different extents land where they belong;
a band without CRS is stretched to the B02 size, i.e. assumed to cover the same extent). Date 2
is brought onto date 1's grid the same way. Pixels stay uint16 (the source's dtype).

Output::

    OUT/A/<city>.tif, OUT/B/<city>.tif   13 bands, band descriptions B01..B12, the city's CRS
    OUT/label/<city>.tif                 uint8 0 = unchanged, 1 = changed, 255 = ignore (a source
                                         value other than 1/2, e.g. 0 outside the annotation)
    OUT/list/train.txt, test.txt         the official city lists, labelled cities only
    OUT/list/unlabelled.txt              cities without a label file (images only)
    OUT/dataset.json                     gsd 10; crs null unless every city shares one

Unlabelled cities have no ``label/`` file, so they load with ``ChangeDataset`` only through the
labelled splits. The pretraining set of all cities (semantic masks instead of change labels)
is a second folder, written by :func:`~sdrl.data.prep.oscd_pretrain.prepare_oscd_pretrain`
(``sdrl prep oscd --pretrain``). With ``tile``, every city is cut into ``<city>_<row>_<col>``
tiles and the lists hold tile ids (a city stays in one split).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.enums import Resampling

from sdrl.bands import SENSORS
from sdrl.data.folder import DatasetMeta
from sdrl.data.grid import align_to, stack_bands
from sdrl.data.io import RasterInfo, read_info, read_raster
from sdrl.data.outputs import check_output
from sdrl.data.prep.result import PrepResult
from sdrl.data.staging import staged_dir
from sdrl.data.tiling import check_tile_size, tile_grid
from sdrl.data.writer import DatasetWriter
from sdrl.errors import DataError

__all__ = [
    "REFERENCE",
    "S2_BANDS",
    "City",
    "band_files",
    "locate_oscd",
    "plan_cities",
    "prepare_oscd",
    "read_city_list",
    "stack_date",
]

log = logging.getLogger(__name__)

S2_BANDS = tuple(b.name for b in SENSORS["sentinel2"].bands)
"""The 13 Sentinel-2 bands in product order (:mod:`sdrl.bands`)."""
REFERENCE = S2_BANDS.index("B02")
"""Index of B02, whose 10 m grid of date 1 every band of a city is stacked onto."""
_LONG = "Onera Satellite Change Detection dataset - "
IMAGE_DIRS = ("images", f"{_LONG}Images")
LABEL_DIRS = {
    "train": ("train_labels", f"{_LONG}Train Labels"),
    "test": ("test_labels", f"{_LONG}Test Labels"),
}
CITATION = (
    "Daudt, Le Saux, Boulch & Gousseau, Urban Change Detection for Multispectral Earth "
    "Observation Using Convolutional Neural Networks, IGARSS 2018"
)


@dataclass(frozen=True)
class City:
    """Source files of one city (``split``: train, test, or unlabelled without a change map)."""

    name: str
    split: str  # train, test, or unlabelled
    dates: tuple[list[Path], list[Path]]
    label: Path | None


def read_city_list(path: Path) -> list[str]:
    """City names of an OSCD ``train.txt``/``test.txt`` (comma- or line-separated)."""
    return [c.strip() for c in path.read_text().replace("\n", ",").split(",") if c.strip()]


def band_files(folder: Path) -> list[Path]:
    """The 13 band files of one date folder, in :data:`S2_BANDS` order.

    A band's file is the one ``.tif`` whose name ends in the band name (``..._B8A.tif``,
    ``B01.tif``).

    Raises:
        DataError: A band has no file (the message names the expected one) or several.
    """
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    found = []
    for band in S2_BANDS:
        matches = [p for p in files if p.stem.upper().endswith(band)]
        if len(matches) != 1:
            what = "none" if not matches else f"{len(matches)}: {[p.name for p in matches]}"
            raise DataError(
                folder / f"*{band}.tif",
                f"one GeoTIFF per Sentinel-2 band, named ...{band}.tif",
                f"{what} among {len(files)} .tif files",
                "OSCD's imgs_1/ and imgs_2/ hold 13 files, B01 to B12 and B8A",
            )
        found.append(matches[0])
    return found


def _date_folder(city: Path, date: int) -> Path:
    for name in (f"imgs_{date}", f"imgs_{date}_rect"):
        if (city / name).is_dir():
            return city / name
    found = sorted(p.name for p in city.iterdir())[:10] if city.is_dir() else "no such folder"
    raise DataError(city / f"imgs_{date}", f"the band files of date {date}", f"{found}")


def _find_dir(src: Path, given: str | Path | None, names: tuple[str, ...]) -> Path | None:
    if given is not None:
        path = src / given
        if not path.is_dir():
            raise DataError(path, "an OSCD folder", "no such folder")
        return path
    return next((src / n for n in names if (src / n).is_dir()), None)


def _label_file(root: Path | None, city: str) -> Path | None:
    if root is None:
        return None
    for name in (f"{city}-cm.tif", "cm.tif", "cm.png"):
        if (root / city / "cm" / name).is_file():
            return root / city / "cm" / name
    return None


def _read_label(path: Path, ref: RasterInfo) -> np.ndarray:
    """``(H, W)`` uint8 0/1/255 on the reference grid from a 1/2 tif (or a 0/255 png)."""
    info = read_info(path)
    if (info.height, info.width) == (ref.height, ref.width):
        raw = read_raster(path, bands=[1]).data[0]
    elif info.georeferenced and ref.georeferenced:
        raw = align_to(path, ref, Resampling.nearest).data[0]
    else:
        expected = f"a change map of {ref.height}x{ref.width} like {ref.path.name}"
        raise DataError(path, expected, f"{info.height}x{info.width} without CRS to align it")
    if path.suffix.lower() == ".png":
        return np.where(raw == 0, 0, 1).astype(np.uint8)
    label = np.full(raw.shape, 255, dtype=np.uint8)
    label[raw == 1] = 0
    label[raw == 2] = 1
    return label


def stack_date(paths: list[Path], ref: RasterInfo) -> np.ndarray:
    """``(13, H, W)`` bands of one date on the reference grid (date 1's B02)."""
    own = read_info(paths[REFERENCE])
    shape = (own.height, own.width)
    if not (own.georeferenced and ref.georeferenced) and shape != (ref.height, ref.width):
        raise DataError(
            own.path, f"{ref.height}x{ref.width} pixels like {ref.path}", f"{shape[0]}x{shape[1]}"
        )
    names = ["reference", *S2_BANDS]
    stacked = stack_bands([ref.path, *paths], names, reference=0, resampling=Resampling.bilinear)
    return stacked.data[1:]


def plan_cities(
    images: Path, labels: dict[str, Path | None], lists: dict[str, list[str]]
) -> list[City]:
    """The cities of ``train.txt``, ``test.txt`` and any other folder, with their band files.

    Raises:
        DataError: A listed city without its folder, a date without its 13 band files.
    """
    listed = {city: split for split, cities in lists.items() for city in cities}
    extra = sorted(
        p.name for p in images.iterdir() if p.is_dir() and p.name not in listed and p.name[0] != "."
    )
    plan = []
    for city, split in [*listed.items(), *((c, "unlabelled") for c in extra)]:
        folder = images / city
        if not folder.is_dir():
            raise DataError(folder, f"the image folder of {city} (listed in {split}.txt)", "none")
        dates = (band_files(_date_folder(folder, 1)), band_files(_date_folder(folder, 2)))
        label = _label_file(labels.get(split), city)
        if label is None and split != "unlabelled":
            log.info("OSCD: no change map for %s (%s); listed as unlabelled", city, split)
        plan.append(City(city, split if label is not None else "unlabelled", dates, label))
    return plan


def locate_oscd(
    src: Path,
    images: str | Path | None,
    train_labels: str | Path | None,
    test_labels: str | Path | None,
) -> tuple[Path, dict[str, Path | None], dict[str, list[str]]]:
    """The images folder, the label folders and the official city lists of ``src``.

    Raises:
        DataError: No images folder, or no ``train.txt``/``test.txt`` in it.
    """
    image_dir = _find_dir(src, images, IMAGE_DIRS)
    if image_dir is None:
        found = (
            f"{sorted(p.name for p in src.iterdir())[:10]}" if src.is_dir() else "no such folder"
        )
        raise DataError(src / IMAGE_DIRS[0], f"the OSCD images folder ({IMAGE_DIRS[1]!r})", found)
    lists = {}
    for split in ("train", "test"):
        path = image_dir / f"{split}.txt"
        if not path.is_file():
            raise DataError(path, "OSCD's list of comma-separated city names", "no such file")
        lists[split] = read_city_list(path)
    labels = {
        "train": _find_dir(src, train_labels, LABEL_DIRS["train"]),
        "test": _find_dir(src, test_labels, LABEL_DIRS["test"]),
    }
    return image_dir, labels, lists


def prepare_oscd(
    src: str | Path,
    out: str | Path,
    images: str | Path | None = None,
    train_labels: str | Path | None = None,
    test_labels: str | Path | None = None,
    tile: int | None = None,
    overwrite: bool = False,
) -> PrepResult:
    """Build a 13-band OSCD dataset folder (one GeoTIFF per date and city, or tiles).

    Args:
        src: ``RAW``, the folder holding the extracted OSCD archives.
        out: Output dataset folder (written atomically).
        images: Images folder relative to ``src`` (default ``images`` or
            ``Onera Satellite Change Detection dataset - Images``).
        train_labels: Train labels folder (default ``train_labels`` or ``... - Train Labels``).
        test_labels: Test labels folder (default ``test_labels`` or ``... - Test Labels``).
        tile: Cut every city into ``tile``-pixel tiles; whole cities when ``None``.
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        What was written (counts of cities, or of tiles with ``tile``).
    """
    src, out = Path(src), Path(out)
    check_tile_size(tile)
    image_dir, labels, lists = locate_oscd(src, images, train_labels, test_labels)
    check_output(out, [src], folder=True)
    plan = plan_cities(image_dir, labels, lists)
    if not plan:
        raise DataError(
            image_dir,
            "city folders (<city>/imgs_1, imgs_2) listed in train.txt/test.txt",
            "no city",
            "Point --src (or --images) at the extracted OSCD images",
        )
    splits: dict[str, list[str]] = {"train": [], "test": [], "unlabelled": []}
    crs: set[str | None] = set()
    with staged_dir(out, overwrite=overwrite) as root:
        writer = DatasetWriter(root, image_ext=".tif")
        for i, city in enumerate(plan, start=1):
            ref = read_info(city.dates[0][REFERENCE])
            a, b = (stack_date(paths, ref) for paths in city.dates)
            label = _read_label(city.label, ref) if city.label is not None else None
            crs.add(ref.crs.to_string() if ref.crs is not None else None)
            size = f"{ref.height}x{ref.width}"
            log.info("OSCD %d/%d %s: %s px, %s", i, len(plan), city.name, size, city.split)
            tiles = list(tile_grid(ref.height, ref.width, tile)) if tile else []
            if tile and not tiles:
                log.warning("OSCD: %s (%s px) is smaller than one tile; left out", city.name, size)
            for t in tiles:
                rows, cols = t.slices()
                writer.add(
                    t.tile_id(city.name),
                    np.ascontiguousarray(a[:, rows, cols]),
                    np.ascontiguousarray(b[:, rows, cols]),
                    None if label is None else np.ascontiguousarray(label[rows, cols]),
                    crs=ref.crs,
                    transform=ref.transform * Affine.translation(t.col, t.row),
                    band_names=S2_BANDS,
                )
                splits[city.split].append(t.tile_id(city.name))
            if not tile:
                writer.add(
                    city.name,
                    a,
                    b,
                    label,
                    crs=ref.crs,
                    transform=ref.transform,
                    band_names=S2_BANDS,
                )
                splits[city.split].append(city.name)
        splits = {name: ids for name, ids in splits.items() if ids}
        if not splits:
            expected = f"cities of at least {tile}x{tile} pixels"
            raise DataError(image_dir, expected, "only smaller ones", "Use a smaller --tile")
        provenance = {
            "dataset": "OSCD",
            "source": str(src),
            "recipe": "sdrl prep oscd",
            "split": "official OSCD train/test city lists; unlabelled = no change map found",
            "cities": {s: [c.name for c in plan if c.split == s] for s in splits},
            "date_folders": sorted({p[0].parent.name for c in plan for p in c.dates}),
            "resampling": "bilinear onto the 10 m grid of date 1's B02 (sdrl.data.io.stack_bands)",
            "labels": "source 1 -> 0 unchanged, 2 -> 1 changed, other -> 255 ignore",
            "tile": tile,
            "citation": CITATION,
        }
        meta = DatasetMeta(
            kind="change",
            bands=list(S2_BANDS),
            classes=["unchanged", "changed"],
            label_values={0: 0, 1: 1},
            ignore_index=255,
            gsd=10.0,
            crs=crs.pop() if len(crs) == 1 else None,
            provenance=provenance,
        )
        writer.finish(meta, splits)
    counts = {name: len(ids) for name, ids in splits.items()}
    classes = list(meta.classes)
    return PrepResult(out, counts, classes=classes, unit="tiles" if tile else "cities")
