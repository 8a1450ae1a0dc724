"""``finetune(config)``: one change-detection finetuning run, from dataset folder to checkpoints.

The library function behind ``sdrl finetune``::

    from sdrl import FinetuneConfig, finetune
    result = finetune(FinetuneConfig(data="data/levir", out="runs/cd", init="runs/pre/best.ckpt",
                                     label_fraction=0.1, max_steps=2000))
    print(result.best_checkpoint, result.metrics["val/f1"])

It runs on the task harness (:mod:`sdrl.tasks.harness`): run-folder rules, deterministic
resumable loaders, atomic ``last.ckpt``/``best.ckpt`` (here best validation F1), CSV / W&B
logs and exact resume. The run folder also receives ``train_subset.json``: the label
fraction, its seed, and the ids of the training tiles used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_lightning.callbacks import EarlyStopping

from sdrl.checkpoint import CheckpointHeader, read_header
from sdrl.data.augment import build_augment
from sdrl.data.datasets import ChangeDataset
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.staging import write_json_atomic
from sdrl.errors import ConfigError, DataError
from sdrl.models.change import ChangeModel
from sdrl.models.init import build_change_model, init_encoder, tile_multiple
from sdrl.models.weight_files import META_FILE
from sdrl.tasks.change.config import FinetuneConfig
from sdrl.tasks.change.loss import ChangeLoss, auto_change_weight, count_change_pixels
from sdrl.tasks.change.module import FinetuneModule
from sdrl.tasks.harness import RunResult, dataset_header, fit_task, parse_devices
from sdrl.tasks.loading import SplitDataModule, check_tile_size
from sdrl.tasks.loggers import is_global_zero
from sdrl.tasks.optim import OptimSettings
from sdrl.tasks.run_dir import prepare_run_dir
from sdrl.tasks.seeding import mix_seed, reseed

__all__ = [
    "SUBSET_FILE",
    "build_model",
    "choose_tiles",
    "finetune",
    "model_options",
    "resolve_config",
]

log = logging.getLogger(__name__)

SUBSET_FILE = "train_subset.json"
_SUBSET_STREAM = 104729  # separates the subset draw from other uses of the seed


def choose_tiles(total: int, fraction: float, seed: int) -> np.ndarray:
    """The training tiles of a label fraction: sorted indexes into the split.

    ``max(1, round(fraction * total))`` tiles, the first of a permutation seeded by ``seed``:
    the same seed gives the same tiles, and a smaller fraction a subset of a larger one's.

    Args:
        total: Tiles in the training split.
        fraction: Share to keep, ``0 < fraction <= 1`` (1 keeps every tile).
        seed: Seed of the draw.
    """
    if fraction >= 1.0:
        return np.arange(total)
    count = min(max(1, round(fraction * total)), total)
    order = np.random.default_rng(mix_seed(seed, _SUBSET_STREAM)).permutation(total)
    return np.sort(order[:count])


def _source_backbone(init: str) -> str | None:
    """The backbone named by an ``--init`` checkpoint or export folder, if any."""
    path = Path(init)
    try:
        if path.is_dir() and (path / META_FILE).is_file():
            return json.loads((path / META_FILE).read_text()).get("architecture")
        if path.is_file() and path.suffix == ".ckpt":
            return read_header(path, kinds=("pretrain", "change")).backbone
    except (OSError, ValueError, DataError):
        return None  # init_encoder reports unreadable files with the full story
    return None


def resolve_config(config: FinetuneConfig) -> FinetuneConfig:
    """Fill ``backbone`` (siamese): the flag, else the ``--init`` source's, else resnet18."""
    if config.model != "siamese" or config.backbone is not None:
        return config
    backbone = _source_backbone(config.init) if config.init != "random" else None
    if backbone is not None:
        log.info("--backbone %s (from --init %s)", backbone, config.init)
    return dataclasses.replace(config, backbone=backbone or "resnet18")


