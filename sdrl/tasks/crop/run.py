"""``train_crop(config)``: one crop-classifier training run, from a crop folder to checkpoints.

The library function behind ``sdrl crop train``::

    from sdrl.tasks.crop import CropConfig, train_crop
    result = train_crop(CropConfig(data="data/crop", out="runs/crop", size="tiny", max_steps=50))
    print(result.best_checkpoint, result.metrics["val/macro_f1"])

It runs on the task harness (:mod:`sdrl.tasks.harness`): run-folder rules, resumable loaders,
atomic ``last.ckpt``/``best.ckpt`` (here the best mean macro F1 over the levels, H2Crop's
scheme), CSV / W&B logs and exact resume. The checkpoint header (kind ``crop``) holds
everything ``sdrl crop evaluate`` and ``sdrl crop predict`` need: the model config, the bands
and statistics of both sensors, the month window and the taxonomy.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sdrl import __version__
from sdrl.checkpoint import CheckpointHeader
from sdrl.data.crop.augment import CropAugment
from sdrl.data.crop.dataset import CropDataset
from sdrl.data.crop.folder import CropFolder, CropFolderInfo, crop_folder_info
from sdrl.data.crop.stats import CropStats, load_stats
from sdrl.data.crop.taxonomy import Taxonomy, load_taxonomy
from sdrl.errors import ConfigError, DataError
from sdrl.models.crop import (
    CropModel,
    CropModelConfig,
    build_crop_model,
    init_spectral_from_export,
    init_temporal_from_export,
)
from sdrl.tasks.crop.config import CropConfig
from sdrl.tasks.crop.inference import MODEL_NAME, taxonomy_paths
from sdrl.tasks.crop.module import CropTask
from sdrl.tasks.harness import RunResult, fit_task
from sdrl.tasks.loading import SplitDataModule
from sdrl.tasks.optim import OptimSettings
from sdrl.tasks.run_dir import prepare_run_dir
from sdrl.tasks.seeding import reseed

__all__ = ["build_model", "resolve_taxonomy", "train_crop"]

log = logging.getLogger(__name__)


def resolve_taxonomy(config: CropConfig, info: CropFolderInfo) -> Taxonomy:
    """``--taxonomy`` if given, else the folder's; checked against the label maps.

    Raises:
        ConfigError: No taxonomy anywhere, or one with another number of levels.
    """
    taxonomy = load_taxonomy(config.taxonomy) if config.taxonomy else info.taxonomy
    if taxonomy is None:
        raise ConfigError(
            f"{info.root}: its dataset.json has no taxonomy; pass --taxonomy CSV (H2Crop's "
            "cascade_labels.csv format)"
        )
    if taxonomy.levels != info.levels:
        raise DataError(
            taxonomy.source,
            f"{info.levels} levels like the label maps of {info.root}",
            f"{taxonomy.levels} levels",
        )
    return taxonomy


def build_model(
    config: CropConfig, info: CropFolderInfo, taxonomy: Taxonomy, *, resuming: bool = False
) -> CropModel:
    """The classifier for the folder's bands and the taxonomy, encoders from the exports.

    Raises:
        ConfigError: Options that do not fit the data (months, EnMAP, priors).
        DataError: An export that cannot initialise its encoder.
    """
    if config.months > info.months:
        raise ConfigError(
            f"--months {config.months}: the patches of {info.root} hold {info.months} months "
            f"({_first_patch(info)} has {info.months}); pass --months {info.months} or fewer"
        )
    if config.enmap and info.enmap_bands is None:
        raise DataError(
            _first_patch(info),
            "an EnMAP cube (key EnMAP or EnMAP_data) for the EnMAP stream",
            "none",
            "Pass --no-enmap to train on Sentinel-2 only",
        )
    if config.priors and not info.priors:
        raise DataError(
            _first_patch(info),
            "the previous year's labels (key prior or priors) for --priors",
            "none",
            "Drop --priors",
        )
    model = build_crop_model(
        CropModelConfig(
            num_classes=taxonomy.num_classes,
            s2_bands=len(info.s2_bands),
            months=config.months,
            enmap_bands=len(info.enmap_bands or ()) if config.enmap else 0,
            size=config.size,
            spectral_encoder=config.spectral_encoder,
            priors=config.priors,
        )
    )
    if resuming:
        return model  # the weights come from last.ckpt
    if config.temporal_init:
        names = init_temporal_from_export(model, config.temporal_init)
        log.info("--temporal-init %s: %d tensors loaded", config.temporal_init, len(names))
    if config.spectral_init:
        bands = list(info.enmap_bands or ())
        names = init_spectral_from_export(model, config.spectral_init, bands)
        log.info("--spectral-init %s: %d tensors loaded", config.spectral_init, len(names))
    return model


def _first_patch(info: CropFolderInfo) -> Path:
    """The file whose header :func:`crop_folder_info` describes (for error messages)."""
    return CropFolder(info.root).files(info.splits[0])[1][0]


def _stats(config: CropConfig) -> CropStats | None:
    return load_stats(config.stats) if config.stats else None


def train_crop(config: CropConfig) -> RunResult:
    """Train the crop classifier as configured.

    Returns:
        Where the checkpoints are (``best.ckpt``: best ``val/macro_f1``) and the final metrics.

    Raises:
        ConfigError: Inconsistent settings, or a run folder that holds a run already.
        DataError: The crop folder, taxonomy, statistics or an export do not fit.
        TrainingError: A non-finite loss during training.
    """
    start = prepare_run_dir(config)
    reseed(config.seed)
    info = crop_folder_info(config.data)
    taxonomy = resolve_taxonomy(config, info)
    stats = _stats(config)

    def dataset(split: str) -> CropDataset:
        return CropDataset(
            config.data,
            split,
            months=config.months,
            enmap=config.enmap,
            priors=config.priors,
            taxonomy=taxonomy,
            stats=stats,
        )

    train = dataset(config.train_split)
    val = None
    if config.val_split is not None and config.val_split in info.splits:
        val = dataset(config.val_split)
    elif config.val_split is not None:
        log.warning(
            "%s has no split %r (splits: %s): validation is off, best.ckpt follows the "
            "training loss; pass --val-split NAME, or --val-split none to silence this",
            config.data, config.val_split, ", ".join(info.splits),
        )  # fmt: skip
    if len(train) < config.batch_size:
        raise DataError(
            info.root,
            f"at least --batch-size {config.batch_size} patches in split {config.train_split!r}",
            f"{len(train)}",
            "Lower --batch-size",
        )
    if config.crop_size is not None and config.crop_size > min(info.height, info.width):
        raise ConfigError(
            f"--crop-size {config.crop_size}: larger than the patches of {info.root} "
            f"({info.height}x{info.width} px)"
        )
    model = build_model(config, info, taxonomy, resuming=start.resume_step is not None)
    augment = None
    if config.augment != "none" or config.crop_size is not None:
        geometric = config.augment != "none"
        augment = CropAugment(flips=geometric, rotations=geometric, crop_size=config.crop_size)
    module = CropTask(
        model,
        augment,
        OptimSettings.from_config(config),
        _header(config, info, train.stats, taxonomy, model),
        taxonomy_paths(taxonomy),
        decoding=config.decoding,
        seed=config.seed,
    )
    data = SplitDataModule(train, val, config.batch_size, config.seed, config.workers)
    monitor, mode = ("val/macro_f1", "max") if val is not None else ("train/loss_epoch", "min")
    log.info(
        "crop classifier (%s, %s): %d training patches, %d months, levels %s",
        config.size,
        "S2 + EnMAP" if config.enmap else "S2 only",
        len(train),
        config.months,
        "/".join(str(k - 1) for k in taxonomy.num_classes),
    )
    return fit_task(config, module, data, start, monitor, mode, validate=val is not None)


def _header(
    config: CropConfig,
    info: CropFolderInfo,
    stats: CropStats,
    taxonomy: Taxonomy,
    model: CropModel,
) -> CheckpointHeader:
    """The checkpoint header of a crop run: both sensors' bands and statistics, the taxonomy."""
    enmap = config.enmap and info.enmap_bands is not None

    def floats(values: np.ndarray | None) -> list[float]:
        return [float(v) for v in values] if enmap and values is not None else []

    return CheckpointHeader(
        kind="crop",
        backbone=None,
        in_channels=len(info.s2_bands),
        bands=list(info.s2_bands),
        wavelengths_nm=list(info.s2_wavelengths),
        mean=[float(v) for v in stats.s2_mean],
        std=[float(v) for v in stats.s2_std],
        classes=list(taxonomy.names[-1]),
        model=MODEL_NAME,
        model_options=asdict(model.config),
        data=str(config.data),
        tile_multiple=3,
        version=__version__,
        extra={
            "months": config.months,
            "enmap_bands": list(info.enmap_bands or ()) if enmap else [],
            "enmap_wavelengths_nm": list(info.enmap_wavelengths or ()) if enmap else [],
            "enmap_mean": floats(stats.enmap_mean),
            "enmap_std": floats(stats.enmap_std),
            "taxonomy": taxonomy.to_dict(),
            "decoding": config.decoding,
            "priors": config.priors,
            "temporal_init": config.temporal_init,
            "spectral_init": config.spectral_init,
        },
    )
