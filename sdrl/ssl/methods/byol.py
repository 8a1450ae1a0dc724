"""BYOL baseline: online backbone + projection + predictor, momentum target (lightly).

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``D`` C5 channels, ``E``
projection dim.
"""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import BYOLPredictionHead, BYOLProjectionHead
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

__all__ = ["BYOLMethod"]


class BYOLMethod(PretrainMethod):
    """BYOL: predict the momentum target's projection of the other view, symmetrised.

    ``loss = ½·(-cos(p1, sg(t2)) - cos(p2, sg(t1)))`` with lightly's
    :class:`~lightly.loss.NegativeCosineSimilarity` (in ``[-1, 1]``; -1 is perfect agreement).
    Online and target branches each take both views in one backbone call. Masks are not used.

    Args:
        backbone: The online encoder.
        num_classes: ``K``, only for :meth:`region_embeddings`.
        hidden_dim: Hidden width of the projection head (BYOL's 4096).
        output_dim: ``E`` (BYOL's 256).
        predictor_hidden_dim: Hidden width of the prediction head (BYOL's 4096).
        momentum: Target momentum at the start, raised to 1 by a cosine (BYOL's 0.996).

    Raises:
        ValueError: An option is out of range.
    """

    name = "byol"
    needs_masks = False

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        hidden_dim: int = 4096,
        output_dim: int = 256,
        predictor_hidden_dim: int = 4096,
        momentum: float = 0.996,
    ) -> None:
        super().__init__(backbone, num_classes)
        check_int("hidden_dim", hidden_dim)
        check_int("output_dim", output_dim)
        check_int("predictor_hidden_dim", predictor_hidden_dim)
        check_real("momentum", momentum, 0.0, 1.0)
        self.momentum = momentum
        self.projection = BYOLProjectionHead(backbone.channels[-1], hidden_dim, output_dim)
        self.predictor = BYOLPredictionHead(output_dim, predictor_hidden_dim, output_dim)
        self.target_backbone = frozen_copy(backbone)
        self.target_projection = frozen_copy(self.projection)
        self.criterion = NegativeCosineSimilarity()

    def forward(
        self,
        view1: Tensor,
        view2: Tensor,
        mask1: Tensor | None = None,
        mask2: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Symmetric BYOL loss (see :meth:`PretrainMethod.forward`).

        Returns:
            ``loss``, ``embedding_std`` (online projections, both views), ``skipped`` (0).
        """
        self.check_views(view1, view2)
        x = torch.cat([view1, view2])
        z = self.projection(self.backbone(x)[-1].mean(dim=(2, 3)))  # (2B, E)
        p1, p2 = self.predictor(z).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target_projection(self.target_backbone(x)[-1].mean(dim=(2, 3))).chunk(2)
        loss = 0.5 * (self.criterion(p1, t2) + self.criterion(p2, t1))
        return {"loss": loss, "embedding_std": embedding_std(z), "skipped": loss.new_zeros(())}

    def momentum_update(self, progress: float) -> None:
        """EMA of backbone and projection into the target (cosine from ``momentum`` to 1)."""
        ema_update(
            [(self.backbone, self.target_backbone), (self.projection, self.target_projection)],
            momentum_at(progress, self.momentum),
        )