def model_options(config: FinetuneConfig) -> dict[str, Any]:
    """The model's keyword options: ``--model-option`` entries, out channels, fusion and head.

    Raises:
        ConfigError: ``out_channels`` given (``--loss`` sets it).
    """
    if "out_channels" in config.model_options:
        raise ConfigError("--model-option out_channels: set by --loss (ce: 2, bce-dice: 1)")
    options = {**config.model_options, "out_channels": config.out_channels}
    if config.model == "siamese":
        options["fusion"] = config.fusion or options.get("fusion", "absdiff")
        options["head"] = config.head or options.get("head", "fpn")
    return options


def build_model(
    config: FinetuneConfig,
    bands: int,
    options: dict[str, Any],
    *,
    band_names: Sequence[str] | None = None,
    wavelengths_nm: Sequence[float | None] | None = None,
    resuming: bool = False,
) -> ChangeModel:
    """The change model of ``config`` for ``bands`` bands, its encoder from ``config.init``.

    Args:
        config: The run's settings (after :func:`resolve_config`).
        bands: Bands ``C`` of each date.
        options: From :func:`model_options`.
        band_names: The data's band names: an ``--init`` export of other bands is re-mapped
            to them by wavelength (:func:`~sdrl.models.init.init_encoder`).
        wavelengths_nm: The data's centre wavelengths where known.
        resuming: The run continues from its ``last.ckpt`` (which holds the weights): the
            encoder is not initialised from ``config.init``.

    Raises:
        ConfigError: An invalid model, backbone or option.
        DataError: An ``--init`` file that cannot be read or does not fit.
    """
    try:
        model = build_change_model(config.model, bands, config.backbone, **options)
    except ValueError as error:
        raise ConfigError(f"--model {config.model}: {error}") from None
    if resuming:
        return model  # the weights come from last.ckpt
    report = init_encoder(model, config.init, bands=band_names, wavelengths_nm=wavelengths_nm)
    if report.loaded:
        adapted = f", first layer adapted to {bands} bands" if report.adapted else ""
        log.info(
            "--init %s: %d encoder tensors loaded (prefix %r%s)",
            config.init,
            len(report.loaded),
            report.prefix,
            adapted,
        )
    return model


def _datasets(config: FinetuneConfig) -> tuple[ChangeDataset, ChangeDataset | None, int]:
    """Training (subset) and validation sets, and the size of the whole training split."""
    cache = config.cache_stats
    train = ChangeDataset(config.data, config.train_split, config.crop_size, cache_stats=cache)
    check_tile_size(train, config.crop_size)
    val = None
    splits = train.folder.splits()
    if config.val_split is not None and config.val_split not in splits:
        log.warning(
            "%s has no split %r (splits: %s): validation is off, best.ckpt follows the "
            "training loss; pass --val-split NAME, or --val-split none to silence this",
            config.data,
            config.val_split,
            ", ".join(splits),
        )
    elif config.val_split is not None:
        val = ChangeDataset(config.data, config.val_split, config.crop_size, cache_stats=cache)
        check_tile_size(val, config.crop_size)
    total = len(train)
    picks = choose_tiles(total, config.label_fraction, config.resolved_label_seed)
    train.ids = train.ids[picks]  # the rest of the split is never read
    if len(train) < config.batch_size:
        raise DataError(
            train.folder.root,
            f"at least --batch-size {config.batch_size} training tiles",
            f"{len(train)} of {total} tiles in split {config.train_split!r} with "
            f"--label-fraction {config.label_fraction}",
            "Raise --label-fraction or lower --batch-size",
        )
    return train, val, total


def _strategy(config: FinetuneConfig, model: ChangeModel) -> str | None:
    """DDP must allow unused parameters when the encoder is frozen for the first epochs."""
    if not config.freeze_encoder_epochs or model.encoder_frozen:
        return None
    devices = parse_devices(config.devices)
    many = config.num_nodes > 1 or (isinstance(devices, int) and devices > 1)
    many |= isinstance(devices, list) and len(devices) > 1
    many |= devices in ("auto", -1) and torch.cuda.device_count() > 1
    if many and config.strategy in ("auto", "ddp"):
        return "ddp_find_unused_parameters_true"
    return None


