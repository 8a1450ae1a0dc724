"""The LightningModule of pretraining: views on the device, the method's loss, logs, probe.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``K`` classes, ``D`` dims.

The module is thin: the :class:`~sdrl.ssl.methods.base.PretrainMethod` owns the networks and
the objective, :class:`~sdrl.train.views.ViewMaker` the views and
:class:`~sdrl.train.probe.RegionProbe` the validation probe. Every training step reseeds the
random generators from the batch's ``aug_seed`` (see :mod:`sdrl.train.datamodule`), so a
step's augmentation and any other draw depend only on the run seed and the step's position:
the basis of exact resume.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from sdrl.errors import SdrlError
from sdrl.ssl.methods.base import PretrainMethod
from sdrl.train.checkpoint import restore_rng_state, rng_state
from sdrl.train.datamodule import mix_seed
from sdrl.train.optim import OptimSettings
from sdrl.train.probe import RegionProbe
from sdrl.train.views import ViewMaker, Views

__all__ = ["PretrainModule", "TrainingError", "any_rank", "nonfinite_tiles", "reseed"]

log = logging.getLogger(__name__)

_VAL_STREAM = 7919  # separates the validation seeds from the training ones


class TrainingError(SdrlError):
    """Training cannot go on: bad values in a batch, or a non-finite loss."""


def reseed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (all devices) global generators."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))  # noqa: NPY002 - the global state other code draws from
    torch.manual_seed(seed)


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
    """Tiles of a batch with NaN or infinite pixel values: ``{id: ["A", "B"]}``."""
    bad: dict[str, list[str]] = {}
    for key, date in (("image_a", "A"), ("image_b", "B")):
        if isinstance(batch.get(key), Tensor):
            rows = (~torch.isfinite(batch[key])).flatten(1).any(dim=1).tolist()
            for tile, is_bad in zip(batch["id"], rows, strict=True):
                if is_bad:
                    bad.setdefault(str(tile), []).append(date)
    return bad


class PretrainModule(pl.LightningModule):
    """Self-supervised pretraining of ``method`` on two views per batch.

    Args:
        method: The objective around the backbone (``build_method``).
        views: Makes the two augmented views of a batch.
        optim: Optimiser and learning-rate schedule.
        seed: Run seed (validation views are seeded from it).
        probe: Region probe for validation, or ``None``.
        val_roles: What each validation loader is for: ``"probe_fit"`` or ``"val"``.
        meta: Plain data stored under ``checkpoint["sdrl"]`` (backbone, bands, classes...).
    """

    def __init__(
        self,
        method: PretrainMethod,
        views: ViewMaker,
        optim: OptimSettings,
        *,
        seed: int = 0,
        probe: RegionProbe | None = None,
        val_roles: Sequence[str] = ("val",),
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.method = method
        self.views = views
        self.optim = optim
        self.seed = seed
        self.probe = probe
        self.val_roles = list(val_roles)
        self.meta = dict(meta or {})
        self.skipped_total = 0
        self.total_steps = 1

    # -- checks ------------------------------------------------------------------------------

    def _any_rank(self, flag: bool) -> bool:
        """``flag`` or-ed over all processes (so that every process stops together)."""
        return any_rank(self, flag)

    def _check_finite(self, batch: dict[str, Any], where: str) -> None:
        bad = nonfinite_tiles(batch)
        if self._any_rank(bool(bad)):
            tiles = ", ".join(f"{t} ({'/'.join(d)})" for t, d in bad.items()) or "another process"
            raise TrainingError(
                f"{self.meta.get('data', 'data')}: expected finite pixel values, found NaN or "
                f"infinite values in tile(s) {tiles} of the {where} batch at step "
                f"{self.global_step}. Declare the rasters' nodata value (nodata pixels are then "
                f"zeroed and ignored) or fix those tiles"
            )

    def _forward(self, views: Views, batch: dict[str, Any]) -> dict[str, Tensor]:
        masks = (views.mask1, views.mask2) if self.method.needs_masks else (None, None)
        try:
            return self.method(views.view1, views.view2, *masks)
        except ValueError as error:
            raise TrainingError(
                f"method {self.method.name!r} failed on tiles {list(batch['id'])}: {error}"
            ) from error

    # -- training ----------------------------------------------------------------------------

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches: check values, reseed from ``aug_seed``, make the two views."""
        trainer = self._trainer
        if trainer is not None and trainer.training and isinstance(batch, dict):
            self._check_finite(batch, "training")
            reseed(int(batch["aug_seed"]))
            batch["views"] = self.views(batch)
        return batch

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """The method's loss on the batch's views, after checking that it is finite."""
        out = self._forward(batch["views"], batch)
        loss = out["loss"]
        if self._any_rank(not bool(torch.isfinite(loss.detach()))):
            raise TrainingError(
                f"the {self.method.name} loss is {float(loss.detach())} at step "
                f"{self.global_step} (tiles {list(batch['id'])}); stopped before the "
                f"optimiser step. Lower --lr, add --grad-clip or use --precision 32-true"
            )
        size = len(batch["id"])
        self._log_terms("train", out, size)
        skipped = int(float(out.get("skipped", 0.0)) > 0)
        if skipped:
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
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("train/lr", lr, on_step=True, prog_bar=True, batch_size=size)
        return loss

    def _log_terms(self, stage: str, out: dict[str, Tensor], size: int) -> None:
        train = stage == "train"
        for name, value in out.items():
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

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimiser step, then the method's momentum update (before any checkpoint)."""
        super().optimizer_step(*args, **kwargs)
        self.method.momentum_update(min((self.global_step + 1) / self.total_steps, 1.0))

    def configure_optimizers(self) -> Any:
        """Optimiser over the trainable parameters, per-step warm-up + decay schedule."""
        self.total_steps = max(int(self.trainer.estimated_stepping_batches), 1)
        optimizer, scheduler = self.optim.build([self.method], self.total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    # -- validation --------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        """Start the probe afresh."""
        if self.probe is not None:
            self.probe.reset()

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Probe regions of training or validation tiles; the loss on validation tiles."""
        role = self.val_roles[dataloader_idx]
        self._check_finite(batch, "validation")
        if self.probe is not None:
            self._probe_add("fit" if role == "probe_fit" else "eval", batch)
        if role != "val":
            return
        reseed(mix_seed(self.seed, _VAL_STREAM, batch_idx, self.global_rank))
        out = self._forward(self.views(batch), batch)
        self._log_terms("val", out, len(batch["id"]))

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
        if self.probe is None:
            return
        score = self.probe.score()
        if score is not None:
            self.log("val/probe_acc", score, prog_bar=True, sync_dist=True)
        self.probe.reset()

    # -- checkpoints -------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add RNG states, the skip count and the run's description (plain data)."""
        checkpoint["sdrl"] = {
            **self.meta,
            "rng": rng_state(),
            "skipped_total": self.skipped_total,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore RNG states and the skip count."""
        state = checkpoint.get("sdrl", {})
        if "rng" in state:
            restore_rng_state(state["rng"])
        self.skipped_total = int(state.get("skipped_total", 0))
