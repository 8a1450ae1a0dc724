"""The semantic-decoupled (sdrl) pretraining method: region pooling → head → SDRL loss.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` image rows/columns, ``K`` semantic classes
(regions), ``D`` pooled feature dim, ``E`` projection dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from lightly.models.modules.heads import BYOLPredictionHead
from torch import Tensor, nn

from sdrl.models.base import Backbone
from sdrl.models.fpn import FPN
from sdrl.ssl.background_swap import background_swap
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
from sdrl.ssl.methods.heads import HeadKind, apply_to_valid, projection_head
from sdrl.ssl.pooling import PoolingRule, region_pool
from sdrl.ssl.region_terms import DecoupleMode
from sdrl.ssl.sdrl_loss import AnchorRegions, LossForm, SDRLLoss

__all__ = ["Level", "SDRLMethod", "TargetKind"]

Level = Literal["p2", "c5"]
"""Pooled feature level: FPN P2 (stride 4) or the backbone's C5 (stride 32, no neck)."""

TargetKind = Literal["momentum", "stopgrad"]
"""Target of the predictor form: a BYOL momentum branch, or SimSiam's stop-gradient online z."""


def _p2_neck(in_channels: Sequence[int], out_channels: int) -> FPN:
    """An FPN whose P3–P5 output convolutions are dropped: only P2 is pooled.

    P2 still depends on every lateral convolution (top-down path), so every remaining parameter
    receives a gradient and DDP needs no ``find_unused_parameters``.
    """
    neck = FPN(in_channels, out_channels)
    for i in range(1, len(neck.fpn.layer_blocks)):
        neck.fpn.layer_blocks[i] = nn.Identity()
    return neck


