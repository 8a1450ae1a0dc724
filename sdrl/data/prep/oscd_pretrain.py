"""OSCD raw layout → the pretraining set of all cities (``sdrl prep oscd --pretrain``).

OSCD pretraining is two commands, two folders (a folder has one ``kind``)::

    sdrl prep oscd --src RAW --out data/oscd                       # change set (official split)
    sdrl prep oscd --src RAW --out data/oscd_pretrain --pretrain   # pretraining set

The second stacks each city's two dates onto the 10 m grid exactly as the change set does
(:func:`~sdrl.data.prep.oscd.stack_date`, into a hidden temporary folder next to ``out``,
removed afterwards), then writes every city as one scene of a collection
(:func:`~sdrl.data.prep.collection.prepare_collection`): tiles ``<city>_<row>_<col>``
(``tile`` 128 by default: OSCD cities are 400 to 1,200 pixels a side, so a city gives 9 to
~80 tiles), semantic masks of both dates from ``masks``, one spatially blocked train/val
split over all cities (blocks never straddle two cities), band statistics over all cities.
Cities run in ``workers`` processes, each city's files the same for any number.

Masks default to ``kmeans:16``: 16 spectral clusters per city (one model for both dates, so a
region keeps its id across them), about four times the regions per tile of ``indices`` (the
spectral-index rules: vegetation/water/built-up, the same class ids in every city, nothing
fitted). On the OSCD development protocol (issue 12, ``experiments/BENCHMARKS.md``) k-means
masks gave sdrl pretraining +3 points of F1 over index masks at the same budget, with half the
spread over seeds; ``indices`` is the choice when named classes are wanted.

All cities are used, the test cities' images included (no change label is read: a usual
transductive setting for self-supervised pretraining); ``without_test_cities`` leaves out the
cities of ``test.txt`` for a protocol where held-out images are never seen.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Literal

from sdrl.data.io import read_info, write_raster
from sdrl.data.outputs import check_output
from sdrl.data.prep.collection import parse_masks, prepare_collection
from sdrl.data.prep.oscd import (
    CITATION,
    REFERENCE,
    S2_BANDS,
    City,
    locate_oscd,
    plan_cities,
    stack_date,
)
from sdrl.data.prep.parallel import Workers, resolve_workers
from sdrl.data.prep.result import PrepResult
from sdrl.data.prep.scene import Scene
from sdrl.data.prep.splits import check_split_options
from sdrl.data.tiling import check_tile_size
from sdrl.errors import ConfigError, DataError

__all__ = ["DEFAULT_MASKS", "prepare_oscd_pretrain"]

log = logging.getLogger(__name__)

DEFAULT_MASKS = "kmeans:16"
"""The masks of the OSCD pretraining set (module doc: why k-means, why 16)."""


def _stack_city(city: City, folder: Path) -> tuple[int, int]:
    """Write a city's two dates, stacked on date 1's 10 m grid, to ``folder/{A,B}/<city>.tif``."""
    ref = read_info(city.dates[0][REFERENCE])
    for part, paths in zip(("A", "B"), city.dates, strict=True):
        (folder / part).mkdir(exist_ok=True)
        write_raster(
            folder / part / f"{city.name}.tif",
            stack_date(paths, ref),
            crs=ref.crs,
            transform=ref.transform,
            band_names=S2_BANDS,
            compress=None,  # read once, soon deleted
        )
    return ref.height, ref.width


def prepare_oscd_pretrain(
    src: str | Path,
    out: str | Path,
    *,
    masks: str = DEFAULT_MASKS,
    tile: int = 128,
    stride: int | None = None,
    without_test_cities: bool = False,
    images: str | Path | None = None,
    train_labels: str | Path | None = None,
    test_labels: str | Path | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    split_block: int = 4,
    seed: int = 0,
    kmeans_sample: int = 100_000,
    kmeans_fit: Literal["scene", "joint"] = "scene",
    workers: int = 1,
    overwrite: bool = False,
) -> PrepResult:
    """Build the 13-band OSCD pretraining folder of all cities (see the module docstring).

    Args:
        src: ``RAW``, the folder holding the extracted OSCD archives.
        out: Output dataset folder (written atomically).
        masks: ``kmeans:K`` (default ``kmeans:16``), ``kmeans`` (K = 8) or ``indices``.
        tile: Tile size in pixels (cities smaller than a tile are left out, with a warning).
        stride: Step between tiles; ``tile`` when ``None``.
        without_test_cities: Leave out the cities of ``test.txt``.
        images: Images folder relative to ``src`` (auto-detected).
        train_labels: Train labels folder relative to ``src`` (only to list the cities).
        test_labels: Test labels folder relative to ``src`` (only to list the cities).
        val_fraction: Approximate share of all tiles in ``val``.
        test_fraction: Approximate share of all tiles in ``test``.
        split_block: Side of the split blocks, in tile steps.
        seed: Seed of the split and of k-means.
        kmeans_sample: Pixels sampled to fit k-means (per city, or in all for ``joint``).
        kmeans_fit: ``scene`` (a model per city) or ``joint`` (one model for all cities).
        workers: Processes (0: one per core); the output is the same for any number.
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        What was written (tiles per split, cities in the unit).

    Raises:
        ConfigError: Bad options (checked before any work).
        DataError: A bad OSCD layout; :class:`~sdrl.data.prep.parallel.SceneError` names the
            city when one fails.
    """
    src, out = Path(src), Path(out)
    check_tile_size(tile)
    check_tile_size(stride, "--stride")
    parse_masks(masks)
    check_split_options(val_fraction, test_fraction, split_block)
    workers = resolve_workers(workers)
    if kmeans_fit not in ("scene", "joint"):
        raise ConfigError(f"--kmeans-fit: expected scene or joint, found '{kmeans_fit}'")
    image_dir, labels, lists = locate_oscd(src, images, train_labels, test_labels)
    check_output(out, [src], folder=True)
    if out.is_dir() and any(out.iterdir()) and not overwrite:  # before minutes of stacking
        hint = "Pass --overwrite or another --out"
        raise DataError(out, "a new or empty output folder", "a folder with files", hint)
    cities = plan_cities(image_dir, labels, lists)
    if without_test_cities:
        cities = [c for c in cities if c.name not in lists["test"]]
    kept = []
    for city in cities:
        ref = read_info(city.dates[0][REFERENCE])
        if min(ref.height, ref.width) < tile:
            size = f"{ref.height}x{ref.width}"
            log.warning("OSCD: %s (%s px) is smaller than one tile; left out", city.name, size)
        else:
            kept.append(city)
    if not kept:
        expected = f"cities of at least {tile}x{tile} pixels"
        raise DataError(image_dir, expected, "none", "Use a smaller --tile")
    out.parent.mkdir(parents=True, exist_ok=True)
    described = [f"OSCD city '{c.name}' ({image_dir / c.name})" for c in kept]
    with (
        tempfile.TemporaryDirectory(prefix=f".{out.name}.stacked-", dir=out.parent) as tmp,
        Workers(workers) as pool,
    ):
        folder = Path(tmp)
        names = [c.name for c in kept]
        jobs = [(city, folder) for city in kept]
        pool.run(_stack_city, jobs, names, described, stage="stack", summary=_size)
        scenes = [
            Scene(
                name=city.name,
                before=folder / "A" / f"{city.name}.tif",
                after=folder / "B" / f"{city.name}.tif",
                origin="OSCD",
                description=description,
                record={"city": city.name, "list": _listed(city, lists)},
            )
            for city, description in zip(kept, described, strict=True)
        ]
        provenance = {
            "dataset": "OSCD",
            "source": str(src),
            "recipe": "sdrl prep oscd --pretrain",
            "cities": names,
            "left_out": sorted({c.name for c in cities} - set(names)),
            "test_cities": "left out" if without_test_cities else "included (images only)",
            "resampling": "bilinear onto the 10 m grid of date 1's B02 (sdrl.data.io.stack_bands)",
            "citation": CITATION,
        }
        result = prepare_collection(
            scenes,
            out,
            masks=masks,
            tile=tile,
            stride=stride,
            band_names=S2_BANDS,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_block=split_block,
            seed=seed,
            kmeans_sample=kmeans_sample,
            kmeans_fit=kmeans_fit,
            workers=pool,
            overwrite=overwrite,
            provenance=provenance,
            inputs=[src],
            gsd=10.0,
        )
    return result


def _size(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]} px"


def _listed(city: City, lists: dict[str, list[str]]) -> str:
    """The official list naming the city (``train``, ``test``) or ``none``."""
    return next((name for name, cities in lists.items() if city.name in cities), "none")
