"""MoCo v2 baseline: query encoder, momentum key encoder, memory bank of negatives (lightly).

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``D`` C5 channels, ``E``
projection dim, ``Q`` memory bank size.
"""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import MoCoProjectionHead
from torch import Tensor

from sdrl.models.base import Backbone
from sdrl.ssl.methods.base import (
    PretrainMethod,
    check_int,
    check_real,
    ema_update,
    embedding_std,
    frozen_copy,
    momentum_at,
)

__all__ = ["MoCoMethod"]


class MoCoMethod(PretrainMethod):
    """MoCo v2: InfoNCE of queries (view 1) against keys (view 2, momentum encoder) and a queue.

    As in MoCo v2 the loss is not symmetrised: lightly's memory bank enqueues the keys of each
    call, so a second, swapped call would meet this batch's own keys as negatives. Shuffle-BN
    is not used (single-process BatchNorm of the query and the key batch are separate calls).
    The memory bank is a persistent buffer, so checkpoints resume with the same negatives.
    Masks are not used.

    Args:
        backbone: The query encoder.
        num_classes: ``K``, only for :meth:`region_embeddings`.
        hidden_dim: Hidden width of :class:`~lightly.models.modules.heads.MoCoProjectionHead`;
            ``None`` (default) takes the C5 width, as MoCo v2 does.
        output_dim: ``E`` (MoCo's 128).
        temperature: InfoNCE temperature (MoCo v2's 0.2).
        memory_bank_size: ``Q`` negatives kept (MoCo's 65536; 4096 as in lightly's examples);
            0 uses the other keys of the batch instead.
        momentum: Key-encoder momentum at the start, raised to 1 by a cosine (0.996).
        gather_distributed: Gather keys of all processes into the bank under DDP.

    Raises:
        ValueError: An option is out of range.
    """

    name = "moco"
    needs_masks = False

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        hidden_dim: int | None = None,
        output_dim: int = 128,
        temperature: float = 0.2,
        memory_bank_size: int = 4096,
        momentum: float = 0.996,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone, num_classes)
        feature_dim = backbone.channels[-1]
        hidden_dim = feature_dim if hidden_dim is None else hidden_dim
        check_int("hidden_dim", hidden_dim)
        check_int("output_dim", output_dim)
        check_int("memory_bank_size", memory_bank_size, low=0)
        check_real("temperature", temperature, 0.0, low_open=True)
        check_real("momentum", momentum, 0.0, 1.0)
        self.momentum = momentum
        self.projection = MoCoProjectionHead(feature_dim, hidden_dim, output_dim)
        self.target_backbone = frozen_copy(backbone)
        self.target_projection = frozen_copy(self.projection)
        self.criterion = NTXentLoss(
            temperature=temperature,
            memory_bank_size=(memory_bank_size, output_dim) if memory_bank_size else 0,
            gather_distributed=gather_distributed,
        )
        bank = self.criterion.memory_bank
        if memory_bank_size:  # lightly keeps the queue out of the state dict; keep it in
            bank.register_buffer("bank", bank.bank, persistent=True)
            bank.register_buffer("bank_ptr", bank.bank_ptr, persistent=True)

    def forward(
        self,
        view1: Tensor,
        view2: Tensor,
        mask1: Tensor | None = None,
        mask2: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """MoCo InfoNCE of view-1 queries and view-2 keys (see :meth:`PretrainMethod.forward`).

        Returns:
            ``loss``, ``embedding_std`` (queries), ``skipped`` (always 0).
        """
        self.check_views(view1, view2)
        query = self.projection(self.backbone(view1)[-1].mean(dim=(2, 3)))  # (B, E)
        with torch.no_grad():
            key = self.target_projection(self.target_backbone(view2)[-1].mean(dim=(2, 3)))
        loss = self.criterion(query, key)
        return {
            "loss": loss,
            "embedding_std": embedding_std(query),
            "skipped": loss.new_zeros(()),
        }

    def momentum_update(self, progress: float) -> None:
        """EMA of backbone and projection into the key encoder (cosine from ``momentum`` to 1)."""
        ema_update(
            [(self.backbone, self.target_backbone), (self.projection, self.target_projection)],
            momentum_at(progress, self.momentum),
        )
