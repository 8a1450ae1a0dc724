"""The base task: the Lightning hooks every training task shares.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns.

:class:`BaseTask` owns what pretraining, change finetuning and later tasks would otherwise each
write (after torchgeo's ``trainers/base.py``):

* finite checks: a batch with NaN or infinite pixels, or a non-finite loss, stops the run on
  every process with a :class:`TrainingError` naming the tiles;
* augmentation on the device (:meth:`augment_batch`, in ``on_after_batch_transfer``), after
  reseeding the generators from the batch's ``aug_seed``: a step's random draws depend only
  on the run seed and the step's position, the basis of exact resume;
* one ``_shared_step(batch, batch_idx, stage)`` behind ``training_step`` and
  ``validation_step``, with :meth:`log_terms` for the loss and its terms;
* the optimiser and per-step schedule over :meth:`trainable_modules`;
* the checkpoint: the task's :class:`~sdrl.checkpoint.CheckpointHeader` under ``"sdrl"``,
  the RNG states and the task's counters (:meth:`training_state`) under ``"sdrl_state"``.

A task overrides :meth:`augment_batch`, :meth:`_shared_step`, :meth:`trainable_modules` and,
when it keeps counters across steps, :meth:`training_state` / :meth:`load_training_state`.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from sdrl.checkpoint import HEADER_KEY, STATE_KEY, CheckpointHeader
from sdrl.errors import SdrlError
from sdrl.tasks.optim import OptimSettings
from sdrl.tasks.seeding import reseed, restore_rng_state, rng_state

__all__ = ["BaseTask", "TrainingError", "any_rank", "nonfinite_tiles"]

log = logging.getLogger(__name__)


class TrainingError(SdrlError):
    """Training cannot go on: bad values in a batch, or a non-finite loss."""


def any_rank(module: pl.LightningModule, flag: bool) -> bool:
    """``flag`` or-ed over all processes of the module's trainer (one process: ``flag``)."""
    trainer = module._trainer
    if trainer is None or trainer.world_size == 1:
        return flag
    total = trainer.strategy.reduce(
        torch.tensor(float(flag), device=module.device), reduce_op="sum"
    )
    return bool(total > 0)


def nonfinite_tiles(batch: dict[str, Any]) -> dict[str, list[str]]:
    """Tiles of a batch with NaN or infinite pixel values: ``{id: ["A", "B"]}``.

    Change and pretraining batches hold ``image_a``/``image_b``, crop batches ``s2``/``enmap``.
    """
    bad: dict[str, list[str]] = {}
    for key, date in (("image_a", "A"), ("image_b", "B"), ("s2", "S2"), ("enmap", "EnMAP")):
        if isinstance(batch.get(key), Tensor):
            rows = (~torch.isfinite(batch[key])).flatten(1).any(dim=1).tolist()
            for tile, is_bad in zip(batch["id"], rows, strict=True):
                if is_bad:
                    bad.setdefault(str(tile), []).append(date)
    return bad