class SDRLMethod(PretrainMethod):
    """Semantic-decoupled region contrast (:class:`~sdrl.ssl.sdrl_loss.SDRLLoss`) around a backbone.

    Both views (and the background-swapped view when ``swap_weight > 0``) go through the
    backbone in one call; features of the chosen ``level`` are mask-average pooled per semantic
    class (:func:`~sdrl.ssl.pooling.region_pool`), projected by a head that sees the present
    regions only (:func:`~sdrl.ssl.methods.heads.apply_to_valid`), and scored by the loss.

    **Predictor form** (``form="predictor"``): a BYOL prediction head maps the online
    projections to ``p``; the loss pulls ``p`` of each region to the other view's target ``z``
    under stop-gradient. With ``target="momentum"`` (default) the targets come from a momentum
    copy of backbone, neck and projection head (BYOL; lightly's ``update_momentum``, cosine
    schedule from ``momentum`` to 1 over training); with ``target="stopgrad"`` they are the
    online projections themselves, detached (SimSiam, no extra branch). The decoupling term acts
    on ``p``; the swap term pulls the swapped view's ``p`` to view 1's target.

    **Bad batches**: views with NaN/inf raise a ValueError; a batch without any region present
    in both views returns an exact 0 loss with ``skipped`` = 1 (from the loss); masks with one
    class only give a decoupling term of 0 (no region pairs).

    Args:
        backbone: The encoder.
        num_classes: ``K``.
        level: ``"p2"`` (default; FPN over C2..C5, P2 at stride 4) or ``"c5"`` (no neck).
        fpn_channels: Channels of the FPN (the pooled ``D`` at ``"p2"``).
        rule: Region pooling rule (:data:`~sdrl.ssl.pooling.PoolingRule`).
        min_fraction: Threshold of the ``"min_fraction"`` rule.
        min_area: Cells a region needs to be present.
        head: Projection head kind (:data:`~sdrl.ssl.methods.heads.HeadKind`).
        hidden_dim: Hidden width of the projection head (DetCon's 4096).
        output_dim: ``E`` (DetCon's 256).
        form: ``"contrastive"`` (default, region InfoNCE) or ``"predictor"``.
        temperature: InfoNCE temperature (contrastive form).
        decouple: Decoupling variant (``"cos"``, ``"hinge"``, ``"orthogonal"``).
        decouple_weight: λ.
        margin: Hinge margin.
        swap_weight: μ; > 0 adds the background-swapped third view.
        foreground_ids: Foreground class ids (needed by the swap and ``anchors="foreground"``).
        anchors: Cross-view anchors: ``"all"`` regions or ``"foreground"`` only.
        feather_sigma: Seam softening of the background swap, in pixels.
        colour_match: Match the donor background's band statistics in the swap.
        target: ``"momentum"`` or ``"stopgrad"`` (predictor form only).
        predictor_hidden_dim: Hidden width of the predictor (predictor form only).
        momentum: Start momentum of the target branch (BYOL's 0.996).
        gather_distributed: Gather negatives and counts across processes under DDP.

    Raises:
        ValueError: An option is out of range or inconsistent.
    """

    name = "sdrl"
    needs_masks = True

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        level: Level = "p2",
        fpn_channels: int = 256,
        rule: PoolingRule = "soft",
        min_fraction: float = 0.5,
        min_area: float = 1.0,
        head: HeadKind = "simclr",
        hidden_dim: int = 4096,
        output_dim: int = 256,
        form: LossForm = "contrastive",
        temperature: float = 0.1,
        decouple: DecoupleMode = "cos",
        decouple_weight: float = 1.0,
        margin: float = 0.0,
        swap_weight: float = 0.0,
        foreground_ids: Sequence[int] | None = None,
        anchors: AnchorRegions = "all",
        feather_sigma: float = 2.0,
        colour_match: bool = True,
        target: TargetKind = "momentum",
        predictor_hidden_dim: int = 4096,
        momentum: float = 0.996,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone, num_classes)
        check_choice("level", level, Level)
        check_choice("head", head, HeadKind)
        check_choice("target", target, TargetKind)
        for option, value in (
            ("fpn_channels", fpn_channels),
            ("hidden_dim", hidden_dim),
            ("output_dim", output_dim),
            ("predictor_hidden_dim", predictor_hidden_dim),
        ):
            check_int(option, value)
        check_pooling(rule, min_fraction, min_area)
        check_real("temperature", temperature, 0.0, low_open=True)
        check_real("decouple_weight", decouple_weight, 0.0)
        check_real("swap_weight", swap_weight, 0.0)
        check_real("margin", margin, -1.0, 1.0)
        check_real("momentum", momentum, 0.0, 1.0)
        check_real("feather_sigma", feather_sigma, 0.0)
        if foreground_ids is not None and any(int(i) >= num_classes for i in foreground_ids):
            raise ValueError(
                f"foreground_ids {list(foreground_ids)} must be class ids < num_classes "
                f"({num_classes})"
            )
        self.criterion = SDRLLoss(
            form=form,
            temperature=temperature,
            decouple=decouple,
            decouple_weight=decouple_weight,
            margin=margin,
            swap_weight=swap_weight,
            foreground_ids=foreground_ids,
            anchors=anchors,
            gather_distributed=gather_distributed,
        )
        self.level = level
        self.rule: PoolingRule = rule
        self.min_fraction = min_fraction
        self.min_area = min_area
        self.feather_sigma = feather_sigma
        self.colour_match = bool(colour_match)
        self.form = form
        self.target = target
        self.momentum = momentum
        self.neck = _p2_neck(backbone.channels, fpn_channels) if level == "p2" else None
        pooled_dim = fpn_channels if level == "p2" else backbone.channels[-1]
        self.projection = projection_head(head, pooled_dim, hidden_dim, output_dim)
        self.predictor: nn.Module | None = None
        self.target_backbone: Backbone | None = None
        self.target_neck: FPN | None = None
        self.target_projection: nn.Module | None = None
        if form == "predictor":
            self.predictor = BYOLPredictionHead(output_dim, predictor_hidden_dim, output_dim)
            if target == "momentum":
                self.target_backbone = frozen_copy(backbone)
                self.target_neck = frozen_copy(self.neck) if self.neck is not None else None
                self.target_projection = frozen_copy(self.projection)

    def _pool(
        self, backbone: Backbone, neck: FPN | None, images: Tensor, masks: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Region embeddings ``(N, K, D)`` and presence ``(N, K)`` of ``(N, C, H, W)`` images."""
        features = backbone(images)
        level = neck(features)[0] if neck is not None else features[-1]
        return region_pool(
            level,
            masks,
            self.num_classes,
            rule=self.rule,
            min_fraction=self.min_fraction,
            min_area=self.min_area,
        )

    def forward(
        self,
        view1: Tensor,
        view2: Tensor,
        mask1: Tensor | None = None,
        mask2: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Pool, project and score both views (see :meth:`PretrainMethod.forward`).

        Returns:
            ``loss``, ``embedding_std`` and the detached terms of
            :meth:`~sdrl.ssl.sdrl_loss.SDRLLoss.forward`: ``contrast``, ``decouple``,
            ``swap``, ``num_anchors``, ``num_regions``, ``skipped``.
        """
        self.check_views(view1, view2)
        mask1, mask2 = self.require_masks(view1, mask1, mask2)
        b = view1.shape[0]
        images, masks = [view1, view2], [mask1, mask2]
        if self.criterion.swap_weight > 0:
            assert self.criterion.foreground_ids is not None
            swapped = background_swap(
                view1,
                mask1,
                self.criterion.foreground_ids,
                feather_sigma=self.feather_sigma,
                colour_match=self.colour_match,
            )
            images.append(swapped.images)
            masks.append(swapped.masks.to(mask1.dtype))
        pooled, valid = self._pool(self.backbone, self.neck, torch.cat(images), torch.cat(masks))
        z = apply_to_valid(self.projection, pooled, valid)
        zs, vs = z.split(b), valid.split(b)
        online, targets = zs, zs[:2]
        extra: dict[str, Tensor] = {}
        if self.predictor is not None:
            online = apply_to_valid(self.predictor, z, valid).split(b)
            if self.target_backbone is not None:  # BYOL; else SimSiam: the loss detaches z
                both = self._momentum_targets(torch.cat(images[:2]), torch.cat(masks[:2]))
                targets = both.split(b)
            extra = {"p1": online[0], "p2": online[1]}
        if len(online) == 3:
            extra.update(z_swap=online[2], valid_swap=vs[2])
        terms = self.criterion(targets[0], targets[1], vs[0], vs[1], **extra)
        terms["embedding_std"] = embedding_std(z[: 2 * b][valid[: 2 * b]])
        return terms

    def _momentum_targets(self, images: Tensor, masks: Tensor) -> Tensor:
        """``(N, K, E)`` projections of the momentum branch, without gradient."""
        assert self.target_backbone is not None and self.target_projection is not None
        with torch.no_grad():
            pooled, valid = self._pool(self.target_backbone, self.target_neck, images, masks)
            return apply_to_valid(self.target_projection, pooled, valid)

    def momentum_update(self, progress: float) -> None:
        """EMA of backbone, neck and projection into the target branch (momentum target only).

        Args:
            progress: Training progress in ``[0, 1]``; the momentum follows a cosine from
                ``momentum`` at 0 to 1 at 1.
        """
        if self.target_backbone is None or self.target_projection is None:
            return
        pairs: list[tuple[nn.Module, nn.Module]] = [
            (self.backbone, self.target_backbone),
            (self.projection, self.target_projection),
        ]
        if self.neck is not None and self.target_neck is not None:
            pairs.append((self.neck, self.target_neck))
        ema_update(pairs, momentum_at(progress, self.momentum))

    def region_embeddings(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Pre-head region embeddings at the pooled level (P2 or C5), for the probe.

        Args:
            images: ``(B, C, H, W)`` float images.
            masks: ``(B, H, W)`` integer class ids or ``IGNORE_INDEX``.

        Returns:
            ``(B, K, D)`` region means and ``(B, K)`` bool presence.
        """
        self.check_views(images)
        return self._pool(self.backbone, self.neck, images, masks)
