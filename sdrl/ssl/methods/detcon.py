"""DetCon baseline: C5 region pooling by masks from any source → head → lightly's DetCon loss.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``K`` semantic classes
(regions, lightly's ``M``), ``D`` C5 channels, ``E`` projection dim.

**Absent regions.** lightly's :class:`~lightly.loss.DetConSLoss` and
:class:`~lightly.loss.DetConBLoss` take ``(B, M, E)`` region embeddings plus ``(B, M)`` region
ids: regions with equal ids in the two views of an image are positives, and ids may repeat
(DetCon samples its ``M`` masks with replacement among the present ones). Every slot enters the
loss, as an anchor and as a negative of every other anchor, so an absent region cannot be handed
over as it is (lightly's own ``pool_masked`` would give it a zero vector to learn from).
:func:`fill_absent` follows DetCon's convention, deterministically: each absent slot takes the
embedding *and id* of a present region of the same view and image (cycling through the present
ones), i.e. a repeated sample. So an absent region is never a positive (a region missing from
one view has no slot with its id there: as an anchor it gets weight 0), lightly's loss weights
repeated anchors by ``1/copies``, and nothing of the absent slot's content reaches the loss.
The price is DetCon's own: a repeated region counts more than once as a negative of other
images' anchors and as a positive of its own. An image without any present region in a view
gets zero vectors with ids that match nothing (constant negatives).
"""

from __future__ import annotations

from typing import Literal

import torch
from lightly.loss import DetConBLoss, DetConSLoss
from lightly.models.modules.heads import (
    BYOLPredictionHead,
    BYOLProjectionHead,
    SimCLRProjectionHead,
)
from torch import Tensor, nn

from sdrl.models.base import Backbone
from sdrl.ssl.methods.base import (
    PretrainMethod,
    check_choice,
    check_int,
    check_pooling,
    check_real,
    ema_update,
    embedding_std,
    frozen_copy,
    momentum_at,
)
from sdrl.ssl.methods.heads import apply_to_valid
from sdrl.ssl.pooling import PoolingRule, region_pool

__all__ = ["DetConMethod", "DetConVariant", "fill_absent"]

DetConVariant = Literal["s", "b"]
"""``"s"``: DetCon-S (SimCLR-style, contrastive); ``"b"``: DetCon-B (BYOL-style, momentum)."""


def fill_absent(z: Tensor, valid: Tensor, id_offset: int) -> tuple[Tensor, Tensor]:
    """Replace absent region slots by copies of present regions, for lightly's DetCon losses.

    Args:
        z: ``(B, K, E)`` region embeddings; absent slots may hold anything.
        valid: ``(B, K)`` bool presence.
        id_offset: Ids ``id_offset + slot`` mark the slots of an image without any present
            region; use a different offset >= ``K`` for each view so they never match.

    Returns:
        ``(B, K, E)`` filled embeddings and ``(B, K)`` int64 region ids: present slot ``k``
        keeps its embedding and id ``k``; the ``j``-th absent slot of an image takes the
        embedding and id of its ``(j mod n)``-th present slot (``n`` present regions).
    """
    b, k = valid.shape
    slots = torch.arange(k, device=valid.device).expand(b, k)
    absent = ~valid
    count = valid.sum(dim=1, keepdim=True)
    present_first = torch.argsort(absent.int(), dim=1, stable=True)  # present slots, in order
    rank = (torch.cumsum(absent.int(), dim=1) - 1).clamp_min(0)
    source = torch.where(valid, slots, present_first.gather(1, rank % count.clamp_min(1)))
    empty = count == 0  # (B, 1)
    filled = z.gather(1, source.unsqueeze(-1).expand(-1, -1, z.shape[-1]))
    filled = torch.where(empty.unsqueeze(-1), 0.0, filled)
    return filled, torch.where(empty, slots + id_offset, source)


