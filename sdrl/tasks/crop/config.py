"""The settings of a crop-classifier training run (``sdrl crop train``): its options' one place.

:class:`CropConfig` adds the crop fields to the shared :class:`~sdrl.tasks.config.TrainConfig`;
the saved ``RUN/config.yaml`` is a valid ``--config`` of ``sdrl crop train``. ``data`` is a crop
folder in H2Crop's format (``sdrl synth --kind crop`` writes one). ``--augment full`` and
``geometric`` both mean flips and 90° rotations (identical for S2, EnMAP, labels and priors;
there is no photometric augmentation of the time series); ``none`` turns them off.
``--crop-size`` takes random crops of that many S2 pixels (a multiple of 3, so that the EnMAP
crop is a third of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from sdrl.errors import ConfigError
from sdrl.tasks.config import TrainConfig, _check_positive, option

__all__ = ["CropConfig", "Decoding", "ModelSize"]

ModelSize = Literal["tiny", "default", "paper"]
Decoding = Literal["independent", "consistent"]
SpectralEncoder = Literal["transformer", "resnet18", "swin_t"]


@dataclass
class CropConfig(TrainConfig):
    """Everything a crop training run needs; see ``sdrl crop train --help`` for each flag."""

    RESUME_MUST_MATCH: ClassVar[tuple[str, ...]] = (
        "size", "spectral_encoder", "enmap", "priors", "months", "taxonomy",
    )  # fmt: skip
    RUN_KIND: ClassVar[str] = "crop"

    backbone: str | None = option(None, flag=False)  # the streams are set by --size
    batch_size: int = option(4, "patches per process and step")
    size: ModelSize = option(
        "default",
        "tiny (tests, a CPU), default (Swin-T temporal stream: loads an `sdrl export "
        "--temporal` of a swin_t) or paper (Swin-B, ~175 M parameters with EnMAP)",
        group="model",
    )
    enmap: bool = option(
        True, "the EnMAP stream (--no-enmap: S2 only, the paper's ablation)", group="model"
    )
    spectral_encoder: SpectralEncoder = option(
        "transformer",
        "EnMAP encoder: transformer (H2Crop's two branches), or an sdrl 2D backbone "
        "(resnet18, swin_t) that --spectral-init can initialise",
        group="model",
    )
    priors: bool = option(
        False, "heads also take the previous year's labels (the file's prior key)", group="model"
    )
    temporal_init: str | None = option(
        None,
        "an `sdrl export --temporal T` folder of a swin_t: initialises the temporal encoder",
        group="model",
        metavar="DIR",
    )
    spectral_init: str | None = option(
        None,
        "an `sdrl export` folder of a resnet18/swin_t: initialises the EnMAP encoder (first "
        "layer re-mapped to EnMAP's wavelengths); needs --spectral-encoder of that backbone",
        group="model",
        metavar="DIR",
    )
    crop_size: int | None = option(
        None,
        "random crops of this many S2 pixels (a multiple of 3: EnMAP's grid is 3x coarser)",
        group="data",
    )
    decoding: Decoding = option(
        "independent",
        "independent: each level's argmax (H2Crop); consistent: the best path through the "
        "taxonomy (predicted levels always agree)",
        group="model",
    )
    months: int = option(
        12, "leading monthly composites used, T (H2Crop: 6, 8, 10 or 12)", group="data"
    )
    taxonomy: str | None = option(
        None,
        "taxonomy CSV (H2Crop's cascade_labels.csv format); default: the folder's dataset.json",
        group="data",
        metavar="CSV",
    )
    stats: str | None = option(
        None,
        "per-band mean/std JSON (H2Crop's norm_stats.json format); default: the folder's "
        "dataset.json, computed from the train split and cached there when absent",
        group="data",
        metavar="JSON",
    )

    def __post_init__(self) -> None:
        # TrainConfig wants crops of a multiple of 32 (backbones that downsample by 32); the
        # crop model takes any size, but EnMAP's grid needs a multiple of 3 (checked below).
        crop_size, self.crop_size = self.crop_size, None
        super().__post_init__()
        self.crop_size = crop_size
        _check_positive("months", self.months)
        if self.crop_size is not None and (self.crop_size % 3 or self.crop_size < 3):
            raise ConfigError(
                f"--crop-size {self.crop_size}: crops of crop patches must be a positive "
                "multiple of 3 S2 pixels (EnMAP's grid is 3x coarser), e.g. 48 or 96"
            )
        if self.spectral_init is not None and not self.enmap:
            raise ConfigError("--spectral-init initialises the EnMAP stream; drop --no-enmap")
        if self.spectral_init is not None and self.spectral_encoder == "transformer":
            raise ConfigError(
                "--spectral-init: sdrl exports are 2D backbones; pass --spectral-encoder "
                "resnet18 or swin_t (the export's architecture)"
            )
