"""The LightningModule of change-detection finetuning: augmentation, loss, freezing, metrics.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``K`` logit channels.

Thin like the pretraining module: the :class:`~sdrl.models.change.ChangeModel` owns the
network, :class:`~sdrl.tasks.change.loss.ChangeLoss` the objective and
:class:`~sdrl.metrics.ChangeMetrics` the validation scores; the shared hooks (finite checks,
reseeding before the on-device augmentation, optimiser, checkpoint header) are
:class:`~sdrl.tasks.base.BaseTask`'s. The state dict holds the model under ``model.``, which
:func:`~sdrl.predict.model.load_change_model` (evaluate, predict) and
:func:`~sdrl.models.init.init_encoder` (``model.encoder.``) read.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor, nn

from sdrl.checkpoint import CheckpointHeader
from sdrl.data.augment import BitemporalAugment
from sdrl.metrics import ChangeMetrics
from sdrl.models.change import ChangeModel, change_probability
from sdrl.tasks.base import BaseTask
from sdrl.tasks.change.loss import ChangeLoss
from sdrl.tasks.optim import OptimSettings

__all__ = ["VAL_METRICS", "FinetuneModule"]

log = logging.getLogger(__name__)

VAL_METRICS = ("precision", "recall", "f1", "iou", "oa", "kappa")
"""Logged after each validation as ``val/<name>`` (change class, 0-1)."""


class FinetuneModule(BaseTask):
    """Supervised change detection with a change model.

    Args:
        model: The change model (its encoder initialised already).
        criterion: The weighted loss (``out_channels`` must match the model's).
        augment: Batch augmentation of training batches.
        optim: Optimiser and learning-rate schedule.
        header: Saved in every checkpoint (kind ``change``).
        seed: Run seed.
        freeze_encoder_epochs: Epochs at the start with the encoder frozen (parameters and
            BatchNorm statistics); a linear probe keeps it frozen throughout.
        threshold: Change probability above which a validation pixel counts as change.
        encoder_lr_ratio: The encoder's learning rate relative to the optimiser's.
    """

    def __init__(
        self,
        model: ChangeModel,
        criterion: ChangeLoss,
        augment: BitemporalAugment,
        optim: OptimSettings,
        header: CheckpointHeader,
        *,
        seed: int = 0,
        freeze_encoder_epochs: int = 0,
        threshold: float = 0.5,
        encoder_lr_ratio: float = 1.0,
    ) -> None:
        super().__init__(header, optim, seed)
        if criterion.out_channels != model.out_channels:
            raise ValueError(
                f"the {criterion.kind} loss needs {criterion.out_channels} logit channels, the "
                f"model has {model.out_channels}"
            )
        self.model = model
        self.criterion = criterion
        self.augment = augment
        self.freeze_encoder_epochs = freeze_encoder_epochs
        self.encoder_lr_ratio = encoder_lr_ratio
        self.threshold = threshold
        self.val_metrics = ChangeMetrics()
        self._always_frozen = model.encoder_frozen

    def trainable_modules(self) -> list[nn.Module]:
        """The model.

        The encoder's parameters are included even while it is frozen for the first epochs
        (they have no gradient then, so the optimiser leaves them alone); a linear probe's
        are not (they do not require gradients).
        """
        return [self.model]

    def lr_scales(self) -> list[tuple[nn.Module, float]]:
        """The encoder at ``encoder_lr_ratio`` × the learning rate (when not 1)."""
        if self.encoder_lr_ratio == 1.0:
            return []
        return [(self.model.encoder, self.encoder_lr_ratio)]

    def augment_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The same geometry for both dates and the change mask, photometry per date."""
        return self.augment(batch)

    def on_train_epoch_start(self) -> None:
        """Freeze the encoder during the first ``freeze_encoder_epochs`` epochs."""
        if self._always_frozen or not self.freeze_encoder_epochs:
            return
        frozen = self.current_epoch < self.freeze_encoder_epochs
        if frozen != self.model.encoder_frozen:
            log.info("epoch %d: encoder %s", self.current_epoch, "frozen" if frozen else "trained")
            self.model.freeze_encoder(frozen)

    def _shared_step(
        self, batch: dict[str, Any], batch_idx: int, stage: str, dataloader_idx: int = 0
    ) -> Tensor:
        logits = self.model(batch["image_a"], batch["image_b"])
        terms = self.criterion(logits, batch["change"])
        size = len(batch["id"])
        if stage == "train":
            self.check_loss(terms["loss"], batch, self.criterion.kind)
            self.log_lr(size)
        else:
            pred = (change_probability(logits) > self.threshold).long()
            self.val_metrics.update(pred, batch["change"])
        self.log_terms(stage, terms, size)
        return terms["loss"]

    def on_validation_epoch_start(self) -> None:
        """Start the confusion counts afresh."""
        self.val_metrics.reset()

    def on_validation_epoch_end(self) -> None:
        """Log ``val/<name>`` for each name of :data:`VAL_METRICS` (one value for all ranks)."""
        super().on_validation_epoch_end()
        values = self.val_metrics.all_reduce().compute()
        for name in VAL_METRICS:
            self.log(f"val/{name}", float(values[name]), prog_bar=name == "f1", sync_dist=True)
        self.val_metrics.reset()
