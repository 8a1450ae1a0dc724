"""The settings of a change-detection finetuning run (``sdrl finetune``), saved as YAML.

:class:`FinetuneConfig` adds the change-detection fields to the shared
:class:`~sdrl.train.config.TrainConfig`; the saved ``RUN/config.yaml`` is a valid ``--config``
of ``sdrl finetune``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import yaml

from sdrl.errors import ConfigError
from sdrl.train.config import TrainConfig, _check_choice, _check_positive

__all__ = ["FinetuneConfig", "LossName"]

ModelKind = Literal["siamese", "unet"]
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

    The shared fields are those of :class:`~sdrl.train.config.TrainConfig` (``data`` is a change
    dataset folder; ``crop_size`` also sets the fixed validation crops).

    Attributes:
        backbone: Encoder of the siamese model; ``None``: the one of a checkpoint or export
            given as ``init``, else ``resnet18``. The U-Net has none.
        init: ``random``, a pretraining or finetuning checkpoint, an ``sdrl export`` folder or
            a torchvision state-dict file (see :func:`~sdrl.models.init.init_encoder`).
        model: ``siamese`` (:class:`~sdrl.models.change.ChangeNet`) or ``unet`` (early fusion).
        fusion: Siamese fusion ``absdiff`` (default) or ``concat``.
        head: Siamese head ``fpn`` (default) or ``linear`` (linear probe, encoder frozen).
        model_options: Further keyword options of the model (``decoder_channels``,
            ``base_width``, ``depth``...).
        freeze_encoder_epochs: Epochs at the start with the encoder frozen.
        loss: ``ce`` (2-class cross-entropy) or ``bce-dice`` (1 logit, BCE plus soft Dice).
        change_weight: Weight of the change class: ``auto`` (from the training labels, see
            :func:`~sdrl.train.change_loss.auto_change_weight`), ``none`` (1) or a number.
        label_fraction: Share ``F`` of the training tiles used, ``0 < F <= 1``.
        label_seed: Seed of the tile subset; ``None``: ``seed``.
        early_stopping_patience: Validations without a better val F1 before training stops.
        cache_stats: Write computed band statistics into the data's ``dataset.json``.
    """

    RESUME_MUST_MATCH: ClassVar[tuple[str, ...]] = ("model", "backbone", "fusion", "head", "loss")
    RUN_KIND: ClassVar[str] = "change"

    backbone: str | None = None
    batch_size: int = 8
    init: str = "random"
    model: ModelKind = "siamese"
    fusion: FusionKind | None = None
    head: HeadKind | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    freeze_encoder_epochs: int = 0
    loss: LossName = "ce"
    change_weight: float | str = "auto"
    label_fraction: float = 1.0
    label_seed: int | None = None
    early_stopping_patience: int | None = None
    cache_stats: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.init = str(self.init)
        _check_choice("model", self.model, ModelKind)
        _check_choice("loss", self.loss, LossName)
        for name, choices in (("fusion", FusionKind), ("head", HeadKind)):
            if getattr(self, name) is not None:
                _check_choice(name, getattr(self, name), choices)
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

    def to_flat(self) -> dict[str, Any]:
        """The config as flag-name keys, model options as ``model-option`` entries."""
        out = super().to_flat()
        if self.model_options:
            out["model-option"] = [f"{k}={_yaml_value(v)}" for k, v in self.model_options.items()]
        return out


def _yaml_value(value: Any) -> str:
    """``value`` as one line of YAML (``2``, ``[1, 2]``, ``c5``)."""
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("...").strip()
