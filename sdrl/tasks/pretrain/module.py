"""The LightningModule of pretraining: views on the device, the method's loss, logs, probe.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``K`` classes, ``D`` dims.

The module is thin: the :class:`~sdrl.ssl.methods.base.PretrainMethod` owns the networks and
the objective, :class:`~sdrl.tasks.pretrain.views.ViewMaker` the views and
:class:`~sdrl.tasks.pretrain.probe.RegionProbe` the validation probe; the shared hooks (finite
checks, reseeding, optimiser, checkpoint header) are :class:`~sdrl.tasks.base.BaseTask`'s.

Every validation logs ``val/loss``; the probe (``val/probe_acc``, which picks ``best.ckpt``)
is scored at the first, every ``probe_every``-th and the last validation, because it embeds the
probe-fit tiles and the validation tiles on both dates: with the defaults a validation with
the probe costs about twice one without (2.6 against 1.2 training steps on 700 13-band tiles,
experiments/BENCHMARKS.md, "Validation"). The probe-fit tiles are read only then, from the
data module's ``probe_fit_dataloader()``, in ``on_validation_epoch_end`` (as lightly's
``BenchmarkModule`` builds its k-NN bank), not as a validation loader that Lightning would
read at every validation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from torch import Tensor, nn

from sdrl.checkpoint import CheckpointHeader
from sdrl.ssl.methods.base import PretrainMethod
from sdrl.tasks.base import BaseTask, TrainingError
from sdrl.tasks.optim import OptimSettings
from sdrl.tasks.pretrain.probe import RegionProbe, Role
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
        probe: Region probe for validation, or ``None``. It is fitted on the regions of the
            data module's ``probe_fit_dataloader()`` (training tiles) and scored on those of
            the validation loader.
        val_roles: What each validation loader is for (``"val"``; other loaders are skipped).
        probe_every: Score the probe at the first validation (a baseline), every
            ``probe_every``-th and the last (1: at every validation). The index of a validation
            is a function of its
            step (``--val-every``) or epoch, so a resumed run probes where an uninterrupted
            one does.

    Raises:
        ValueError: ``probe_every`` is below 1.
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
        probe_every: int = 5,
    ) -> None:
        super().__init__(header, optim, seed)
        if probe_every < 1:
            raise ValueError(f"probe_every must be at least 1, found {probe_every}")
        self.method = method
        self.views = views
        self.probe = probe
        self.val_roles = list(val_roles)
        self.probe_every = probe_every
        self.probe_now = False
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
        if self.val_roles[dataloader_idx] != "val":
            return None
        if self.probe_now:
            self._probe_add("eval", batch)
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
                "step %d, tiles %s: %s; batch skipped (loss 0, counted in train/skipped_total)",
                self.global_step,
                list(batch["id"]),
                self.method.skip_reason,
            )
        self.log("train/skipped_total", float(self.skipped_total), on_step=True, batch_size=size)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimiser step, then the method's momentum update (before any checkpoint)."""
        super().optimizer_step(*args, **kwargs)
        self.method.momentum_update(min((self.global_step + 1) / self.total_steps, 1.0))

    # -- validation probe --------------------------------------------------------------------

    def validation_position(self) -> tuple[int, bool]:
        """The 1-based index of the running validation and whether it is the run's last.

        A function of the training position only (never of how many validations this
        process ran), so a resumed run counts as an uninterrupted one: with ``--val-every N``
        the validation at step ``s`` is number ``s // N``; at epoch ends, the epoch's number.
        The last one is the forced validation at ``--max-steps`` (``trainer.should_stop``),
        the end of the last epoch, or one with no room for another before the end.
        """
        trainer = self.trainer
        step = self.global_step
        batches = trainer.val_check_batch
        if trainer.check_val_every_n_epoch is None and isinstance(batches, int):  # every N steps
            every = max(batches // trainer.accumulate_grad_batches, 1)
            index, room = step // every, step + every <= self.total_steps
        else:  # at epoch ends
            index, room = (self.current_epoch + 1) // (trainer.check_val_every_n_epoch or 1), True
        last = trainer.should_stop or step >= self.total_steps or not room
        return max(index, 1), last

    def on_validation_epoch_start(self) -> None:
        """Start the probe afresh; decide whether this validation scores it."""
        self.probe_now = False
        if self.probe is None:
            return
        self.probe.reset()
        index, last = self.validation_position()
        self.probe_now = last or index == 1 or index % self.probe_every == 0

    def _probe_add(self, role: Role, batch: dict[str, Any]) -> None:
        assert self.probe is not None
        dates = [("image_a", "mask_a")]
        if self.views.two_dates:
            dates.append(("image_b", "mask_b"))
        for image, mask in dates:
            if self.probe.full(role):
                return  # the same on every process: the gathered rows are added on each
            z, valid = self.method.region_embeddings(batch[image], batch[mask])
            if self.trainer.world_size > 1:
                z, valid = self._gather(z), self._gather(valid)
            self.probe.add(role, z, valid)

    def _gather(self, x: Tensor) -> Tensor:
        """``(W·B, ...)``: ``x`` of every process, concatenated."""
        gathered = self.all_gather(x)
        assert isinstance(gathered, Tensor)
        return gathered.flatten(0, 1)

    def _probe_fit_batches(self) -> Iterable[dict[str, Any]]:
        """The data module's probe-fit loader (none: no batch)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        make = getattr(datamodule, "probe_fit_dataloader", None)
        loader = make() if make is not None else None
        return loader if loader is not None else []

    def _fit_probe(self) -> None:
        """Embed the probe-fit tiles (in the validation's no-grad, eval-mode context).

        Every process reads its equal share of the tiles (``ShardSampler``), so the
        ``all_gather`` of each batch runs in lock-step.
        """
        assert self.probe is not None
        strategy = self.trainer.strategy
        for batch in self._probe_fit_batches():
            if self.probe.full("fit"):
                break
            batch = strategy.batch_to_device(batch, self.device)
            self.check_finite(batch, "probe-fit")
            with self.trainer.precision_plugin.val_step_context():
                self._probe_add("fit", batch)

    def on_validation_epoch_end(self) -> None:
        """When this validation scores the probe: fit it, score it (``val/probe_acc``)."""
        super().on_validation_epoch_end()
        if self.probe is None or not self.probe_now:
            return
        self._fit_probe()
        score = self.probe.score()
        if score is not None:
            self.log("val/probe_acc", score, prog_bar=True, sync_dist=True)
        self.probe.reset()
        self.probe_now = False

    # -- checkpoints -------------------------------------------------------------------------

    def training_state(self) -> dict[str, Any]:
        """The count of skipped batches."""
        return {"skipped_total": self.skipped_total}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore the count of skipped batches."""
        self.skipped_total = int(state.get("skipped_total", 0))
