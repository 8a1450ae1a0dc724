"""The terms of the sdrl objective, as pure functions of region embeddings.

Shape letters: ``B`` batch (this process), ``K`` regions (semantic classes), ``D`` embedding
dim, ``P`` processes, ``A`` anchor regions, ``R`` candidate regions of the gathered batch.

Every term returns ``(total, count)``: the *sum* of its per-item values over this process's
items and how many items there were, so that :class:`~sdrl.ssl.sdrl_loss.SDRLLoss` can
normalise by the count over all processes. Absent regions (``valid`` false) never enter a
term: their slots may hold anything, even NaN, without changing a value or a gradient.
"""

from __future__ import annotations

from typing import Literal

import lightly.utils.dist as lightly_dist
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DecoupleMode",
    "decoupling",
    "predictor_consistency",
    "region_info_nce",
    "swap_consistency",
    "unit",
]

DecoupleMode = Literal["cos", "hinge", "orthogonal"]
"""Decoupling variants: the paper's ``cos + 1``, a hinge ``relu(cos - margin)`` or ``cos²``."""


def unit(z: Tensor, valid: Tensor) -> Tensor:
    """L2-normalised ``(B, K, D)`` embeddings with absent slots set to exact zeros.

    The zeros are selected (``torch.where``), not multiplied in, so garbage in an absent slot
    gets an exactly zero gradient.
    """
    return F.normalize(torch.where(valid.unsqueeze(-1), z, 0.0), dim=-1)


def region_info_nce(
    z1: Tensor,
    z2: Tensor,
    valid1: Tensor,
    valid2: Tensor,
    anchors: Tensor,
    temperature: float,
    gather_distributed: bool = True,
) -> tuple[Tensor, Tensor]:
    """Cross-view region InfoNCE, symmetric over the views.

    Each anchor region ``(b, k)`` of view 1 is scored against every valid region of the batch
    in both views (all processes' under DDP) except itself; its positive is ``(b, k)`` of
    view 2. The same holds with the views swapped. With cosine similarities ``s``::

        l(b, k) = -log( exp(s(z1[b,k], z2[b,k]) / τ) / Σ_{r ≠ (1,b,k)} exp(s(z1[b,k], r) / τ) )

    Args:
        z1: ``(B, K, D)`` region embeddings of view 1.
        z2: ``(B, K, D)`` region embeddings of view 2.
        valid1: ``(B, K)`` bool, regions present in view 1.
        valid2: ``(B, K)`` bool, regions present in view 2.
        anchors: ``(B, K)`` bool, the anchor regions; each must be valid in both views.
        temperature: ``τ > 0``.
        gather_distributed: Under an initialised ``torch.distributed`` group, candidates come
            from all processes (lightly's differentiable gather); every process must pass the
            same ``B`` and ``K``. A no-op without a process group.

    Returns:
        ``(total, count)``: the summed loss of the ``2·A`` anchor terms (both views) and ``A``.
    """
    b, k, d = z1.shape
    n1, n2 = unit(z1, valid1), unit(z2, valid2)
    views = torch.stack([n1, n2])  # (2, B, K, D)
    present = torch.stack([valid1, valid2])  # (2, B, K)
    world, offset = 1, 0
    if gather_distributed and lightly_dist.world_size() > 1:
        world, offset = lightly_dist.world_size(), lightly_dist.rank() * b
        views = torch.cat(lightly_dist.gather(views.contiguous()), dim=1)  # (2, P·B, K, D)
        present = torch.cat(lightly_dist.gather(present.to(torch.uint8)), dim=1).bool()
    flat_present = present.reshape(-1)
    keys = views.reshape(-1, d)[flat_present]  # (R, D)
    position = torch.cumsum(flat_present, dim=0) - 1  # slot in (2, P·B, K) -> row of keys
    rows, cols = anchors.nonzero(as_tuple=True)
    slot1 = (offset + rows) * k + cols
    slot2 = slot1 + world * b * k
    queries = torch.cat([n1[rows, cols], n2[rows, cols]])  # (2A, D)
    own = torch.cat([position[slot1], position[slot2]])
    positive = torch.cat([position[slot2], position[slot1]])
    logits = (queries @ keys.T) / temperature  # (2A, R)
    logits = logits.scatter(1, own.unsqueeze(1), float("-inf"))
    total = F.cross_entropy(logits, positive, reduction="sum")
    return total, anchors.sum()


