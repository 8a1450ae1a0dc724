"""The demo's budget: its options, checked before anything is written, and what follows from them.

The defaults fit in 10 minutes on two CPU cores (README, "Set up and run"): 100 scenes of
64 × 64 px per dataset, ResNet-18, 300 pretraining steps per method (sdrl and the DetCon
baseline, the same steps and batch), 60 finetuning steps per run on 20 % of the change
training tiles, three initialisations × two finetuning seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sdrl.data.synth import scene_splits
from sdrl.errors import ConfigError
from sdrl.models.names import BACKBONE_NAMES, TEST_BACKBONES
from sdrl.tasks.change.run import choose_tiles
from sdrl.tasks.pretrain.config import MethodName

__all__ = ["BANDS", "BASELINE", "INITS", "PRETRAIN_METHODS", "DemoSettings"]

BASELINE: MethodName = "detcon"
"""The pretraining baseline the demo compares sdrl with."""

PRETRAIN_METHODS: tuple[MethodName, ...] = ("sdrl", BASELINE)
"""The pretraining runs, in order (the same steps, batch, data and seed)."""

INITS = ("random", BASELINE, "sdrl")
"""The initialisations of the change models, in the order of the report."""

BANDS = 4
"""Bands of the generated scenes (blue, green, red, NIR)."""

VALIDATIONS = 4
"""Validations per training run, evenly spaced in steps (not one per tiny epoch)."""


def _check_count(flag: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{flag}: expected an integer > 0, found {value!r}")


@dataclass(frozen=True)
class DemoSettings:
    """The demo's options (``sdrl demo --help``); :meth:`check` refuses what cannot run.

    Attributes:
        num: Scenes per generated dataset (pretraining and change).
        size: Scene side in pixels (a multiple of 32).
        seed: Seed of the data engine, the pretraining runs and the first finetuning run.
        backbone: Backbone of every run.
        pretrain_steps: Optimiser steps of each pretraining (sdrl and the baseline).
        finetune_steps: Optimiser steps of each finetuning run.
        batch_size: Batch size of pretraining; of finetuning too, at most the labelled tiles.
        label_fraction: Share of the change training tiles with labels for finetuning.
        finetune_seeds: Finetuning runs per initialisation (seeds ``seed``, ``seed + 1``...).
    """

    num: int = 100
    size: int = 64
    seed: int = 0
    backbone: str = "resnet18"
    pretrain_steps: int = 300
    finetune_steps: int = 60
    batch_size: int = 8
    label_fraction: float = 0.2
    finetune_seeds: int = 2

    def check(self) -> None:
        """Refuse options the demo cannot run with, naming the demo's own flags.

        Raises:
            ConfigError: An option out of range or inconsistent with another.
        """
        if self.backbone not in BACKBONE_NAMES + TEST_BACKBONES:
            raise ConfigError(
                f"--backbone: expected one of {BACKBONE_NAMES}, found {self.backbone!r}"
            )
        for flag, value in (
            ("--num", self.num),
            ("--pretrain-steps", self.pretrain_steps),
            ("--finetune-steps", self.finetune_steps),
            ("--batch-size", self.batch_size),
            ("--finetune-seeds", self.finetune_seeds),
        ):
            _check_count(flag, value)
        size = self.size
        if isinstance(size, bool) or not isinstance(size, int) or size % 32 or size < 32:
            raise ConfigError(f"--size: expected a multiple of 32 in 32..4096, found {size!r}")
        if size > 4096:
            raise ConfigError(f"--size: expected a multiple of 32 in 32..4096, found {size!r}")
        fraction = self.label_fraction
        if isinstance(fraction, bool) or not 0.0 < fraction <= 1.0 or math.isnan(fraction):
            raise ConfigError(f"--label-fraction: expected a share in (0, 1], found {fraction}")
        if "test" not in scene_splits(self.num, "change"):
            raise ConfigError(
                f"--num: expected at least 3 scenes (train, val, test), found {self.num}"
            )
        if self.pretrain_tiles < self.batch_size:
            raise ConfigError(
                f"--batch-size {self.batch_size}: expected at most the pretraining scenes, "
                f"found {self.pretrain_tiles} with --num {self.num}; raise --num or lower "
                "--batch-size"
            )

    @property
    def pretrain_tiles(self) -> int:
        """Training tiles of the pretraining dataset."""
        return len(scene_splits(self.num, "pretrain")["train"])

    @property
    def change_tiles(self) -> dict[str, int]:
        """Tiles per split of the change dataset."""
        return {name: len(ids) for name, ids in scene_splits(self.num, "change").items()}

    @property
    def labelled_tiles(self) -> int:
        """Change training tiles used for finetuning (the same count for every seed)."""
        total = self.change_tiles["train"]
        return len(choose_tiles(total, self.label_fraction, self.seed))

    @property
    def finetune_batch(self) -> int:
        """Finetuning batch: ``batch_size``, or all labelled tiles when there are fewer."""
        return min(self.batch_size, self.labelled_tiles)

    @property
    def seeds(self) -> list[int]:
        """The finetuning seeds (each also draws its own labelled tiles)."""
        return [self.seed + i for i in range(self.finetune_seeds)]

    def val_every(self, steps: int) -> int:
        """Steps between validations of a run of ``steps`` steps."""
        return max(1, steps // VALIDATIONS)

    def log_every(self, steps: int) -> int:
        """Steps between logged training losses: about 50 points per curve."""
        return max(1, steps // 50)
