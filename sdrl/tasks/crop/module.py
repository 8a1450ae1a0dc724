"""The crop classifier's LightningModule: hierarchical loss, per-level validation metrics.

Training batches are augmented on the device (flips and 90° rotations, the same for S2,
EnMAP, labels and priors); the loss is the sum of the levels' cross-entropies. Validation
decodes the logits (independently per level, or the best taxonomy path) and accumulates
:class:`~sdrl.tasks.crop.metrics.CropMetrics`; it logs ``val/macro_f1`` (mean over the levels,
H2Crop's scheme: ``best.ckpt`` follows it), ``val/miou``, ``val/oa``, per-level macro F1
(``val/macro_f1_l1``...), the same without background (``val/nobg_*``) and
``val/valid_paths``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sdrl.checkpoint import CheckpointHeader
from sdrl.data.crop.augment import CropAugment
from sdrl.models.crop import CropModel, hierarchical_loss
from sdrl.tasks.base import BaseTask
from sdrl.tasks.crop.inference import decode
from sdrl.tasks.crop.metrics import CropMetrics
from sdrl.tasks.optim import OptimSettings

__all__ = ["CropTask"]


class CropTask(BaseTask):
    """Hierarchical crop classification (module doc).

    Args:
        model: The dual-stream classifier.
        augment: Batch augmentation of training batches, or ``None``.
        optim: Optimiser and learning-rate schedule.
        header: Saved in every checkpoint (kind ``crop``).
        paths: ``(P, L)`` the taxonomy's paths (decoding and the valid-path share).
        decoding: ``independent`` or ``consistent``.
        seed: Run seed.
    """

    def __init__(
        self,
        model: CropModel,
        augment: CropAugment | None,
        optim: OptimSettings,
        header: CheckpointHeader,
        paths: Tensor,
        *,
        decoding: str = "independent",
        seed: int = 0,
    ) -> None:
        super().__init__(header, optim, seed)
        self.model = model
        self.augment = augment
        self.decoding = decoding
        self.paths: Tensor
        self.register_buffer("paths", torch.as_tensor(paths, dtype=torch.int64), persistent=False)
        self.val_metrics = CropMetrics(model.config.num_classes, paths)

    def trainable_modules(self) -> list[nn.Module]:
        """The whole model."""
        return [self.model]

    def augment_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The same flips and rotations for S2, EnMAP, labels and priors."""
        return self.augment(batch) if self.augment is not None else batch

    def forward(self, batch: dict[str, Any]) -> list[Tensor]:
        """Per-level logits ``(B, K_l + 1, H, W)`` of a batch."""
        return self.model(batch["s2"], batch.get("enmap"), batch.get("prior"))

    def _shared_step(
        self, batch: dict[str, Any], batch_idx: int, stage: str, dataloader_idx: int = 0
    ) -> Tensor:
        logits = self(batch)
        loss, per_level = hierarchical_loss(logits, batch["label"])
        terms: dict[str, Tensor] = {"loss": loss}
        terms.update({f"ce_l{level + 1}": term for level, term in enumerate(per_level)})
        size = len(batch["id"])
        if stage == "train":
            self.check_loss(loss, batch, "hierarchical cross-entropy")
            self.log_lr(size)
        else:
            self.val_metrics.update(decode(logits, self.paths, self.decoding), batch["label"])
        self.log_terms(stage, terms, size)
        return loss

    def on_validation_epoch_start(self) -> None:
        """Start the confusion matrices afresh."""
        self.val_metrics.reset()

    def on_validation_epoch_end(self) -> None:
        """Log the metrics of the whole validation split (one value for all ranks)."""
        super().on_validation_epoch_end()
        scores = self.val_metrics.all_reduce().compute()
        values: dict[str, float] = {}
        for scheme, prefix in (("with_background", ""), ("without_background", "nobg_")):
            for name, value in scores[scheme]["mean"].items():
                values[f"val/{prefix}{name}"] = value
            for level, level_scores in enumerate(scores[scheme]["levels"], 1):
                values[f"val/{prefix}macro_f1_l{level}"] = level_scores["macro_f1"]
        if scores["valid_paths"] is not None:
            values["val/valid_paths"] = scores["valid_paths"]
        for name, value in values.items():
            self.log(name, float(value), prog_bar=name == "val/macro_f1", sync_dist=False)
        self.val_metrics.reset()