def predictor_consistency(
    p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor, anchors: Tensor
) -> tuple[Tensor, Tensor]:
    """Stop-gradient form (BYOL / SimSiam): ``2 - 2·cos(p1, sg(z2)) + 2 - 2·cos(p2, sg(z1))``.

    Args:
        p1: ``(B, K, D)`` predictor outputs of view 1 (the online branch).
        p2: ``(B, K, D)`` predictor outputs of view 2.
        z1: ``(B, K, D)`` target embeddings of view 1; no gradient reaches them.
        z2: ``(B, K, D)`` target embeddings of view 2.
        anchors: ``(B, K)`` bool, the region pairs to compare (valid in both views).

    Returns:
        ``(total, count)``: the summed loss of the ``2·A`` terms and ``A``; each term is 0 for
        identical directions and at most 4.
    """
    pn1, pn2 = unit(p1, anchors), unit(p2, anchors)
    tn1, tn2 = unit(z1.detach(), anchors), unit(z2.detach(), anchors)
    cos = (pn1 * tn2).sum(-1) + (pn2 * tn1).sum(-1)  # (B, K), 0 outside anchors
    total = (4.0 - 2.0 * cos)[anchors].sum()
    return total, anchors.sum()


def decoupling(
    z: Tensor, valid: Tensor, mode: DecoupleMode = "cos", margin: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Push apart different semantic regions of the same image (one view).

    For each image and each unordered pair of distinct valid regions with cosine ``c``:
    ``"cos"`` gives ``c + 1`` (the SDRL/SaDL paper's form, in ``[0, 2]``; it keeps pushing
    towards ``c = -1``, which more than two regions cannot all reach), ``"hinge"`` gives
    ``relu(c - margin)`` (no push once below the margin), ``"orthogonal"`` gives ``c²``
    (pushes towards orthogonal, not opposite, regions).

    Args:
        z: ``(B, K, D)`` region embeddings.
        valid: ``(B, K)`` bool presence.
        mode: The variant, see above.
        margin: The hinge margin in ``[-1, 1)``; only used by ``"hinge"``.

    Returns:
        ``(total, count)``: the summed term over all pairs and the number of pairs.
    """
    n = unit(z, valid)
    cos = n @ n.transpose(1, 2)  # (B, K, K)
    upper = torch.ones_like(cos[0], dtype=torch.bool).triu(diagonal=1)
    pairs = valid.unsqueeze(2) & valid.unsqueeze(1) & upper
    c = cos[pairs]
    if mode == "cos":
        values = c + 1.0
    elif mode == "hinge":
        values = F.relu(c - margin)
    else:
        values = c.square()
    return values.sum(), pairs.sum()


def swap_consistency(z_swap: Tensor, z1: Tensor, pairs: Tensor) -> tuple[Tensor, Tensor]:
    """Pull the swapped view's foreground regions to view 1's: ``2 - 2·cos(z_swap, sg(z1))``.

    View 1 is the target (no gradient): the swapped view must learn to ignore its foreign
    background, while view 1's embedding is not pulled towards a pasted context.

    Args:
        z_swap: ``(B, K, D)`` region embeddings of the background-swapped view.
        z1: ``(B, K, D)`` region embeddings of view 1 (the receiver).
        pairs: ``(B, K)`` bool, foreground regions valid in both.

    Returns:
        ``(total, count)``: the summed term and the number of pairs.
    """
    cos = (unit(z_swap, pairs) * unit(z1.detach(), pairs)).sum(-1)
    return (2.0 - 2.0 * cos)[pairs].sum(), pairs.sum()
