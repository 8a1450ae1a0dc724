"""``pretrain(config)``: one self-supervised pretraining run, from dataset folder to checkpoints.

The library function behind ``sdrl pretrain``; a notebook or a script calls it the same way::

    from sdrl import PretrainConfig, pretrain
    result = pretrain(PretrainConfig(data="data/pre", out="runs/sdrl", backbone="resnet18",
                                     max_steps=1000, method_options={"decouple_weight": 0.5}))
    print(result.best_checkpoint, result.metrics["val/probe_acc"])
"""

from __future__ import annotations

import logging

from sdrl.checkpoint import CheckpointHeader
from sdrl.data.augment import build_augment
from sdrl.data.datasets import PretrainPairDataset
from sdrl.errors import ConfigError, DataError
from sdrl.models import build_backbone
from sdrl.ssl.methods import PretrainMethod, build_method
from sdrl.tasks.harness import RunResult, dataset_header, fit_task
from sdrl.tasks.loading import check_tile_size
from sdrl.tasks.loggers import is_global_zero
from sdrl.tasks.optim import OptimSettings
from sdrl.tasks.pretrain.checks import warn_about_masks
from sdrl.tasks.pretrain.config import PretrainConfig
from sdrl.tasks.pretrain.data import PretrainDataModule
from sdrl.tasks.pretrain.module import PretrainModule
from sdrl.tasks.pretrain.probe import RegionProbe
from sdrl.tasks.pretrain.views import ViewMaker
from sdrl.tasks.run_dir import prepare_run_dir
from sdrl.tasks.seeding import reseed

__all__ = ["pretrain"]

log = logging.getLogger(__name__)


def _build_method(config: PretrainConfig, dataset: PretrainPairDataset) -> PretrainMethod:
    bands = dataset.num_bands
    try:
        backbone = build_backbone(
            config.backbone,
            bands,
            weights=config.weights,
            bands=dataset.meta.bands,
            wavelengths_nm=dataset.meta.provenance.get("wavelengths_nm"),
        )
    except DataError as error:
        raise DataError(
            error.path,
            error.expected,
            error.found,
            f"{error.hint + ' ' if error.hint else ''}(--weights for --data {dataset.folder.root} "
            f"with {bands} bands {dataset.meta.bands}; 3-band RGB weights are adapted to any "
            f"band count automatically)",
        ) from None
    except ValueError as error:
        raise ConfigError(f"--backbone {config.backbone}: {error}") from None
    num_classes = dataset.meta.num_classes
    if num_classes < 1:
        raise DataError(dataset.folder.meta_path, "class names of the masks", "no classes")
    try:
        return build_method(config.method, backbone, num_classes, **config.method_options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--method {config.method}: {error}") from None


def _header(config: PretrainConfig, dataset: PretrainPairDataset) -> CheckpointHeader:
    """The checkpoint header of a pretraining run (kind ``pretrain``)."""
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in config.method_options.items()}
    return dataset_header("pretrain", config, dataset, method=config.method, method_options=options)


def pretrain(config: PretrainConfig) -> RunResult:
    """Run self-supervised pretraining as configured.

    Args:
        config: The run's settings.

    Returns:
        Where the checkpoints are and the final metrics.

    Raises:
        ConfigError: Inconsistent settings, or a run folder that holds a run already.
        DataError: The dataset or ``--weights`` does not fit.
        TrainingError: Non-finite input values or a non-finite loss during training.
    """
    start = prepare_run_dir(config)
    reseed(config.seed)
    probe_on = config.probe != "none"
    data = PretrainDataModule(
        config.data,
        config.batch_size,
        config.seed,
        config.workers,
        config.crop_size,
        config.train_split,
        config.val_split,
        config.probe_tiles if probe_on else 0,
    )
    dataset = data.train_set
    check_tile_size(dataset, config.crop_size)
    if data.val_set is not None:
        check_tile_size(data.val_set, config.crop_size)
    method = _build_method(config, dataset)
    if is_global_zero():
        warn_about_masks(dataset, config.method, method.needs_masks)
        if config.views == "dates" and not dataset.bitemporal:
            log.info("%s has no B/ images: the two views are augmentations of A", config.data)
    views = ViewMaker(
        build_augment(config.augment, dataset.num_bands), config.views, dataset.bitemporal
    )
    probe = None
    if config.probe != "none" and data.val_set is not None:
        probe = RegionProbe(config.probe)
    module = PretrainModule(
        method,
        views,
        OptimSettings.from_config(config),
        _header(config, dataset),
        seed=config.seed,
        probe=probe,
        val_roles=data.val_roles,
        probe_every=config.probe_every,
    )
    if module.probe is not None:
        monitor, mode = "val/probe_acc", "max"
    elif data.val_set is not None:
        monitor, mode = "val/loss", "min"
    else:
        monitor, mode = "train/loss_epoch", "min"
    return fit_task(config, module, data, start, monitor, mode, validate=bool(module.val_roles))
