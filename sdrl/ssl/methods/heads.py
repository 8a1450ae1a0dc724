"""Projection heads on region embeddings, applied to present regions only.

Shape letters: ``B`` batch, ``K`` regions, ``D`` input dim, ``E`` output dim, ``N`` rows.

Region embeddings come as ``(B, K, D)`` with a ``(B, K)`` presence mask; absent rows are zeros
(or anything). A head with BatchNorm must not see them: their zeros would drag the batch
statistics (and the running averages kept for evaluation) towards a fake cluster. So the head
runs on the present rows only and the result is scattered back, absent rows exact zeros.
"""

from __future__ import annotations

from typing import Literal

import torch
from lightly.models.modules.heads import ProjectionHead, SimCLRProjectionHead
from torch import Tensor, nn

__all__ = ["HeadKind", "apply_to_valid", "projection_head"]

HeadKind = Literal["simclr", "mlp"]
"""``"simclr"``: lightly's SimCLR head (Linear-BN-ReLU-Linear-BN); ``"mlp"``: Linear-ReLU-Linear."""


def projection_head(kind: HeadKind, input_dim: int, hidden_dim: int, output_dim: int) -> nn.Module:
    """A two-layer projection head.

    Args:
        kind: ``"simclr"``: :class:`~lightly.models.modules.heads.SimCLRProjectionHead` with
            BatchNorm after both layers; ``"mlp"``: a plain two-layer MLP (bias, ReLU, no norm).
        input_dim: ``D``.
        hidden_dim: Hidden width.
        output_dim: ``E``.

    Returns:
        A module mapping ``(N, D)`` to ``(N, E)``.
    """
    if kind == "simclr":
        return SimCLRProjectionHead(input_dim, hidden_dim, output_dim, num_layers=2)
    if kind == "mlp":
        return ProjectionHead(
            [(input_dim, hidden_dim, None, nn.ReLU()), (hidden_dim, output_dim, None, None)]
        )
    raise ValueError(f"head must be 'simclr' or 'mlp'; found {kind!r}")


def _has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def apply_to_valid(head: nn.Module, z: Tensor, valid: Tensor) -> Tensor:
    """Apply ``head`` to the present rows of ``z`` and scatter the result back.

    With fewer than two present rows a BatchNorm head cannot compute batch statistics in
    training mode; it then runs in eval mode for this call (running statistics, no update).

    Args:
        head: A module mapping ``(N, D)`` to ``(N, E)``.
        z: ``(B, K, D)`` region embeddings.
        valid: ``(B, K)`` bool presence.

    Returns:
        ``(B, K, E)``: ``head(z[valid])`` at the present slots, exact zeros elsewhere (no
        gradient reaches ``z``'s absent rows).
    """
    rows = z[valid]
    if head.training and rows.shape[0] < 2 and _has_batchnorm(head):
        head.eval()
        try:
            out = head(rows)
        finally:
            head.train()
    else:
        out = head(rows)
    full = torch.zeros(*valid.shape, out.shape[-1], dtype=out.dtype, device=out.device)
    return full.index_put((valid,), out)
