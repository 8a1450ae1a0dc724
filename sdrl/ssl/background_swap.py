"""Background swap: a third view with view 1's foreground on another image's background.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns.

Each receiver image keeps its foreground pixels exactly; its background is replaced by the
background of a donor image of the same batch (a permutation without fixed points), whose bands
are first shifted and scaled so that the donor's background has the receiver's background mean
and standard deviation per band (the swap then changes content, not radiometry). The seam is
feathered with a gaussian-blurred alpha that only extends *outwards* from the foreground, so
every foreground pixel stays the receiver's. Like SaDL's ``merge_bg_ref_mask``, donor pixels are
pasted only where the donor itself is valid background: the donor's own foreground objects and
padding are never pasted (the receiver's pixels stay there).

The swapped view's mask keeps the receiver's foreground class ids and marks everything else
:data:`~sdrl.data.samples.IGNORE_INDEX`: its background belongs to another place, so it must not
be pooled into a region that could be matched with the receiver's background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from kornia.filters import gaussian_blur2d
from torch import Tensor

from sdrl.data.samples import IGNORE_INDEX

__all__ = ["SwappedView", "background_swap", "derangement", "match_colour"]


class SwappedView(NamedTuple):
    """Result of :func:`background_swap`."""

    images: Tensor
    """``(B, C, H, W)`` the swapped view."""
    masks: Tensor
    """``(B, H, W)`` int64: receiver's foreground ids, ignore elsewhere."""
    donors: Tensor
    """``(B,)`` int64: the batch index whose background each sample received."""


def derangement(n: int, generator: torch.Generator | None = None) -> Tensor:
    """A random permutation of ``range(n)`` without fixed points (identity for ``n == 1``).

    Draws a random order and maps each element to the next one in it (one ``n``-cycle).

    Returns:
        ``(n,)`` int64 on the CPU.
    """
    order = torch.randperm(n, generator=generator)
    donors = torch.empty_like(order)
    donors[order] = order.roll(-1)
    return donors


def _band_stats(x: Tensor, region: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-band mean and std of ``x`` ``(B, C, H, W)`` over ``region`` ``(B, H, W)`` bool."""
    w = region.unsqueeze(1).to(x.dtype)
    n = w.sum(dim=(2, 3), keepdim=True)
    mean = (x * w).sum(dim=(2, 3), keepdim=True) / n.clamp_min(1)
    var = ((x - mean).square() * w).sum(dim=(2, 3), keepdim=True) / n.clamp_min(1)
    return mean, var.sqrt(), n > 1


def match_colour(source: Tensor, source_region: Tensor, ref: Tensor, ref_region: Tensor) -> Tensor:
    """Shift and scale each band of ``source`` so its ``source_region`` statistics match ``ref``'s.

    Args:
        source: ``(B, C, H, W)`` images to adjust.
        source_region: ``(B, H, W)`` bool pixels of ``source`` whose statistics are matched.
        ref: ``(B, C, H, W)`` reference images.
        ref_region: ``(B, H, W)`` bool pixels of ``ref`` giving the target statistics.

    Returns:
        ``(B, C, H, W)``: ``(source - mean_s) / std_s · std_r + mean_r`` per sample and band;
        a sample whose regions hold fewer than two pixels is returned unchanged, and a flat
        source band is only shifted.
    """
    mean_s, std_s, ok_s = _band_stats(source, source_region)
    mean_r, std_r, ok_r = _band_stats(ref, ref_region)
    gain = torch.where(std_s > 1e-6, std_r / std_s.clamp_min(1e-6), 1.0)
    matched = (source - mean_s) * gain + mean_r
    return torch.where(ok_s & ok_r, matched, source)


def _feather(hard: Tensor, sigma: float) -> Tensor:
    """``(B, H, W)`` alpha in ``[0, 1]``: 1 on ``hard``, a gaussian fall-off outside it."""
    alpha = hard.float()
    if sigma > 0:
        size = 2 * math.ceil(3 * sigma) + 1
        blurred = gaussian_blur2d(alpha.unsqueeze(1), (size, size), (sigma, sigma))
        alpha = torch.maximum(alpha, blurred.squeeze(1))
    return alpha


def background_swap(
    images: Tensor,
    masks: Tensor,
    foreground_ids: Sequence[int],
    *,
    feather_sigma: float = 2.0,
    colour_match: bool = True,
    generator: torch.Generator | None = None,
) -> SwappedView:
    """Swap each image's background with another image's of the batch.

    Args:
        images: ``(B, C, H, W)`` float images (normalised bands, any ``C``).
        masks: ``(B, H, W)`` integer class ids or :data:`~sdrl.data.samples.IGNORE_INDEX`.
        foreground_ids: Class ids that are foreground (kept); every other valid id is
            background (replaced).
        feather_sigma: Standard deviation, in pixels, of the gaussian that softens the seam
            outwards from the foreground (and around the donor's non-background); 0 pastes hard.
        colour_match: Match the donor's background band statistics to the receiver's.
        generator: Random generator for the donor permutation (CPU), for reproducibility.

    Returns:
        A :class:`SwappedView` ``(images, masks, donors)``. With ``B == 1`` there is no other
        image: the image is returned unchanged (with the swapped mask).

    Raises:
        ValueError: Shapes do not match or ``foreground_ids`` is empty.
    """
    if images.dim() != 4 or masks.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(
            f"images must be (B, C, H, W) and masks (B, H, W) on the same grid, found "
            f"{tuple(images.shape)} and {tuple(masks.shape)}"
        )
    if not foreground_ids:
        raise ValueError("foreground_ids must name at least one class id")
    if feather_sigma < 0:
        raise ValueError(f"feather_sigma must be >= 0 pixels, found {feather_sigma}")
    ids = torch.as_tensor(list(foreground_ids), dtype=masks.dtype, device=masks.device)
    foreground = torch.isin(masks, ids)
    background = ~foreground & (masks != IGNORE_INDEX)
    donors = derangement(images.shape[0], generator).to(images.device)
    donor_images = images[donors]
    donor_background = background[donors]
    if colour_match:
        donor_images = match_colour(donor_images, donor_background, images, background)
    keep = _feather(foreground, feather_sigma)  # receiver pixels that must stay
    blocked = _feather(~donor_background, feather_sigma)  # donor pixels that must not come
    paste = ((1 - keep) * (1 - blocked)).unsqueeze(1).to(images.dtype)
    # Written as a convex sum, so that paste 0 keeps the receiver's pixels and paste 1 gives the
    # donor's exactly (lerp's a + t·(b - a) can be off by a rounding step at t = 1).
    swapped = images * (1 - paste) + donor_images * paste
    swapped_masks = torch.where(foreground, masks, IGNORE_INDEX).long()
    if images.shape[0] == 1:
        swapped = images.clone()
    return SwappedView(swapped, swapped_masks, donors)
