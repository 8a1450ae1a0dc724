"""The two augmented views of a pretraining batch, built on the device.

Shape letters as in :mod:`sdrl.data.samples`: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns.

By default view 1 comes from date A and view 2 from date B of the same place: the two dates
differ by season, illumination and real change, and the objective learns what stays. Each view
gets its own geometry and photometry (:class:`~sdrl.data.augment.BitemporalAugment` called once
per view on ``{"image_a", "mask_a"}``), and its own mask warped with it. A single-date dataset
(or ``kind="single"``) takes two augmentations of date A.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn

from sdrl.data.augment import BitemporalAugment

__all__ = ["ViewMaker", "Views"]


@dataclass
class Views:
    """Two views of a batch.

    Attributes:
        view1: ``(B, C, H, W)`` float.
        view2: ``(B, C, H, W)`` float, its own geometry.
        mask1: ``(B, H, W)`` int64 class ids of view 1 (ignore outside the image).
        mask2: ``(B, H, W)`` int64 class ids of view 2.
    """

    view1: Tensor
    view2: Tensor
    mask1: Tensor
    mask2: Tensor


class ViewMaker(nn.Module):
    """Make the two views of a batch.

    Args:
        augment: The augmentation applied to each view on its own.
        kind: ``dates`` (view 1 from A, view 2 from B) or ``single`` (two views of A).
        bitemporal: Whether the batches have a B date of their own; a single-date dataset
            (``image_b`` is a copy of ``image_a``) always gives two views of A.

    Random draws come from the global torch generator: seed it for reproducible views.
    """

    def __init__(
        self,
        augment: BitemporalAugment,
        kind: Literal["dates", "single"] = "dates",
        bitemporal: bool = True,
    ) -> None:
        super().__init__()
        if kind not in ("dates", "single"):
            raise ValueError(f"kind must be 'dates' or 'single', found {kind!r}")
        self.augment = augment
        self.kind = kind
        self.two_dates = kind == "dates" and bitemporal

    def _one(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out = self.augment({"image_a": image, "mask_a": mask})
        return out["image_a"], out["mask_a"]

    def forward(self, batch: dict[str, Any]) -> Views:
        """Views of a batch.

        Args:
            batch: ``image_a``, ``mask_a`` and, for two dates, ``image_b``, ``mask_b``
                (see :mod:`sdrl.data.samples`).

        Returns:
            The two :class:`Views`.
        """
        image_a, mask_a = batch["image_a"], batch["mask_a"]
        view1, mask1 = self._one(image_a, mask_a)
        if self.two_dates:
            view2, mask2 = self._one(batch["image_b"], batch["mask_b"])
        else:
            view2, mask2 = self._one(image_a, mask_a)
        return Views(view1, view2, mask1, mask2)
