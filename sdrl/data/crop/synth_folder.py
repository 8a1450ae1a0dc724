"""Writing generated crop patches as a ⚑ crop dataset folder (``sdrl synth --kind crop``).

::

    DIR/h5_data/patch_000000.h5   S2_data (12, 10, H, W) int16, EnMAP_data (218, H/3, W/3)
                                  int16, label (L, H, W) uint8, priors (L, H, W) uint8
    DIR/train.txt, val.txt, test.txt   patch names, 70 / 15 / 15 %
    DIR/dataset.json              kind "crop", band names and wavelengths, statistics of the
                                  train split, months, size, the taxonomy, provenance
    DIR/taxonomy.csv              the taxonomy (a copy of the CSV given, or the built-in one)

Patch ``i`` goes to ``val`` when ``i mod 20`` is 14–16, to ``test`` when it is 17–19, else to
``train`` (a larger ``num`` keeps every earlier assignment). The folder appears only once
complete (:func:`~sdrl.data.staging.staged_dir`). Images are stored uncompressed (noisy
reflectances shrink by only 40 % with gzip, which would double the writing time and cost
every read a decompression), the Sentinel-2 series chunked by month so that reading its first
``T`` months reads only those; label maps are gzip-compressed (level 1, byte shuffling: any
HDF5 reader reads them). A 96-pixel patch takes about 2.8 MB.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sdrl import __version__
from sdrl.bands import preset_bands
from sdrl.data.crop.signatures import signatures
from sdrl.data.crop.synth import (
    BACKGROUND_SHARE,
    CLOUDY_MONTH,
    KEEP_CLASS,
    MONTHS,
    CropSynthConfig,
    SynthPatch,
    generate_patch,
)
from sdrl.data.crop.taxonomy import Taxonomy, builtin_taxonomy, write_taxonomy_csv
from sdrl.data.outputs import check_output
from sdrl.data.staging import atomic_copy, staged_dir, write_atomic, write_json_atomic
from sdrl.data.stats import BandMoments
from sdrl.errors import ConfigError

__all__ = ["crop_splits", "generate_crop_dataset"]

log = logging.getLogger(__name__)

_RULE = {14: "val", 15: "val", 16: "val", 17: "test", 18: "test", 19: "test"}


def crop_splits(num: int) -> dict[str, list[int]]:
    """Patch indexes of each split (module docstring).

    With fewer than 20 patches, an empty ``val`` or ``test`` takes the last training patch
    while two or more remain.

    Args:
        num: Number of patches.

    Returns:
        Split name → sorted indexes; splits left empty are omitted.
    """
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i in range(num):
        splits[_RULE.get(i % 20, "train")].append(i)
    for name in ("val", "test"):
        if not splits[name] and len(splits["train"]) >= 2:
            splits[name].append(splits["train"].pop())
    return {name: sorted(members) for name, members in splits.items() if members}


def _patches(config: CropSynthConfig, num: int, workers: int) -> Iterator[SynthPatch]:
    if workers <= 1 or num < 2:
        yield from (generate_patch(config, i) for i in range(num))
        return
    with ProcessPoolExecutor(max_workers=min(workers, num)) as pool:
        yield from pool.map(partial(generate_patch, config), range(num), chunksize=2)


def _write_h5(path: Path, patch: SynthPatch, index: int, seed: int) -> None:
    import h5py

    packed = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    with h5py.File(path, "w") as file:
        months = (1, *patch.s2.shape[1:])
        file.create_dataset("S2_data", data=patch.s2, chunks=months)
        file.create_dataset("EnMAP_data", data=patch.enmap)
        file.create_dataset("label", data=patch.label, **packed)
        file.create_dataset("priors", data=patch.prior, **packed)
        file.attrs["generator"] = "sdrl.data.crop.synth"
        file.attrs["seed"] = seed
        file.attrs["index"] = index
        file.attrs["enmap_month"] = patch.enmap_month
        file.attrs["cloudy_months"] = np.flatnonzero(patch.cloudy) + 1


def _check(num: int, size: int, seed: int, workers: int) -> None:
    if num < 1:
        raise ConfigError(f"--num: expected an integer ≥ 1, found {num}")
    if size < 3 or size % 3:
        raise ConfigError(
            f"--size: expected a multiple of 3 for crop data (EnMAP's grid is 3x coarser), "
            f"found {size}"
        )
    if seed < 0:
        raise ConfigError(f"--seed: expected an integer ≥ 0, found {seed}")
    if workers < 1:
        raise ConfigError(f"--workers: expected an integer ≥ 1, found {workers}")


def generate_crop_dataset(
    out: str | Path,
    num: int = 64,
    size: int = 96,
    seed: int = 0,
    taxonomy: Taxonomy | None = None,
    *,
    overwrite: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Generate a crop dataset folder of synthetic H2Crop patches, atomically.

    Args:
        out: Output folder; it appears only once complete.
        num: Number of patches.
        size: Patch side in 10 m pixels, a multiple of 3.
        seed: Dataset seed; patch ``i`` depends only on ``(seed, i)``, ``size`` and the taxonomy.
        taxonomy: Classes; the built-in 3/5/8/10-class one when ``None``.
        overwrite: Replace an existing non-empty ``out``.
        workers: Processes generating patches; the output is the same for any number.

    Returns:
        The contents written to ``dataset.json``.

    Raises:
        ConfigError: A parameter is out of range.
        DataError: ``out`` exists and is not empty while ``overwrite`` is false, or cannot be
            written.
    """
    _check(num, size, seed, workers)
    taxonomy = taxonomy if taxonomy is not None else builtin_taxonomy()
    source = Path(taxonomy.source) if taxonomy.source != "builtin" else None
    check_output(out, [source] if source is not None and source.is_file() else [], folder=True)
    try:
        config = CropSynthConfig(size=size, seed=seed, taxonomy=taxonomy)
    except ValueError as error:
        raise ConfigError(f"--taxonomy: {error}") from error
    splits = crop_splits(num)
    digits = max(6, len(str(num - 1)))
    names = [f"patch_{i:0{digits}d}" for i in range(num)]
    train = set(splits["train"])
    s2_moments, enmap_moments = BandMoments.empty(10), BandMoments.empty(218)
    counts = np.zeros(taxonomy.num_classes[-1], dtype=np.int64)
    with staged_dir(out, overwrite=overwrite) as staging:
        (staging / "h5_data").mkdir()
        for i, patch in enumerate(_patches(config, num, workers)):
            _write_h5(staging / "h5_data" / f"{names[i]}.h5", patch, i, seed)
            counts += np.bincount(patch.label[-1].ravel(), minlength=len(counts))
            if i in train:
                s2 = np.moveaxis(patch.s2, 1, 0)
                s2_moments.update(s2.reshape(s2.shape[0], -1, s2.shape[-1]))
                enmap_moments.update(patch.enmap)
            if (i + 1) % max(num // 10, 1) == 0:
                log.debug("synth crop: %d/%d patches", i + 1, num)
        for split, members in splits.items():
            _write_text(staging / f"{split}.txt", "".join(f"{names[i]}\n" for i in members))
        if source is not None and source.is_file():
            atomic_copy(source, staging / "taxonomy.csv")
        else:
            _write_text(staging / "taxonomy.csv", _csv_text(taxonomy))
        meta = _meta(config, taxonomy, num, s2_moments, enmap_moments, counts)
        write_json_atomic(staging / "dataset.json", meta)
    return meta


def _write_text(path: Path, text: str) -> None:
    data = text.encode()
    write_atomic(path, lambda file: file.write(data))


def _csv_text(taxonomy: Taxonomy) -> str:
    import io

    buffer = io.StringIO()
    write_taxonomy_csv(taxonomy, buffer)
    return buffer.getvalue()


def _meta(
    config: CropSynthConfig,
    taxonomy: Taxonomy,
    num: int,
    s2: BandMoments,
    enmap: BandMoments,
    counts: np.ndarray,
) -> dict[str, Any]:
    """The ``dataset.json`` contents (format in :mod:`sdrl.data.crop.folder`)."""
    s2_bands, enmap_bands = preset_bands("sentinel2-10"), preset_bands("enmap")
    leaves = taxonomy.names[-1]
    total = max(int(counts.sum()), 1)
    dips = signatures(taxonomy).dips_nm
    return {
        "kind": "crop",
        "s2_bands": [b.name for b in s2_bands],
        "s2_wavelengths_nm": [b.nm for b in s2_bands],
        "s2_mean": s2.mean.tolist(),
        "s2_std": np.where(s2.std > 0, s2.std, 1.0).tolist(),
        "enmap_bands": [b.name for b in enmap_bands],
        "enmap_wavelengths_nm": [b.nm for b in enmap_bands],
        "enmap_mean": enmap.mean.tolist(),
        "enmap_std": np.where(enmap.std > 0, enmap.std, 1.0).tolist(),
        "months": MONTHS,
        "size": [config.size, config.size],
        "gsd": 10.0,
        "enmap_gsd": 30.0,
        "taxonomy": taxonomy.to_dict(),
        "provenance": {
            "generator": "sdrl.data.crop.synth",
            "seed": config.seed,
            "num": num,
            "size": config.size,
            "statistics": "every patch of the train split, all 12 months",
            "reflectance_scale": 10000,
            "months": "January..December (index 0 = January)",
            "parameters": {
                "background_share": BACKGROUND_SHARE,
                "prior_keeps_class": KEEP_CLASS,
                "cloudy_month": CLOUDY_MONTH,
                "enmap_month": "uniform in 4.5..7.5 (mid-May to mid-August)",
            },
            "leaf_absorption_nm": {name: float(dips[i]) for i, name in enumerate(leaves)},
            "pixel_fractions": {
                "background": round(float(counts[0]) / total, 5),
                **{n: round(float(counts[i + 1]) / total, 5) for i, n in enumerate(leaves)},
            },
            "patch_ids": "patch_<i>: regenerate with sdrl.data.crop.synth.generate_patch("
            "CropSynthConfig(size, seed, taxonomy), i)",
        },
        "version": __version__,
    }
