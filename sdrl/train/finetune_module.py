"""The LightningModule of change-detection finetuning: augmentation, loss, freezing, metrics.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``K`` logit channels.

Thin like :class:`~sdrl.train.pretrain_module.PretrainModule`: the
:class:`~sdrl.models.change.ChangeModel` owns the network,
:class:`~sdrl.train.change_loss.ChangeLoss` the objective and
:class:`~sdrl.metrics.ChangeMetrics` the validation scores. Every training
batch reseeds the generators from its ``aug_seed`` before the on-device augmentation (the same
geometry for both dates and the change mask, its own photometry per date), the basis of exact
resume. The state dict holds the model under ``model.``, which
:func:`~sdrl.train.change_checkpoint.load_change_model` (evaluate, predict) and
:func:`~sdrl.models.init.init_encoder` (``model.encoder.``) read.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from sdrl.data.augment import BitemporalAugment
from sdrl.metrics import ChangeMetrics
from sdrl.models.change import ChangeModel, change_probability
from sdrl.train.change_loss import ChangeLoss
from sdrl.train.checkpoint import restore_rng_state, rng_state
from sdrl.train.optim import OptimSettings
from sdrl.train.pretrain_module import TrainingError, any_rank, nonfinite_tiles, reseed

__all__ = ["VAL_METRICS", "FinetuneModule"]

log = logging.getLogger(__name__)

VAL_METRICS = ("precision", "recall", "f1", "iou", "oa", "kappa")
"""Logged after each validation as ``val/<name>`` (change class, 0-1)."""


class FinetuneModule(pl.LightningModule):
    """Supervised change detection with a change model.

    Args:
        model: The change model (its encoder initialised already).
        criterion: The weighted loss (``out_channels`` must match the model's).
        augment: Batch augmentation of training batches.
        optim: Optimiser and learning-rate schedule.
        seed: Run seed.
        freeze_encoder_epochs: Epochs at the start with the encoder frozen (parameters and
            BatchNorm statistics); a linear probe keeps it frozen throughout.
        threshold: Change probability above which a validation pixel counts as change.
        meta: Plain data stored under ``checkpoint["sdrl"]`` (see
            :mod:`sdrl.train.change_checkpoint`).
    """

    def __init__(
        self,
        model: ChangeModel,
        criterion: ChangeLoss,
        augment: BitemporalAugment,
        optim: OptimSettings,
        *,
        seed: int = 0,
        freeze_encoder_epochs: int = 0,
        threshold: float = 0.5,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if criterion.out_channels != model.out_channels:
            raise ValueError(
                f"the {criterion.kind} loss needs {criterion.out_channels} logit channels, the "
                f"model has {model.out_channels}"
            )
        self.model = model
        self.criterion = criterion
        self.augment = augment
        self.optim = optim
        self.seed = seed
        self.freeze_encoder_epochs = freeze_encoder_epochs
        self.threshold = threshold
        self.meta = dict(meta or {})
        self.val_metrics = ChangeMetrics()
        self._always_frozen = model.encoder_frozen

    # -- training ----------------------------------------------------------------------------

    def _check_finite(self, batch: dict[str, Any], where: str) -> None:
        bad = nonfinite_tiles(batch)
        if any_rank(self, bool(bad)):
            tiles = ", ".join(f"{t} ({'/'.join(d)})" for t, d in bad.items()) or "another process"
            raise TrainingError(
                f"{self.meta.get('data', 'data')}: expected finite pixel values, found NaN or "
                f"infinite values in tile(s) {tiles} of the {where} batch at step "
                f"{self.global_step}. Declare the rasters' nodata value or fix those tiles"
            )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches: check values, reseed from ``aug_seed``, augment on the device."""
        trainer = self._trainer
        if trainer is not None and trainer.training and isinstance(batch, dict):
            self._check_finite(batch, "training")
            reseed(int(batch["aug_seed"]))
            batch = self.augment(batch)
        return batch

    def on_train_epoch_start(self) -> None:
        """Freeze the encoder during the first ``freeze_encoder_epochs`` epochs."""
        if self._always_frozen or not self.freeze_encoder_epochs:
            return
        frozen = self.current_epoch < self.freeze_encoder_epochs
        if frozen != self.model.encoder_frozen:
            log.info("epoch %d: encoder %s", self.current_epoch, "frozen" if frozen else "trained")
            self.model.freeze_encoder(frozen)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """The weighted loss of the batch, checked to be finite."""
        terms = self.criterion(self.model(batch["image_a"], batch["image_b"]), batch["change"])
        loss = terms["loss"]
        if any_rank(self, not bool(torch.isfinite(loss.detach()))):
            raise TrainingError(
                f"the {self.criterion.kind} loss is {float(loss.detach())} at step "
                f"{self.global_step} (tiles {list(batch['id'])}); stopped before the optimiser "
                f"step. Lower --lr, add --grad-clip or use --precision 32-true"
            )
        size = len(batch["id"])
        self.log(
            "train/loss",
            loss.detach(),
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
            sync_dist=True,
        )
        for name, value in terms.items():
            if name != "loss":
                self.log(f"train/{name}", value, on_step=True, batch_size=size)
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("train/lr", lr, on_step=True, prog_bar=True, batch_size=size)
        return loss

    def configure_optimizers(self) -> Any:
        """Optimiser over the trainable parameters, per-step warm-up + decay schedule.

        The encoder's parameters are included even while it is frozen for the first epochs
        (they have no gradient then, so the optimiser leaves them alone); a linear probe's
        are not.
        """
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        optimizer, scheduler = self.optim.build([self.model], total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    # -- validation --------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        """Start the confusion counts afresh."""
        self.val_metrics.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Loss and confusion counts of a validation batch."""
        self._check_finite(batch, "validation")
        logits = self.model(batch["image_a"], batch["image_b"])
        terms = self.criterion(logits, batch["change"])
        self.log(
            "val/loss", terms["loss"], on_epoch=True, batch_size=len(batch["id"]), sync_dist=True
        )
        pred = (change_probability(logits) > self.threshold).long()
        self.val_metrics.update(pred, batch["change"])

    def on_validation_epoch_end(self) -> None:
        """Log ``val/<name>`` for each name of :data:`VAL_METRICS` (one value for all ranks)."""
        values = self.val_metrics.all_reduce().compute()
        for name in VAL_METRICS:
            self.log(f"val/{name}", float(values[name]), prog_bar=name == "f1", sync_dist=True)
        self.val_metrics.reset()

    # -- checkpoints -------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the model description and the RNG states (plain data)."""
        checkpoint["sdrl"] = {**self.meta, "rng": rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the RNG states."""
        state = checkpoint.get("sdrl", {})
        if "rng" in state:
            restore_rng_state(state["rng"])
