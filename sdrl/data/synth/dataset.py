"""Writing generated scenes as a ⚑ dataset folder (``sdrl synth``).

``kind="change"``: ``A/ B/ label/`` (0/1 change on A's grid) with ``list/{train,val,test}.txt``
(80/10/10); ``kind="pretrain"``: ``A/ B/ label/`` (semantic mask of A) ``label_B/`` (semantic
mask of B) with ``list/{train,val}.txt`` (90/10). Scene ``i`` has id ``i`` zero-padded to six
digits; its split is fixed by ``i mod 10`` (so a larger ``num`` keeps every earlier assignment).
Images are GeoTIFFs in EPSG:32633 (by default), each scene at its own non-overlapping place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from sdrl.data.folder import DatasetMeta
from sdrl.data.outputs import check_output
from sdrl.data.staging import staged_dir
from sdrl.data.synth.engine import SynthConfig, SynthScene, generate_scene
from sdrl.data.synth.spectra import CLASSES, band_set
from sdrl.data.writer import DatasetWriter
from sdrl.errors import ConfigError

__all__ = ["SynthKind", "generate_dataset", "scene_splits"]

log = logging.getLogger(__name__)

SynthKind = Literal["change", "pretrain"]
_COLUMNS = 64
_ORIGIN = (200_000.0, 6_000_000.0)


def scene_splits(num: int, kind: SynthKind) -> dict[str, list[int]]:
    """Scene indexes of each split.

    Scene ``i`` goes to ``test`` when ``i mod 10 = 9`` and ``val`` when ``i mod 10 = 8``
    (change), or to ``val`` when ``i mod 10 = 9`` (pretrain); the rest to ``train``. With fewer
    than ten scenes, an empty split takes the last training scene while two or more remain.

    Args:
        num: Number of scenes.
        kind: ``change`` (train/val/test) or ``pretrain`` (train/val).

    Returns:
        Split name → sorted scene indexes; splits left empty are omitted.
    """
    rule = {9: "test", 8: "val"} if kind == "change" else {9: "val"}
    splits: dict[str, list[int]] = {"train": []}
    splits.update({name: [] for name in sorted(rule.values(), reverse=True)})
    for i in range(num):
        splits[rule.get(i % 10, "train")].append(i)
    for name, members in splits.items():
        if name != "train" and not members and len(splits["train"]) >= 2:
            members.append(splits["train"].pop())
    return {name: sorted(members) for name, members in splits.items() if members}


def _scenes(config: SynthConfig, num: int, workers: int) -> Iterator[SynthScene]:
    """Scenes ``0..num-1`` in order, generated here or by a pool of processes."""
    if workers <= 1 or num < 2:
        yield from (generate_scene(config, i) for i in range(num))
        return
    with ProcessPoolExecutor(max_workers=min(workers, num)) as pool:
        yield from pool.map(partial(generate_scene, config), range(num), chunksize=2)


def _check(kind: str, num: int, gsd: float, crs: str, workers: int) -> CRS:
    if kind not in ("change", "pretrain"):
        raise ConfigError(f"--kind: expected change or pretrain, found {kind!r}")
    if num < 1:
        raise ConfigError(f"--num: expected an integer ≥ 1, found {num}")
    if workers < 1:
        raise ConfigError(f"--workers: expected an integer ≥ 1, found {workers}")
    if not gsd > 0:
        raise ConfigError(f"--gsd: expected metres > 0, found {gsd}")
    try:
        return CRS.from_user_input(crs)
    except CRSError as error:
        raise ConfigError(
            f"--crs: expected a CRS like EPSG:32633, found {crs!r} ({error})"
        ) from error


def _fractions(counts: np.ndarray, names: tuple[str, ...] | list[str]) -> dict[str, float]:
    total = max(int(counts.sum()), 1)
    padded = np.pad(counts, (0, max(len(names) - len(counts), 0)))
    return {name: round(float(padded[i]) / total, 5) for i, name in enumerate(names)}


def generate_dataset(
    out: str | Path,
    kind: SynthKind = "change",
    num: int = 64,
    size: int = 256,
    bands: int = 3,
    seed: int = 0,
    *,
    change_rate: float = 1.0,
    misregistration: float = 2.0,
    nuisance: float = 1.0,
    scale: float = 1.0,
    gsd: float | None = None,
    crs: str = "EPSG:32633",
    overwrite: bool = False,
    workers: int = 1,
) -> DatasetMeta:
    """Generate a dataset folder of synthetic bitemporal scenes, atomically.

    Args:
        out: Output folder; it appears only once complete.
        kind: ``change`` (change labels) or ``pretrain`` (semantic masks of both dates).
        num: Number of scenes.
        size: Tile side in pixels.
        bands: Band count (3 RGB, 4 RGB+NIR, 13 Sentinel-2, else evenly spaced 450–2300 nm).
        seed: Dataset seed; scene ``i`` depends only on ``(seed, i)`` and the parameters.
        change_rate: Multiplier of the real-change probabilities (0 = no real change).
        misregistration: Largest B-vs-A shift in pixels (0 = none).
        nuisance: Strength of the non-change differences (0 = none).
        scale: Object size factor.
        gsd: Pixel size in metres recorded in the GeoTIFFs; default 1 m for 3 or 4 bands,
            10 m otherwise. Object sizes are in pixels whatever the gsd (see ``scale``).
        crs: Coordinate reference system of the GeoTIFFs.
        overwrite: Replace an existing non-empty ``out``.
        workers: Processes generating scenes (the files are written by this one); the output
            is the same for any number.

    Returns:
        The :class:`DatasetMeta` written as ``dataset.json``.

    Raises:
        ConfigError: A parameter is out of range.
        DataError: ``out`` exists and is not empty while ``overwrite`` is false, or cannot be
            written (a path under a file, no permission).
    """
    config = SynthConfig(size, bands, seed, change_rate, misregistration, nuisance, scale)
    if gsd is None:
        gsd = 1.0 if bands in (3, 4) else 10.0
    crs_value = _check(kind, num, gsd, crs, workers)
    check_output(out, folder=True)  # a path under a file fails here, before any scene
    band_info = band_set(bands)
    splits = scene_splits(num, kind)
    digits = max(6, len(str(num - 1)))
    with staged_dir(out, overwrite=overwrite) as staging:
        writer = DatasetWriter(staging)
        ids = []
        for i, scene in enumerate(_scenes(config, num, workers)):
            row, col = divmod(i, _COLUMNS)
            x0 = _ORIGIN[0] + col * size * gsd
            y0 = _ORIGIN[1] - row * size * gsd
            tile_id = f"{i:0{digits}d}"
            writer.add(
                tile_id,
                scene.image_a,
                scene.image_b,
                label=scene.change if kind == "change" else scene.mask_a,
                label_b=None if kind == "change" else scene.mask_b,
                crs=crs_value,
                transform=Affine(gsd, 0.0, x0, 0.0, -gsd, y0),
                band_names=band_info.names,
            )
            ids.append(tile_id)
            if (i + 1) % max(num // 10, 1) == 0:
                log.debug("synth: %d/%d scenes", i + 1, num)
        provenance: dict[str, Any] = {
            "generator": "sdrl.data.synth",
            "seed": seed,
            "num": num,
            "size": size,
            "wavelengths_nm": band_info.wavelengths.tolist(),
            "parameters": {
                "change_rate": change_rate,
                "misregistration_px": misregistration,
                "nuisance": nuisance,
                "scale": scale,
            },
            "semantic_classes": list(CLASSES),
            "scene_ids": "id = scene index; regenerate with "
            "sdrl.data.synth.generate_scene(SynthConfig(...), index)",
            "change_label": "class of date 1 != class of date 2 at the ground position of each "
            "pixel of A (before nuisances); B and label_B are misregistered together by up to "
            f"{misregistration} px",
            "reflectance_scale": 10000,
        }
        if kind == "change":
            provenance["pixel_fractions"] = _fractions(
                writer.class_pixels("label"), ["unchanged", "changed"]
            )
        else:
            provenance["pixel_fractions"] = {
                "A": _fractions(writer.class_pixels("label"), CLASSES),
                "B": _fractions(writer.class_pixels("label_B"), CLASSES),
            }
        meta = DatasetMeta(
            kind=kind,
            bands=list(band_info.names),
            classes=["unchanged", "changed"] if kind == "change" else list(CLASSES),
            ignore_index=None if kind == "change" else 255,
            gsd=float(gsd),
            crs=crs_value.to_string(),
            provenance=provenance,
        )
        writer.finish(meta, {name: [ids[i] for i in members] for name, members in splits.items()})
    return meta
