"""In-domain supervised pretraining: semantic segmentation of the pretraining masks.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` image rows/columns, ``K`` semantic classes,
``D`` feature channels of the chosen level, ``h``/``w`` its rows/columns.

The papers' "in-domain supervised" row (SaDL, SDRL): the same backbone and pretraining data as
the self-supervised methods, trained to predict the semantic masks instead of contrasting their
regions. It is the reference a mask-driven self-supervised objective has to beat, since it uses
the very same labels directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdrl.data.samples import IGNORE_INDEX
from sdrl.models.base import Backbone
from sdrl.models.fpn import FPN
from sdrl.ssl.methods.base import PretrainMethod, check_choice, check_int, embedding_std
from sdrl.ssl.methods.sdrl import Level, _p2_neck
from sdrl.ssl.pooling import region_pool

__all__ = ["SupervisedMethod"]


class SupervisedMethod(PretrainMethod):
    """Semantic-segmentation pretraining on the masks of both views.

    Both views go through the backbone in one call; the features of ``level`` (the sdrl
    method's P2 neck, or C5 without neck) go through a 1×1 convolution to ``K`` class logits,
    which are bilinearly upsampled to the mask size and scored by cross-entropy against each
    view's own (augmented) mask. The loss is the mean over the labelled pixels of both views;
    :data:`~sdrl.data.samples.IGNORE_INDEX` pixels (unlabelled, or outside the image after
    augmentation) are left out. Neck and classifier are discarded at export: the backbone alone
    is the pretrained encoder.

    **Bad batches**: views with NaN/inf or masks with class ids outside ``[0, K)`` raise a
    ValueError; a batch without any labelled pixel returns an exact 0 loss with zero gradients
    and ``skipped`` = 1.

    Args:
        backbone: The encoder.
        num_classes: ``K``, the classes of the masks (the classifier's outputs).
        level: ``"p2"`` (default; FPN over C2..C5, P2 at stride 4) or ``"c5"`` (no neck,
            stride 32).
        fpn_channels: Channels of the FPN (``D`` at ``"p2"``).

    Raises:
        ValueError: An option is out of range.
    """

    name = "supervised"
    needs_masks = True
    skip_reason = "no pixel of either view is labelled"

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        level: Level = "p2",
        fpn_channels: int = 256,
    ) -> None:
        super().__init__(backbone, num_classes)
        check_choice("level", level, Level)
        check_int("fpn_channels", fpn_channels)
        self.level = level
        self.neck: FPN | None = _p2_neck(backbone.channels, fpn_channels) if level == "p2" else None
        feature_dim = fpn_channels if level == "p2" else backbone.channels[-1]
        self.classifier = nn.Conv2d(feature_dim, num_classes, kernel_size=1)

    def features(self, images: Tensor) -> Tensor:
        """``(B, D, h, w)`` features of the chosen level (P2 or C5) of ``(B, C, H, W)`` images."""
        levels = self.backbone(images)
        return self.neck(levels)[0] if self.neck is not None else levels[-1]

    def logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits upsampled to the images' size, and the features they come from.

        Args:
            images: ``(B, C, H, W)`` float images.

        Returns:
            ``(B, K, H, W)`` logits and the ``(B, D, h, w)`` features.
        """
        features = self.features(images)
        logits = F.interpolate(
            self.classifier(features), size=images.shape[-2:], mode="bilinear", align_corners=False
        )
        return logits, features

    def _check_ids(self, masks: Tensor) -> None:
        bad = ((masks < 0) | (masks >= self.num_classes)) & (masks != IGNORE_INDEX)
        if bool(bad.any()):
            found = sorted({int(v) for v in masks[bad].unique()[:8]})
            raise ValueError(
                f"masks must hold class ids in [0, {self.num_classes}) or {IGNORE_INDEX} "
                f"(ignore); found {found}: check the class names of dataset.json against label/"
            )

    def forward(
        self,
        view1: Tensor,
        view2: Tensor,
        mask1: Tensor | None = None,
        mask2: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Cross-entropy of both views' masks (see :meth:`PretrainMethod.forward`).

        Returns:
            ``loss`` (mean cross-entropy over the labelled pixels of both views),
            ``embedding_std`` (of the level's feature cells, both views), ``pixel_acc``
            (accuracy on the labelled pixels), ``labelled`` (their share of all pixels) and
            ``skipped`` (1.0 when no pixel is labelled: the loss is then an exact 0).
        """
        self.check_views(view1, view2)
        mask1, mask2 = self.require_masks(view1, mask1, mask2)
        masks = torch.cat([mask1, mask2]).long()
        self._check_ids(masks)
        logits, features = self.logits(torch.cat([view1, view2]))
        labelled = masks != IGNORE_INDEX
        count = labelled.sum()
        total = F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX, reduction="sum")
        loss = total / count.clamp_min(1)
        with torch.no_grad():
            hits = (logits.argmax(dim=1) == masks) & labelled
            pixel_acc = hits.sum().float() / count.clamp_min(1)
        return {
            "loss": loss,
            "embedding_std": embedding_std(features.detach().permute(0, 2, 3, 1).flatten(0, 2)),
            "pixel_acc": pixel_acc,
            "labelled": count.float() / masks.numel(),
            "skipped": (count == 0).float(),
        }

    def region_embeddings(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Region means of the level's features (P2 or C5, ``"soft"`` rule), for the probe.

        Args:
            images: ``(B, C, H, W)`` float images.
            masks: ``(B, H, W)`` integer class ids or ``IGNORE_INDEX``.

        Returns:
            ``(B, K, D)`` region means and ``(B, K)`` bool presence.
        """
        self.check_views(images)
        return region_pool(self.features(images), masks, self.num_classes)