def finetune(config: FinetuneConfig) -> RunResult:
    """Finetune a change model as configured.

    Args:
        config: The run's settings.

    Returns:
        Where the checkpoints are (``best.ckpt``: best ``val/f1``) and the final metrics.

    Raises:
        ConfigError: Inconsistent settings, or a run folder that holds a run already.
        DataError: The dataset or ``--init`` does not fit, or too few training tiles.
        TrainingError: Non-finite input values or a non-finite loss during training.
    """
    config = resolve_config(config)
    start = prepare_run_dir(config)
    reseed(config.seed)
    train, val, total = _datasets(config)
    options = model_options(config)
    model = build_model(
        config,
        train.num_bands,
        options,
        band_names=train.meta.bands,
        wavelengths_nm=train.meta.provenance.get("wavelengths_nm"),
        resuming=start.resume_step is not None,
    )
    weight = config.change_weight
    if weight == "auto":
        weight = auto_change_weight(*count_change_pixels(train))
        log.info("change weight %.3g (auto, from the training labels)", weight)
    criterion = ChangeLoss(config.loss, 1.0 if weight == "none" else float(weight))
    header = _header(config, train, total, model, options, criterion.change_weight)
    module = FinetuneModule(
        model,
        criterion,
        build_augment(config.augment, train.num_bands),
        OptimSettings.from_config(config),
        header,
        seed=config.seed,
        freeze_encoder_epochs=config.freeze_encoder_epochs,
        encoder_lr_ratio=config.encoder_lr_ratio,
        threshold=float(header.extra["threshold"]),
    )
    data = SplitDataModule(train, val, config.batch_size, config.seed, config.workers)
    monitor, mode = ("val/f1", "max") if val is not None else ("train/loss_epoch", "min")
    callbacks: list[Any] = []
    if config.early_stopping_patience and val is not None:
        callbacks.append(
            EarlyStopping(
                "val/f1",
                patience=config.early_stopping_patience,
                mode="max",
                check_on_train_epoch_end=False,
            )
        )
    if is_global_zero():
        subset = {
            "label_fraction": config.label_fraction,
            "label_seed": config.resolved_label_seed,
            "split": config.train_split,
            "count": len(train),
            "total": total,
            "ids": train.ids.tolist(),
        }
        write_json_atomic(config.run_dir / SUBSET_FILE, subset)
        log.info("training on %d of %d tiles of %r", len(train), total, config.train_split)
    return fit_task(
        config,
        module,
        data,
        start,
        monitor,
        mode,
        validate=val is not None,
        callbacks=callbacks,
        strategy=_strategy(config, model),
    )


def _header(
    config: FinetuneConfig,
    dataset: ChangeDataset,
    total: int,
    model: ChangeModel,
    options: dict[str, Any],
    change_weight: float,
) -> CheckpointHeader:
    """The checkpoint header of a finetuning run (its fields in :mod:`sdrl.predict.model`)."""
    meta = dataset.meta
    return dataset_header(
        "change",
        config,
        dataset,
        model=config.model,
        model_options=options,
        tile_multiple=tile_multiple(model),
        label_values=dict(meta.label_values) if meta.label_values is not None else None,
        ignore_index=meta.ignore_index,
        ignore=IGNORE_INDEX,
        output="softmax" if config.out_channels == 2 else "sigmoid",
        threshold=0.5,
        loss=config.loss,
        change_weight=change_weight,
        init=config.init,
        label_fraction=config.label_fraction,
        label_seed=config.resolved_label_seed,
        train_tiles=len(dataset),
        train_tiles_total=total,
        crop_size=config.crop_size,
    )
