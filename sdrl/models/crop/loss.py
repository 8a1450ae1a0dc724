"""The hierarchical loss: the sum of the taxonomy levels' cross-entropies.

Shape letters: ``B`` batch, ``L`` taxonomy levels, ``N_l = K_l + 1`` classes of level ``l``,
``H``/``W`` rows/columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["hierarchical_loss"]

_NO_IGNORE = -100  # cross_entropy's default: no label id is that


def hierarchical_loss(
    logits: Sequence[Tensor],
    label: Tensor,
    weights: Sequence[float | Tensor | None] | None = None,
    ignore_index: int | None = None,
) -> tuple[Tensor, list[Tensor]]:
    """Sum of the per-level cross-entropies (each the mean over its labelled pixels).

    Args:
        logits: ``L`` tensors ``(B, N_l, H, W)``.
        label: ``(B, L, H, W)`` integer ids, 0 the background of every level.
        weights: Per level, a float that scales its term, or a ``(N_l,)`` tensor of class
            weights for its cross-entropy, or ``None`` (1); ``None`` for all levels.
        ignore_index: A label id that contributes no loss (e.g. 255 for unlabelled pixels).

    Returns:
        The total, and the ``L`` terms as they enter it, scaled (a level without a labelled
        pixel gives 0, still connected to the graph). No host synchronisation.

    Raises:
        ValueError: If the level counts or shapes disagree.
    """
    levels = len(logits)
    if label.ndim != 4 or label.shape[1] != levels:
        raise ValueError(f"label must be (B, L={levels}, H, W), got {tuple(label.shape)}")
    if weights is not None and len(weights) != levels:
        raise ValueError(f"weights must have one entry per level ({levels}), got {len(weights)}")
    ignore = _NO_IGNORE if ignore_index is None else int(ignore_index)
    terms: list[Tensor] = []
    for level, level_logits in enumerate(logits):
        target = label[:, level].long()
        if level_logits.shape[0] != target.shape[0] or level_logits.shape[2:] != target.shape[1:]:
            raise ValueError(
                f"level {level}: logits {tuple(level_logits.shape)} do not match label "
                f"{tuple(label.shape)}"
            )
        weight = None if weights is None else weights[level]
        classes = weight if isinstance(weight, Tensor) else None
        scale = 1.0 if weight is None or isinstance(weight, Tensor) else float(weight)
        if classes is not None:
            classes = classes.to(level_logits.device, torch.float32)
        summed = F.cross_entropy(
            level_logits.float(), target, weight=classes, ignore_index=ignore, reduction="sum"
        )
        labelled = target != ignore
        if classes is None:
            count = labelled.sum().float()
        else:
            count = (classes[torch.where(labelled, target, 0)] * labelled).sum()
        # the mean over labelled pixels (weighted as cross_entropy does), 0 where none is;
        # no host synchronisation
        terms.append(summed / count.clamp_min(1e-12) * scale)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total, terms
