"""The LightningModule of pretraining: views on the device, the method's loss, logs, probe.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``K`` classes, ``D`` dims.

The module is thin: the :class:`~sdrl.ssl.methods.base.PretrainMethod` owns the networks and
the objective, :class:`~sdrl.tasks.pretrain.views.ViewMaker` the views and
:class:`~sdrl.tasks.pretrain.probe.RegionProbe` the validation probe; the shared hooks (finite
checks, reseeding, optimiser, checkpoint header) are :class:`~sdrl.tasks.base.BaseTask`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from sdrl.checkpoint import CheckpointHeader
from sdrl.ssl.methods.base import PretrainMethod
from sdrl.tasks.base import BaseTask, TrainingError
from sdrl.tasks.optim import OptimSettings
from sdrl.tasks.pretrain.probe import RegionProbe
from sdrl.tasks.pretrain.views import ViewMaker, Views
from sdrl.tasks.seeding import mix_seed, reseed

__all__ = ["PretrainModule"]

log = logging.getLogger(__name__)

_VAL_STREAM = 7919  # separates the validation seeds from the training ones


class PretrainModule(BaseTask):
    """Self-supervised pretraining of ``method`` on two views per batch.

    Args:
        method: The objective around the backbone (``build_method``).
        views: Makes the two augmented views of a batch.
        optim: Optimiser and learning-rate schedule.
        header: Saved in every checkpoint (kind ``pretrain``).
        seed: Run seed (validation views are seeded from it).
        probe: Region probe for validation, or ``None``.
        val_roles: What each validation loader is for: ``"probe_fit"`` or ``"val"``.
    """

    def __init__(
        self,
        method: PretrainMethod,
        views: ViewMaker,
        optim: OptimSettings,
        header: CheckpointHeader,
        *,
        seed: int = 0,
        probe: RegionProbe | None = None,
        val_roles: Sequence[str] = ("val",),
    ) -> None:
        super().__init__(header, optim, seed)
        self.method = method
        self.views = views
        self.probe = probe
        self.val_roles = list(val_roles)
        self.skipped_total = 0

    def trainable_modules(self) -> list[nn.Module]:
        """The method (its momentum branches are frozen and left out)."""
        return [self.method]

    def augment_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Make the batch's two views (``batch["views"]``)."""
        batch["views"] = self.views(batch)
        return batch

    def _forward(self, views: Views, batch: dict[str, Any]) -> dict[str, Tensor]:
        masks = (views.mask1, views.mask2) if self.method.needs_masks else (None, None)
        try:
            return self.method(views.view1, views.view2, *masks)
        except ValueError as error:
            raise TrainingError(
                f"method {self.method.name!r} failed on tiles {list(batch['id'])}: {error}"
            ) from error

    def _shared_step(
        self, batch: dict[str, Any], batch_idx: int, stage: str, dataloader_idx: int = 0
    ) -> Tensor | None:
        size = len(batch["id"])
        if stage == "train":
            out = self._forward(batch["views"], batch)
            self.check_loss(out["loss"], batch, self.method.name)
            self.log_terms("train", out, size)
            self._count_skipped(out, batch, size)
            self.log_lr(size)
            return out["loss"]
        role = self.val_roles[dataloader_idx]
        if self.probe is not None:
            self._probe_add("fit" if role == "probe_fit" else "eval", batch)
        if role != "val":
            return None
        reseed(mix_seed(self.seed, _VAL_STREAM, batch_idx, self.global_rank))
        out = self._forward(self.views(batch), batch)
        self.log_terms("val", out, size)
        return out["loss"]

    def _count_skipped(self, out: dict[str, Tensor], batch: dict[str, Any], size: int) -> None:
        if float(out.get("skipped", 0.0)) > 0:
            self.skipped_total += 1
            level = logging.WARNING if self.skipped_total == 1 else logging.INFO
            log.log(
                level,
                "step %d: no region is present in both views of tiles %s; batch skipped "
                "(loss 0, counted in train/skipped_total)",
                self.global_step,
                list(batch["id"]),
            )
        self.log("train/skipped_total", float(self.skipped_total), on_step=True, batch_size=size)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimiser step, then the method's momentum update (before any checkpoint)."""
        super().optimizer_step(*args, **kwargs)
        self.method.momentum_update(min((self.global_step + 1) / self.total_steps, 1.0))

    # -- validation probe --------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        """Start the probe afresh."""
        if self.probe is not None:
            self.probe.reset()

    def _probe_add(self, role: str, batch: dict[str, Any]) -> None:
        assert self.probe is not None
        dates = [("image_a", "mask_a")]
        if self.views.two_dates:
            dates.append(("image_b", "mask_b"))
        for image, mask in dates:
            z, valid = self.method.region_embeddings(batch[image], batch[mask])
            if self.trainer.world_size > 1:
                z, valid = self._gather(z), self._gather(valid)
            self.probe.add(role, z, valid)  # type: ignore[arg-type]

    def _gather(self, x: Tensor) -> Tensor:
        """``(W·B, ...)``: ``x`` of every process, concatenated."""
        gathered = self.all_gather(x)
        assert isinstance(gathered, Tensor)
        return gathered.flatten(0, 1)

    def on_validation_epoch_end(self) -> None:
        """Score the probe: ``val/probe_acc``."""
        super().on_validation_epoch_end()
        if self.probe is None:
            return
        score = self.probe.score()
        if score is not None:
            self.log("val/probe_acc", score, prog_bar=True, sync_dist=True)
        self.probe.reset()

    # -- checkpoints -------------------------------------------------------------------------

    def training_state(self) -> dict[str, Any]:
        """The count of skipped batches."""
        return {"skipped_total": self.skipped_total}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore the count of skipped batches."""
        self.skipped_total = int(state.get("skipped_total", 0))