class DetConMethod(PretrainMethod):
    """DetCon-S / DetCon-B on mask-pooled C5 features, with lightly's heads and losses.

    Both views go through the backbone in one call; regions are pooled at C5 with
    :func:`~sdrl.ssl.pooling.region_pool` and projected by a head that sees present regions only
    (:func:`~sdrl.ssl.methods.heads.apply_to_valid`); absent regions are filled as described in
    the module docstring. DetCon-B adds a BYOL prediction head and a momentum target branch
    (backbone + projection).

    Args:
        backbone: The encoder.
        num_classes: ``K``.
        variant: ``"s"`` (default) or ``"b"``.
        rule: Region pooling rule (:data:`~sdrl.ssl.pooling.PoolingRule`).
        min_fraction: Threshold of the ``"min_fraction"`` rule.
        min_area: C5 cells a region needs to be present.
        hidden_dim: Hidden width of the projection head (DetCon's 4096).
        output_dim: ``E`` (DetCon's 256).
        predictor_hidden_dim: Hidden width of DetCon-B's prediction head.
        temperature: Temperature of the DetCon loss (DetCon's 0.1).
        momentum: DetCon-B's start momentum, raised to 1 by a cosine (0.996).
        gather_distributed: Gather the regions of all processes as negatives under DDP.

    Raises:
        ValueError: An option is out of range.
    """

    name = "detcon"
    needs_masks = True

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        variant: DetConVariant = "s",
        rule: PoolingRule = "soft",
        min_fraction: float = 0.5,
        min_area: float = 1.0,
        hidden_dim: int = 4096,
        output_dim: int = 256,
        predictor_hidden_dim: int = 4096,
        temperature: float = 0.1,
        momentum: float = 0.996,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone, num_classes)
        check_choice("variant", variant, DetConVariant)
        check_pooling(rule, min_fraction, min_area)
        check_int("hidden_dim", hidden_dim)
        check_int("output_dim", output_dim)
        check_int("predictor_hidden_dim", predictor_hidden_dim)
        check_real("temperature", temperature, 0.0, low_open=True)
        check_real("momentum", momentum, 0.0, 1.0)
        self.variant = variant
        self.rule: PoolingRule = rule
        self.min_fraction = min_fraction
        self.min_area = min_area
        self.momentum = momentum
        feature_dim = backbone.channels[-1]
        self.predictor: nn.Module | None = None
        self.target_backbone: Backbone | None = None
        self.target_projection: nn.Module | None = None
        self.criterion: DetConSLoss | DetConBLoss
        if variant == "s":
            self.projection: nn.Module = SimCLRProjectionHead(feature_dim, hidden_dim, output_dim)
            self.criterion = DetConSLoss(temperature, gather_distributed)
        else:
            self.projection = BYOLProjectionHead(feature_dim, hidden_dim, output_dim)
            self.predictor = BYOLPredictionHead(output_dim, predictor_hidden_dim, output_dim)
            self.target_backbone = frozen_copy(backbone)
            self.target_projection = frozen_copy(self.projection)
            self.criterion = DetConBLoss(temperature, gather_distributed)

    def _pool(self, backbone: Backbone, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, K, D)`` C5 region embeddings and ``(N, K)`` presence."""
        return region_pool(
            backbone(images)[-1],
            masks,
            self.num_classes,
            rule=self.rule,
            min_fraction=self.min_fraction,
            min_area=self.min_area,
        )

    def region_loss(
        self, p: tuple[Tensor, Tensor], t: tuple[Tensor, Tensor], valid: tuple[Tensor, Tensor]
    ) -> Tensor:
        """The DetCon loss (lightly's) on region embeddings with absent slots filled.

        Args:
            p: Online ``(B, K, E)`` embeddings of views 1 and 2 (projections for DetCon-S,
                predictions for DetCon-B).
            t: Target ``(B, K, E)`` embeddings of views 1 and 2 (DetCon-B; ignored by DetCon-S).
            valid: ``(B, K)`` presence in views 1 and 2.

        Returns:
            The scalar loss; absent slots' contents have no effect on it.
        """
        k = valid[0].shape[1]
        p1, ids1 = fill_absent(p[0], valid[0], k)
        p2, ids2 = fill_absent(p[1], valid[1], 2 * k)
        if isinstance(self.criterion, DetConSLoss):
            return self.criterion(p1, p2, ids1, ids2)
        t1, _ = fill_absent(t[0], valid[0], k)
        t2, _ = fill_absent(t[1], valid[1], 2 * k)
        return self.criterion(p1, p2, t1, t2, ids1, ids2)

    def forward(
        self,
        view1: Tensor,
        view2: Tensor,
        mask1: Tensor | None = None,
        mask2: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """DetCon loss of both views' regions (see :meth:`PretrainMethod.forward`).

        Returns:
            ``loss``, ``embedding_std`` (projections of present regions, both views),
            ``num_anchors`` (regions present in both views), ``num_regions`` (present regions,
            both views), ``skipped`` (1.0 when no region is present in both views: the loss is
            then an exact 0).
        """
        self.check_views(view1, view2)
        mask1, mask2 = self.require_masks(view1, mask1, mask2)
        b = view1.shape[0]
        images, masks = torch.cat([view1, view2]), torch.cat([mask1, mask2])
        pooled, valid = self._pool(self.backbone, images, masks)
        z = apply_to_valid(self.projection, pooled, valid)
        v1, v2 = valid.split(b)
        if self.predictor is None:
            z1, z2 = z.split(b)
            loss = self.region_loss((z1, z2), (z1, z2), (v1, v2))
        else:
            p1, p2 = apply_to_valid(self.predictor, z, valid).split(b)
            assert self.target_backbone is not None and self.target_projection is not None
            with torch.no_grad():
                t_pooled, _ = self._pool(self.target_backbone, images, masks)
                t1, t2 = apply_to_valid(self.target_projection, t_pooled, valid).split(b)
            loss = self.region_loss((p1, p2), (t1, t2), (v1, v2))
        anchors = (v1 & v2).sum().float()
        return {
            "loss": loss,
            "embedding_std": embedding_std(z[valid]),
            "num_anchors": anchors,
            "num_regions": valid.sum().float(),
            "skipped": (anchors == 0).float(),
        }

    def momentum_update(self, progress: float) -> None:
        """DetCon-B: EMA of backbone and projection into the target; DetCon-S: no-op."""
        if self.target_backbone is None or self.target_projection is None:
            return
        ema_update(
            [(self.backbone, self.target_backbone), (self.projection, self.target_projection)],
            momentum_at(progress, self.momentum),
        )

    def region_embeddings(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Pre-head C5 region embeddings with this method's pooling rule, for the probe.

        Args:
            images: ``(B, C, H, W)`` float images.
            masks: ``(B, H, W)`` integer class ids or ``IGNORE_INDEX``.

        Returns:
            ``(B, K, D)`` region means and ``(B, K)`` bool presence.
        """
        self.check_views(images)
        return self._pool(self.backbone, images, masks)
