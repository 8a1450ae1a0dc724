"""Change-detection metrics from one confusion matrix accumulated over a split.

Shape letters: ``B`` batch, ``H``/``W`` rows/columns.

:class:`ChangeMetrics` counts, for the change class (label 1) against unchanged (label 0),
true/false positives and negatives over every pixel whose target is not
:data:`~sdrl.data.samples.IGNORE_INDEX`. The counts are int64 tensors on the device of the
predictions (no host synchronisation per batch); :meth:`ChangeMetrics.compute` turns them
into the ⚑ ``metrics.json`` values with exact integer arithmetic.

Definitions (``N = tp + fp + fn + tn``) and zero-division conventions, those of scikit-learn
with ``zero_division=0`` (``replace_undefined_by=0.0`` for kappa), so an evaluation without
any change gives 0, never NaN (which JSON cannot hold):

==============  =============================================  ==========================
key             value                                          0 when
==============  =============================================  ==========================
``precision``   ``tp / (tp + fp)``                             nothing predicted changed
``recall``      ``tp / (tp + fn)``                             no change in the target
``f1``          ``2 tp / (2 tp + fp + fn)``                    neither
``iou``         ``tp / (tp + fp + fn)`` (Jaccard)              neither
``oa``          ``(tp + tn) / N``                              ``N = 0``
``kappa``       Cohen's kappa ``(p_o - p_e) / (1 - p_e)``      ``p_e = 1`` (prediction and
                                                               target both constant and equal)
==============  =============================================  ==========================

``tp``, ``fp``, ``fn``, ``tn`` and ``ignored`` (pixels skipped) are integer counts.

:class:`ChangeScores` is the threshold-free companion: histograms of the change probability of
changed and unchanged pixels (``bins`` equal bins over [0, 1]), from which ``average_precision``
(the area under the precision-recall curve as scikit-learn's ``average_precision_score``
computes it, on probabilities rounded down to the bin grid) and ``best_f1`` (the F1 at the best
of the bin thresholds, an oracle: it tells ranking from calibration) follow; both 0 without any
changed pixel.

Written by hand rather than with torchmetrics: one confusion matrix gives every key (kappa
included) with exactly these conventions and an all-reduce of five integers, and evaluation
and prediction do not depend on torchmetrics' changing defaults.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from sdrl.data.samples import IGNORE_INDEX

__all__ = ["METRIC_KEYS", "ChangeMetrics", "ChangeScores", "change_metrics"]

METRIC_KEYS = ("precision", "recall", "f1", "iou", "oa", "kappa", "tp", "fp", "fn", "tn")
"""The ⚑ ``metrics.json`` keys of :meth:`ChangeMetrics.compute`, in order."""

_COUNTS = ("tp", "fp", "fn", "tn", "ignored", "invalid")


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def change_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """The metrics of the change class from confusion counts (conventions in the module doc).

    Args:
        tp: Changed pixels predicted changed.
        fp: Unchanged pixels predicted changed.
        fn: Changed pixels predicted unchanged.
        tn: Unchanged pixels predicted unchanged.

    Returns:
        ``precision``, ``recall``, ``f1``, ``iou``, ``oa``, ``kappa``: floats in [0, 1]
        (kappa in [-1, 1]).
    """
    total = tp + fp + fn + tn
    # kappa = 1 - observed / expected disagreement; expected = N^2 (1 - p_e) from the
    # marginals (target: tp + fn changed, fp + tn unchanged; prediction: tp + fp, fn + tn)
    expected = (tp + fn) * (fn + tn) + (fp + tn) * (tp + fp)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "oa": _ratio(tp + tn, total),
        "kappa": 1.0 - (fp + fn) * total / expected if expected else 0.0,
    }


class ChangeMetrics:
    """Confusion-matrix accumulator for binary change maps (module doc).

    Typical use: ``update`` per batch, ``all_reduce`` once per split under DDP, ``compute``.

    Args:
        ignore_index: Target value of pixels that are not evaluated.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        self.ignore_index = ignore_index
        self.counts: Tensor = torch.zeros(len(_COUNTS), dtype=torch.int64)

    def reset(self) -> None:
        """Forget every count (keeping the device)."""
        self.counts = torch.zeros_like(self.counts)

    def to(self, device: torch.device | str) -> ChangeMetrics:
        """Move the counts to ``device``; returns ``self``."""
        self.counts = self.counts.to(device)
        return self

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch of predictions.

        Args:
            pred: Predicted labels ``(B, H, W)`` (or any shape), 0 = unchanged, 1 = changed,
                integer or bool.
            target: Reference labels of the same shape: 0, 1 or ``ignore_index``.

        Raises:
            ValueError: If the shapes differ. Values other than those allowed are counted and
                reported by :meth:`compute`, so that no host synchronisation happens here.
        """
        if pred.shape != target.shape:
            raise ValueError(
                f"pred and target must have the same shape, got {tuple(pred.shape)} "
                f"and {tuple(target.shape)}"
            )
        if pred.dtype.is_floating_point or target.dtype.is_floating_point:
            raise ValueError(
                "pred and target must hold integer labels; threshold or argmax the logits first"
            )
        if self.counts.device != pred.device:
            self.counts = self.counts.to(pred.device)
        target = target.to(pred.device)
        changed = pred == 1
        unchanged = pred == 0
        pos = target == 1
        neg = target == 0
        ignored = target == self.ignore_index
        invalid = ~(pos | neg | ignored) | (~ignored & ~(changed | unchanged))
        batch = torch.stack(
            [
                (changed & pos).sum(),
                (changed & neg).sum(),
                (unchanged & pos).sum(),
                (unchanged & neg).sum(),
                ignored.sum(),
                invalid.sum(),
            ]
        )
        self.counts += batch.to(torch.int64)

    def merge(self, other: ChangeMetrics) -> ChangeMetrics:
        """Add the counts of another accumulator (e.g. of another split part); returns ``self``."""
        self.counts += other.counts.to(self.counts.device)
        return self

    def all_reduce(self, group: dist.ProcessGroup | None = None) -> ChangeMetrics:
        """Sum the counts over all processes when ``torch.distributed`` is initialised.

        Every process must call it (it is a collective); without an initialised process group
        it does nothing. With the NCCL backend the counts travel on the current CUDA device.

        Args:
            group: Process group; ``None`` for the default group.

        Returns:
            ``self``, holding the global counts on every process.
        """
        if not (dist.is_available() and dist.is_initialized()):
            return self
        device = self.counts.device
        if dist.get_backend(group) == "nccl":
            counts = self.counts.to(torch.device("cuda", torch.cuda.current_device()))
        else:
            counts = self.counts.cpu()
        dist.all_reduce(counts, op=dist.ReduceOp.SUM, group=group)
        self.counts = counts.to(device)
        return self

    def compute(self) -> dict[str, float | int]:
        """The ⚑ metrics of the change class over everything added so far.

        Returns:
            ``precision``, ``recall``, ``f1``, ``iou``, ``oa``, ``kappa`` (floats), ``tp``,
            ``fp``, ``fn``, ``tn`` and ``ignored`` (ints).

        Raises:
            ValueError: If some pixel had a prediction other than 0/1 or a target other
                than 0, 1 and ``ignore_index``.
        """
        tp, fp, fn, tn, ignored, invalid = (int(v) for v in self.counts.tolist())
        if invalid:
            raise ValueError(
                f"{invalid} pixels had a prediction other than 0/1 or a target other than "
                f"0, 1 and {self.ignore_index} (ignore); map labels to these values first"
            )
        out: dict[str, float | int] = dict(change_metrics(tp, fp, fn, tn))
        out.update(tp=tp, fp=fp, fn=fn, tn=tn, ignored=ignored)
        return out


class ChangeScores:
    """Histograms of change probabilities per target class; threshold-free metrics (module doc).

    Args:
        bins: Equal-width bins over [0, 1]; a probability ``p`` falls in bin
            ``min(floor(p * bins), bins - 1)``.
        ignore_index: Target value of pixels that are not counted.
    """

    def __init__(self, bins: int = 1000, ignore_index: int = IGNORE_INDEX) -> None:
        if bins < 1:
            raise ValueError(f"bins: expected at least 1, found {bins}")
        self.bins, self.ignore_index = bins, ignore_index
        self.changed = np.zeros(bins, dtype=np.int64)
        self.unchanged = np.zeros(bins, dtype=np.int64)

    def update(self, prob: np.ndarray, target: np.ndarray) -> None:
        """Add the probabilities ``(H, W)`` (any shape) of pixels labelled 0, 1 or ignore.

        Works through the pixels in chunks, so a large image needs little memory beyond its own.

        Raises:
            ValueError: Shapes that differ, a counted probability outside [0, 1] or not finite.
        """
        prob, target = np.asarray(prob).reshape(-1), np.asarray(target).reshape(-1)
        if prob.shape != target.shape:
            raise ValueError(
                f"prob and target must have the same size, got {prob.size} and {target.size}"
            )
        for start in range(0, prob.size, self.CHUNK):
            p, t = prob[start : start + self.CHUNK], target[start : start + self.CHUNK]
            keep = t != self.ignore_index
            p = p[keep]
            if p.size and not (np.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0):
                raise ValueError("change probabilities must be finite and in [0, 1]")
            # bin of each counted pixel, shifted by `bins` for changed pixels: one bincount
            code = np.minimum((p * self.bins).astype(np.int64), self.bins - 1)
            code += self.bins * (t[keep] == 1)
            counts = np.bincount(code, minlength=2 * self.bins)
            self.unchanged += counts[: self.bins]
            self.changed += counts[self.bins :]

    CHUNK = 1 << 22
    """Pixels per step of :meth:`update`."""

    def merge(self, other: ChangeScores) -> ChangeScores:
        """Add the histograms of another accumulator with the same bins; returns ``self``."""
        if other.bins != self.bins:
            raise ValueError(f"cannot merge {other.bins} bins into {self.bins}")
        self.changed += other.changed
        self.unchanged += other.unchanged
        return self

    def compute(self) -> dict[str, float]:
        """The threshold-free metrics over everything added so far.

        Returns:
            ``average_precision``, ``best_f1`` and ``best_threshold`` (change is predicted
            where the probability is at least it).
        """
        total_changed = int(self.changed.sum())
        if total_changed == 0:
            return {"average_precision": 0.0, "best_f1": 0.0, "best_threshold": 0.5}
        # thresholds from the highest bin down: predicted changed = bins at or above it
        tp = np.cumsum(self.changed[::-1])
        fp = np.cumsum(self.unchanged[::-1])
        predicted = tp + fp
        precision = np.divide(tp, predicted, out=np.zeros(self.bins), where=predicted > 0)
        recall = tp / total_changed
        gain = np.diff(recall, prepend=0.0)
        f1 = 2 * tp / (predicted + total_changed)
        best = int(np.argmax(f1))
        return {
            "average_precision": float(np.sum(gain * precision)),
            "best_f1": float(f1[best]),
            "best_threshold": (self.bins - 1 - best) / self.bins,
        }