class BaseTask(pl.LightningModule):
    """Shared training hooks (module doc); subclasses are the tasks.

    Args:
        header: What the checkpoints of this task describe (saved in every checkpoint).
        optim: Optimiser and learning-rate schedule.
        seed: Run seed.
    """

    def __init__(self, header: CheckpointHeader, optim: OptimSettings, seed: int = 0) -> None:
        super().__init__()
        self.header = header
        self.optim = optim
        self.seed = seed
        self.total_steps = 1

    # -- hooks of the tasks ------------------------------------------------------------------

    def trainable_modules(self) -> list[nn.Module]:
        """The modules whose trainable parameters the optimiser updates."""
        raise NotImplementedError

    def lr_scales(self) -> list[tuple[nn.Module, float]]:
        """``(module, scale)``: parts of the model trained at ``scale`` × the learning rate."""
        return []

    def augment_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Augment a training batch on the device (generators already reseeded)."""
        return batch

    def _shared_step(
        self, batch: dict[str, Any], batch_idx: int, stage: str, dataloader_idx: int = 0
    ) -> Tensor | None:
        """The loss of a batch in ``stage`` (``train`` or ``val``), logged."""
        raise NotImplementedError

    def training_state(self) -> dict[str, Any]:
        """The task's counters saved for exact resume (plain data)."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`training_state` saved."""

    # -- shared ------------------------------------------------------------------------------

    @property
    def data_name(self) -> str:
        """The dataset, for messages."""
        return self.header.data or "data"

    def check_finite(self, batch: dict[str, Any], where: str) -> None:
        """Stop on every process when any process's batch holds NaN or infinite pixels."""
        bad = nonfinite_tiles(batch)
        if any_rank(self, bool(bad)):
            tiles = ", ".join(f"{t} ({'/'.join(d)})" for t, d in bad.items()) or "another process"
            raise TrainingError(
                f"{self.data_name}: expected finite pixel values, found NaN or infinite values "
                f"in tile(s) {tiles} of the {where} batch at step {self.global_step}. Declare "
                f"the rasters' nodata value (nodata pixels are then zeroed and ignored) or fix "
                f"those tiles"
            )

    def check_loss(self, loss: Tensor, batch: dict[str, Any], what: str) -> None:
        """Stop on every process, before the optimiser step, when the loss is not finite."""
        if any_rank(self, not bool(torch.isfinite(loss.detach()))):
            raise TrainingError(
                f"the {what} loss is {float(loss.detach())} at step {self.global_step} "
                f"(tiles {list(batch['id'])}); stopped before the optimiser step. Lower --lr, "
                f"add --grad-clip or use --precision 32-true"
            )

    def log_terms(self, stage: str, terms: dict[str, Any], size: int) -> None:
        """Log the scalar tensors of ``terms`` as ``{stage}/{name}``.

        Training: every term per step, ``loss`` also per epoch (and on the progress bar, synced
        across processes). Validation: every term per epoch, synced.
        """
        train = stage == "train"
        for name, value in terms.items():
            if not isinstance(value, Tensor) or value.numel() != 1:
                continue
            self.log(
                f"{stage}/{name}",
                value.detach().float(),
                on_step=train,
                on_epoch=not train or name == "loss",
                prog_bar=name == "loss",
                batch_size=size,
                sync_dist=name == "loss" or not train,
                add_dataloader_idx=False,
            )

    def log_lr(self, size: int) -> None:
        """Log the learning rate of the first parameter group (``train/lr``)."""
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("train/lr", lr, on_step=True, prog_bar=True, batch_size=size)

    # -- Lightning hooks ---------------------------------------------------------------------

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches: check values, reseed from ``aug_seed``, augment on the device."""
        trainer = self._trainer
        if trainer is not None and trainer.training and isinstance(batch, dict):
            self.check_finite(batch, "training")
            reseed(int(batch["aug_seed"]))
            batch = self.augment_batch(batch)
        return batch

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """The training loss (:meth:`_shared_step` with stage ``train``)."""
        loss = self._shared_step(batch, batch_idx, "train")
        assert loss is not None
        return loss

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Validation (:meth:`_shared_step` with stage ``val``), after a finite check."""
        self.check_finite(batch, "validation")
        self._shared_step(batch, batch_idx, "val", dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        """Log the validation at ``global_step`` (the updates its weights had).

        Lightning logs epoch-level validation metrics at the index of the last training batch,
        one less than the step the console reports; a logged ``step`` sets it instead, so
        ``metrics.csv`` and the console name the same step. (Training rows keep Lightning's
        0-based index: row ``k`` is the loss of the weights after ``k`` updates, as is a
        validation row at step ``k``.)
        """
        self.log("step", float(self.global_step))
        self.log("epoch", float(self.current_epoch))

    def configure_optimizers(self) -> Any:
        """Optimiser over the trainable parameters, per-step warm-up + decay schedule."""
        self.total_steps = max(int(self.trainer.estimated_stepping_batches), 1)
        optimizer, scheduler = self.optim.build(
            self.trainable_modules(), self.total_steps, self.lr_scales()
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the header, the RNG states and the task's counters (plain data)."""
        checkpoint[HEADER_KEY] = self.header.to_dict()
        checkpoint[STATE_KEY] = {"rng": rng_state(), **self.training_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the RNG states and the task's counters."""
        state = checkpoint.get(STATE_KEY) or checkpoint.get(HEADER_KEY, {})  # 0.1: in "sdrl"
        if "rng" in state:
            restore_rng_state(state["rng"])
        self.load_training_state(state)
