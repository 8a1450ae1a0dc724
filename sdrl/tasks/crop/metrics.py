"""Per-level metrics of the hierarchical crop classifier, H2Crop's way and without background.

One confusion matrix per taxonomy level (``(K_l + 1) × (K_l + 1)``, rows = truth, columns =
prediction, id 0 = background) is accumulated over batches; the scores come from it:

- ``with_background`` (H2Crop's protocol): every pixel counts; overall accuracy over all
  pixels; mIoU and macro F1 average the classes present in the ground truth, background
  included (a class absent from the truth is skipped, whatever was predicted);
- ``without_background``: pixels whose truth is background are left out; overall accuracy
  over the crop pixels; mIoU and macro F1 average the crop classes present in the truth (a
  crop pixel predicted as background counts against its class).

``mean`` averages each score over the levels. ``valid_paths`` is the share of pixels whose
predicted ids across the levels form a path of the taxonomy (all-background is valid).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["METRIC_NAMES", "SCHEMES", "CropMetrics", "level_scores"]

METRIC_NAMES = ("oa", "miou", "macro_f1")
SCHEMES = ("with_background", "without_background")
PROTOCOL = {
    "with_background": "H2Crop's: all pixels; mIoU and macro F1 over the classes present in "
    "the ground truth, background included",
    "without_background": "pixels with background truth left out; mIoU and macro F1 over the "
    "crop classes present in the ground truth",
}


def level_scores(confusion: Tensor, background: bool) -> dict[str, Any]:
    """Overall accuracy, mIoU and macro F1 of one level's confusion matrix.

    Args:
        confusion: ``(K + 1, K + 1)`` counts, rows = truth, columns = prediction, id 0 =
            background.
        background: ``True`` for H2Crop's scheme, ``False`` to leave background pixels out
            (module docstring).

    Returns:
        ``oa``, ``miou``, ``macro_f1`` (floats, NaN when no pixel counts), ``pixels``, and
        ``per_class``: ``{id: {"iou", "f1", "support"}}`` of the classes averaged.
    """
    counts = confusion.double()
    if not background:
        counts = counts.clone()
        counts[0] = 0  # pixels whose truth is background are not evaluated
    tp = counts.diagonal()
    support = counts.sum(1)
    predicted = counts.sum(0)
    fp, fn = predicted - tp, support - tp
    classes = [k for k in range(len(tp)) if support[k] > 0 and (background or k > 0)]
    total = float(support.sum())
    per_class = {}
    for k in classes:
        iou = float(tp[k] / (tp[k] + fp[k] + fn[k]))
        f1 = float(2 * tp[k] / (2 * tp[k] + fp[k] + fn[k]))
        per_class[k] = {"iou": iou, "f1": f1, "support": int(support[k])}
    nan = float("nan")
    return {
        "oa": float(tp.sum()) / total if total else nan,
        "miou": sum(c["iou"] for c in per_class.values()) / len(classes) if classes else nan,
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(classes) if classes else nan,
        "pixels": int(total),
        "per_class": per_class,
    }


class CropMetrics:
    """Confusion matrices per level (+ the valid-path count) accumulated over batches.

    Args:
        num_classes: Classes per level, background included (``K_l + 1``).
        paths: ``(P, L)`` the taxonomy's valid paths of ids (one per leaf), or ``None`` to
            skip the valid-path share.
        ignore_index: Truth value of pixels that are not evaluated (any level).
    """

    def __init__(
        self,
        num_classes: Sequence[int],
        paths: Tensor | np.ndarray | None = None,
        ignore_index: int | None = None,
    ) -> None:
        self.num_classes = tuple(int(k) for k in num_classes)
        self.ignore_index = ignore_index
        self.path_codes: Tensor | None = None
        if paths is not None:
            table = paths.cpu() if isinstance(paths, Tensor) else torch.tensor(np.array(paths))
            codes = self._codes(table.to(torch.int64).T)
            zero = torch.zeros(1, dtype=torch.int64)
            self.path_codes = torch.unique(torch.cat([codes, zero]))
        self.reset()

    def reset(self) -> None:
        """Forget every count."""
        self.confusion = [torch.zeros(k, k, dtype=torch.int64) for k in self.num_classes]
        self.paths = torch.zeros(2, dtype=torch.int64)  # valid pixels, pixels

    def _codes(self, ids: Tensor) -> Tensor:
        """One integer per pixel for its ids at every level: ``ids`` ``(L, ...)``."""
        code = torch.zeros_like(ids[0])
        for level, k in enumerate(self.num_classes):
            code = code * k + ids[level]
        return code

    @torch.no_grad()
    def update(self, pred: Tensor, truth: Tensor) -> None:
        """Add a batch.

        Args:
            pred: Predicted ids ``(B, L, H, W)``, level ``l`` in ``0..K_l``.
            truth: Reference ids of the same shape (``ignore_index`` pixels skipped).

        Raises:
            ValueError: Shapes differ, the level count is not the taxonomy's, or an id is out
                of its level's range.
        """
        if pred.shape != truth.shape or pred.dim() != 4:
            raise ValueError(
                f"pred and truth must both be (B, L, H, W), got {tuple(pred.shape)} and "
                f"{tuple(truth.shape)}"
            )
        if pred.shape[1] != len(self.num_classes):
            raise ValueError(f"expected {len(self.num_classes)} levels, got {pred.shape[1]}")
        pred, truth = pred.detach().cpu().long(), truth.detach().cpu().long()
        keep = torch.ones_like(truth[:, 0], dtype=torch.bool)
        if self.ignore_index is not None:
            keep = (truth != self.ignore_index).all(1)
        for level, k in enumerate(self.num_classes):
            p, t = pred[:, level][keep], truth[:, level][keep]
            if len(t) and (int(t.max()) >= k or int(p.max()) >= k or min(p.min(), t.min()) < 0):
                raise ValueError(
                    f"level {level + 1}: ids must lie in 0..{k - 1}, found truth "
                    f"{int(t.min())}..{int(t.max())}, prediction {int(p.min())}..{int(p.max())}"
                )
            self.confusion[level] += torch.bincount(t * k + p, minlength=k * k).view(k, k)
        if self.path_codes is not None:
            codes = self._codes(pred.transpose(0, 1))[keep]
            self.paths += torch.tensor([int(torch.isin(codes, self.path_codes).sum()), len(codes)])

    def all_reduce(self) -> CropMetrics:
        """Sum the counts over all processes when ``torch.distributed`` is initialised."""
        if not (dist.is_available() and dist.is_initialized()):
            return self
        flat = torch.cat([c.flatten() for c in self.confusion] + [self.paths])
        if dist.get_backend() == "nccl":
            flat = flat.cuda()
        dist.all_reduce(flat)
        flat, start = flat.cpu(), 0
        for level, k in enumerate(self.num_classes):
            self.confusion[level] = flat[start : start + k * k].view(k, k).clone()
            start += k * k
        self.paths = flat[start:].clone()
        return self

    def compute(self, per_class: bool = False) -> dict[str, Any]:
        """The scores (module docstring) of everything added so far.

        Args:
            per_class: Keep each level's per-class IoU/F1/support.

        Returns:
            ``{scheme: {"levels": [{oa, miou, macro_f1, pixels}, ...], "mean": {...}}}``
            for both schemes, ``protocol`` (what each scheme means) and ``valid_paths``
            (share, or ``None`` without a taxonomy).
        """
        out: dict[str, Any] = {"protocol": dict(PROTOCOL)}
        for scheme in SCHEMES:
            levels = []
            for confusion in self.confusion:
                scores = level_scores(confusion, background=scheme == "with_background")
                if not per_class:
                    scores.pop("per_class")
                else:
                    scores["per_class"] = {str(k): v for k, v in scores["per_class"].items()}
                levels.append(scores)
            mean = {m: sum(s[m] for s in levels) / len(levels) for m in METRIC_NAMES}
            out[scheme] = {"levels": levels, "mean": mean}
        valid, total = (int(v) for v in self.paths)
        out["valid_paths"] = valid / total if self.path_codes is not None and total else None
        return out
