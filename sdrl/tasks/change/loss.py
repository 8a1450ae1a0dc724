"""Losses of change detection and the class weighting for the rarity of change.

Shape letters: ``B`` batch, ``K`` logit channels, ``H``/``W`` rows/columns.

Change is rare (a few percent of the pixels of LEVIR-CD or WHU-CD), so an unweighted loss
learns to predict "unchanged" everywhere first. Both losses weight the change class:

* ``ce``: 2-class cross-entropy, class weights ``[1, w]``, averaged over the labelled pixels
  with the weights (PyTorch's weighted mean);
* ``bce-dice``: one logit; binary cross-entropy with ``pos_weight = w`` averaged over the
  labelled pixels, plus the soft Dice loss of the change class over the batch
  (``1 - (2 Σ p t + 1) / (Σ p + Σ t + 1)``), which does not depend on the class balance.

Pixels labelled :data:`~sdrl.data.samples.IGNORE_INDEX` count nowhere. A batch without any
labelled pixel gives a zero loss (not NaN).

``w`` is given, or ``auto``: :func:`auto_change_weight` of the pixel counts of the training
labels (:func:`count_change_pixels`), ``sqrt(unchanged / changed)``, between 1 and 100 — the
square root of inverse-frequency weighting, which on LEVIR-CD (about 5% change) gives about
4.4 instead of 19, enough to lift recall without flooding the map with false alarms.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdrl.data.datasets import ChangeDataset
from sdrl.data.io import open_raster
from sdrl.data.samples import IGNORE_INDEX

__all__ = ["ChangeLoss", "auto_change_weight", "count_change_pixels"]

log = logging.getLogger(__name__)

MAX_WEIGHT = 100.0


def count_change_pixels(dataset: ChangeDataset, max_tiles: int = 512) -> tuple[int, int]:
    """Unchanged and changed pixels in the labels of up to ``max_tiles`` tiles of ``dataset``.

    Only the label files are read (evenly spread over the split when it is larger).

    Returns:
        ``(unchanged, changed)`` pixel counts (ignore pixels excluded).
    """
    count = min(max_tiles, len(dataset))
    picks = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(int))
    lookup = dataset.lookup
    unchanged = changed = 0
    for index in picks.tolist():
        with open_raster(dataset.folder.path("label", str(dataset.ids[index]))) as src:
            raw = src.read(1)
        classes = lookup[np.clip(raw, 0, len(lookup) - 1).astype(np.int64)]
        unchanged += int(np.count_nonzero(classes == 0))
        changed += int(np.count_nonzero(classes == 1))
    return unchanged, changed


def auto_change_weight(unchanged: int, changed: int) -> float:
    """``sqrt(unchanged / changed)`` clipped to ``[1, 100]``; 1 without changed pixels."""
    if changed == 0:
        log.warning("the training labels hold no changed pixel: the change weight is 1")
        return 1.0
    return float(min(max(math.sqrt(unchanged / changed), 1.0), MAX_WEIGHT))


class ChangeLoss(nn.Module):
    """Weighted change loss (module doc).

    Args:
        kind: ``ce`` (logits ``(B, 2, H, W)``) or ``bce-dice`` (logits ``(B, 1, H, W)``).
        change_weight: Weight ``w`` of the change class.
        ignore_index: Target value of unlabelled pixels.
    """

    def __init__(self, kind: str, change_weight: float = 1.0, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        if kind not in ("ce", "bce-dice"):
            raise ValueError(f"kind must be 'ce' or 'bce-dice', got {kind!r}")
        if not change_weight > 0:
            raise ValueError(f"change_weight must be positive, got {change_weight}")
        self.kind = kind
        self.change_weight = float(change_weight)
        self.ignore_index = ignore_index

    @property
    def out_channels(self) -> int:
        """Logit channels ``K`` the loss expects."""
        return 2 if self.kind == "ce" else 1

    def forward(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The loss and its terms.

        Args:
            logits: ``(B, K, H, W)``, ``K`` = :attr:`out_channels`.
            target: ``(B, H, W)`` int64: 0 unchanged, 1 changed, ``ignore_index``.

        Returns:
            ``{"loss": ...}`` plus ``"ce"``, or ``"bce"`` and ``"dice"`` (scalars, float32).
        """
        if logits.ndim != 4 or logits.shape[1] != self.out_channels:
            raise ValueError(
                f"the {self.kind} loss needs (B, {self.out_channels}, H, W) logits, got "
                f"{tuple(logits.shape)}"
            )
        logits = logits.float()
        valid = target != self.ignore_index
        t = torch.where(valid, target, torch.zeros_like(target))
        w = self.change_weight
        if self.kind == "ce":
            weight = torch.where(t == 1, w, 1.0) * valid
            ce = F.cross_entropy(logits, t, reduction="none")
            loss = (ce * weight).sum() / weight.sum().clamp_min(1.0)
            return {"loss": loss, "ce": loss.detach()}
        logit, positive = logits[:, 0], (t == 1).float()
        pos_weight = torch.tensor(w, device=logits.device)
        bce = F.binary_cross_entropy_with_logits(
            logit, positive, pos_weight=pos_weight, reduction="none"
        )
        mask = valid.float()
        bce = (bce * mask).sum() / mask.sum().clamp_min(1.0)
        prob = torch.sigmoid(logit) * mask
        truth = positive * mask
        dice = 1.0 - (2.0 * (prob * truth).sum() + 1.0) / (prob.sum() + truth.sum() + 1.0)
        return {"loss": bce + dice, "bce": bce.detach(), "dice": dice.detach()}
