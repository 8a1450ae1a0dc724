"""The settings of a change-detection finetuning run (``sdrl finetune``): its options' one place.

:class:`FinetuneConfig` adds the change-detection fields to the shared
:class:`~sdrl.tasks.config.TrainConfig`; the saved ``RUN/config.yaml`` is a valid ``--config``
of ``sdrl finetune``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from sdrl.errors import ConfigError
from sdrl.models.names import BACKBONE_NAMES, ChangeModelName
from sdrl.tasks.config import OptionTable, TrainConfig, _check_positive, option

__all__ = ["FinetuneConfig", "LossName"]

FusionKind = Literal["absdiff", "concat"]
HeadKind = Literal["fpn", "linear"]
LossName = Literal["ce", "bce-dice"]


def parse_change_weight(value: Any) -> float | str:
    """``"auto"``, ``"none"`` or a positive number (given as a number or a string).

    Raises:
        ConfigError: Anything else.
    """
    if isinstance(value, str) and value.strip().lower() in ("auto", "none"):
        return value.strip().lower()
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = math.nan
    if isinstance(value, bool) or not math.isfinite(weight) or weight <= 0:
        raise ConfigError(
            f"--change-weight: expected auto, none or a positive number, found {value!r}"
        )
    return weight


@dataclass
class FinetuneConfig(TrainConfig):
    """Everything a finetuning run needs; see ``sdrl finetune --help`` for each flag.

    The shared fields are those of :class:`~sdrl.tasks.config.TrainConfig` (``data`` is a change
    dataset folder; ``crop_size`` also sets the fixed validation crops). ``backbone`` ``None``
    takes the one of the ``init`` checkpoint or export, else ``resnet18``; the U-Net has none.
    ``model_options`` holds further keyword options of the model (``decoder_channels``,
    ``base_width``, ``depth``...).
    """

    RESUME_MUST_MATCH: ClassVar[tuple[str, ...]] = ("model", "backbone", "fusion", "head", "loss")
    RUN_KIND: ClassVar[str] = "change"
    OPTION_TABLES: ClassVar[dict[str, OptionTable]] = {
        "model_options": OptionTable(
            "--model-option",
            "model",
            {},
            "decoder_channels=64, base_width=16 (unet)",
        )
    }

    backbone: str | None = option(
        None,
        f"siamese encoder: {', '.join(BACKBONE_NAMES)}; default: the one of --init, else resnet18",
        group="model",
        metavar="NAME",
    )
    batch_size: int = option(8, "samples per process and step")
    init: str = option(
        "random",
        "encoder initialisation: random, an sdrl pretraining or finetuning checkpoint, an sdrl "
        "export folder or a torchvision state-dict file",
        group="model",
        metavar="random|PATH",
    )
    model: ChangeModelName = option(
        "siamese", "siamese (backbone, fusion, FPN decoder) or unet (early fusion)", group="model"
    )
    fusion: FusionKind | None = option(None, "siamese fusion (default absdiff)", group="model")
    head: HeadKind | None = option(
        None,
        "siamese head: fpn (default) or linear (linear probe: encoder frozen throughout)",
        group="model",
    )
    model_options: dict[str, Any] = option(default_factory=dict, flag=False)
    freeze_encoder_epochs: int = option(0, "epochs with a frozen encoder first", group="model")
    encoder_lr_ratio: float = option(
        1.0,
        "learning rate of the encoder relative to --lr (e.g. 0.1 keeps more of a pretrained "
        "encoder; the decoder and head train at --lr)",
        group="model",
    )
    loss: LossName = option(
        "ce", "ce: 2-class cross-entropy; bce-dice: 1 logit, BCE + soft Dice", group="model"
    )
    change_weight: float | str = option(
        "auto",
        "weight of the change class: auto = sqrt(unchanged/changed pixels of the training "
        "labels), none = 1, or a number",
        group="model",
        metavar="auto|none|W",
    )
    label_fraction: float = option(
        1.0,
        "share of the training tiles used, 0 < F <= 1 (deterministic for the seed)",
        group="data",
        metavar="F",
    )
    label_seed: int | None = option(None, "seed of the tile subset (default --seed)", group="data")
    early_stopping_patience: int | None = option(
        None,
        "stop after N validations without a better val F1",
        group="validation, checkpoints and logs",
        metavar="N",
    )
    cache_stats: bool = option(
        True, "write computed band statistics into DIR/dataset.json", group="data"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.init = str(self.init)
        if self.model == "unet":
            names = ("backbone", "fusion", "head")
            given = [f"--{n} {getattr(self, n)}" for n in names if getattr(self, n) is not None]
            if given:
                raise ConfigError(
                    f"--model unet (early fusion) has no backbone, fusion or head; drop "
                    f"{', '.join(given)} or use --model siamese"
                )
            if self.init != "random":
                raise ConfigError(
                    f"--init {self.init}: the early-fusion U-Net trains from scratch; use "
                    "--model siamese to start from pretrained weights"
                )
        _check_positive("freeze_encoder_epochs", self.freeze_encoder_epochs, allow_zero=True)
        _check_positive("encoder_lr_ratio", self.encoder_lr_ratio)
        _check_positive("early_stopping_patience", self.early_stopping_patience)
        self.change_weight = parse_change_weight(self.change_weight)
        if isinstance(self.label_fraction, bool) or not 0.0 < float(self.label_fraction) <= 1.0:
            raise ConfigError(
                f"--label-fraction: expected 0 < F <= 1 (e.g. 0.05 for 5% of the training "
                f"tiles), found {self.label_fraction!r}"
            )
        self.label_fraction = float(self.label_fraction)

    @property
    def resolved_label_seed(self) -> int:
        """``label_seed`` or the run seed."""
        return self.seed if self.label_seed is None else self.label_seed

    @property
    def out_channels(self) -> int:
        """Logit channels ``K``: 2 for ``ce`` (softmax), 1 for ``bce-dice`` (sigmoid)."""
        return 2 if self.loss == "ce" else 1
