"""Hierarchical heads: one per taxonomy level, each fed the previous level's logits.

Shape letters: ``B`` batch, ``H``/``W`` rows/columns of the S2 grid, ``L`` taxonomy levels,
``N_l = K_l + 1`` classes of level ``l`` (background included), ``E`` shared feature channels.

Head ``l`` sees ``features ⊕ logits_{l-1}`` (level 0: the features alone) and, with priors,
``⊕ one_hot(prior_l)``, as in H2Crop's cascade head: a 3x3 conv-BN-ReLU to ``E / 2`` channels
and a 1x1 classifier. The previous level's raw logits are passed (H2Crop's choice), with their
gradient, so a level's loss also trains the heads above it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdrl.models.change import conv_bn_relu

__all__ = ["HierarchicalHeads", "one_hot_prior"]


def one_hot_prior(prior: Tensor, classes: int) -> Tensor:
    """One-hot map of a prior level; ids outside ``[0, classes)`` (no prior) give zeros.

    Args:
        prior: ``(B, H, W)`` integer ids.
        classes: ``N_l``.

    Returns:
        ``(B, N_l, H, W)`` float32.
    """
    known = (prior >= 0) & (prior < classes)
    hot = F.one_hot(torch.where(known, prior, 0).long(), classes).permute(0, 3, 1, 2)
    return (hot * known.unsqueeze(1)).float()


class HierarchicalHeads(nn.Module):
    """The ``L`` cascaded heads (module doc).

    Args:
        in_channels: ``E``.
        num_classes: ``N_l`` of each level.
        priors: Heads also take the one-hot prior of their level.
    """

    def __init__(self, in_channels: int, num_classes: Sequence[int], priors: bool = False) -> None:
        super().__init__()
        self.num_classes = [int(k) for k in num_classes]
        self.priors = priors
        hidden = max(in_channels // 2, 1)
        heads = []
        for level, classes in enumerate(self.num_classes):
            width = in_channels + (self.num_classes[level - 1] if level else 0)
            width += classes if priors else 0
            heads.append(nn.Sequential(conv_bn_relu(width, hidden), nn.Conv2d(hidden, classes, 1)))
        self.heads = nn.ModuleList(heads)

    def forward(self, features: Tensor, prior: Tensor | None = None) -> list[Tensor]:
        """Classify every level.

        Args:
            features: ``(B, E, H, W)``.
            prior: ``(B, L, H, W)`` integer ids when built with priors, else ``None``.

        Returns:
            ``L`` logits ``(B, N_l, H, W)``.
        """
        logits: list[Tensor] = []
        for level, head in enumerate(self.heads):
            inputs = [features, *logits[-1:]]
            if self.priors:
                assert prior is not None
                inputs.append(one_hot_prior(prior[:, level], self.num_classes[level]).to(features))
            logits.append(head(torch.cat(inputs, dim=1)))
        return logits
