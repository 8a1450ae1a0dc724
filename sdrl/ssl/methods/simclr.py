"""SimCLR baseline: global average pool of C5 → SimCLR head → NT-Xent (lightly).

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``D`` C5 channels, ``E``
projection dim.
"""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import SimCLRProjectionHead
from torch import Tensor

from sdrl.models.base import Backbone
from sdrl.ssl.methods.base import PretrainMethod, check_int, check_real, embedding_std

__all__ = ["SimCLRMethod"]


class SimCLRMethod(PretrainMethod):
    """SimCLR: both views through backbone and head, the other view as positive.

    Both views go through the backbone in one call (BatchNorm statistics over ``2B``, as
    SimCLR's global BN). Masks are not used.

    Args:
        backbone: The encoder.
        num_classes: ``K``, only for :meth:`region_embeddings`.
        hidden_dim: Hidden width of :class:`~lightly.models.modules.heads.SimCLRProjectionHead`;
            ``None`` (default) takes the C5 width, as SimCLR does.
        output_dim: ``E`` (SimCLR's 128).
        temperature: NT-Xent temperature (0.1, as lightly's ImageNet benchmark and the region
            methods here; lightly's class default is 0.5).
        gather_distributed: Gather negatives across processes under DDP.

    Raises:
        ValueError: An option is out of range.
    """

    name = "simclr"
    needs_masks = False

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        hidden_dim: int | None = None,
        output_dim: int = 128,
        temperature: float = 0.1,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone, num_classes)
        feature_dim = backbone.channels[-1]
        hidden_dim = feature_dim if hidden_dim is None else hidden_dim
        check_int("hidden_dim", hidden_dim)
        check_int("output_dim", output_dim)
        check_real("temperature", temperature, 0.0, low_open=True)
        self.projection = SimCLRProjectionHead(feature_dim, hidden_dim, output_dim)
        self.criterion = NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)

    def forward(
        self,
        view1: Tensor,
        view2: Tensor,
        mask1: Tensor | None = None,
        mask2: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """NT-Xent of the two views' projections (see :meth:`PretrainMethod.forward`).

        Returns:
            ``loss``, ``embedding_std`` (over both views' projections), ``skipped`` (always 0).
        """
        self.check_views(view1, view2)
        features = self.backbone(torch.cat([view1, view2]))[-1].mean(dim=(2, 3))  # (2B, D)
        z = self.projection(features)  # (2B, E)
        z1, z2 = z.chunk(2)
        loss = self.criterion(z1, z2)
        return {"loss": loss, "embedding_std": embedding_std(z), "skipped": loss.new_zeros(())}
