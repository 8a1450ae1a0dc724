"""Region pooling: one embedding per semantic region of a feature map.

Shape letters: ``B`` batch, ``D`` feature channels, ``h``/``w`` feature rows/columns,
``H``/``W`` mask rows/columns (``H = s_h·h``, ``W = s_w·w`` for the feature strides
``s_h``, ``s_w``), ``K`` semantic classes (regions), ``N = h·w`` feature cells.

The mask is brought to the feature grid by area: for each cell and class, the fraction of the
cell's ``s_h·s_w`` pixels that carry the class (ignore pixels carry none). A *rule* turns the
fractions into pooling weights, and each region's embedding is the weighted mean of the cell
features, computed as one batched matrix product ``(B, K, N) @ (B, N, D)``. A region whose total
weight is below ``min_area`` cells is *absent*: its row is zero and ``valid`` is ``False``, and
losses must skip it (it is not a zero embedding to learn from).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from sdrl.data.samples import IGNORE_INDEX

__all__ = ["PoolingRule", "cell_fractions", "region_pool"]

PoolingRule = Literal["soft", "majority", "min_fraction"]
"""How class fractions of a feature cell become pooling weights (see :func:`region_pool`)."""


def cell_fractions(mask: Tensor, num_classes: int, size: tuple[int, int]) -> Tensor:
    """Fraction of each feature cell covered by each class.

    Args:
        mask: ``(B, H, W)`` integer class ids in ``[0, K)`` or
            :data:`~sdrl.data.samples.IGNORE_INDEX`.
        num_classes: ``K``.
        size: Feature grid ``(h, w)``; ``H`` and ``W`` must be integer multiples of it.

    Returns:
        ``(B, K, h, w)`` float32 fractions in ``[0, 1]``; over ``K`` they sum to one minus the
        cell's ignore fraction.

    Raises:
        ValueError: The mask is not ``(B, H, W)`` integer, its size is not a multiple of
            ``size``, or it holds a value outside ``[0, K)`` other than the ignore index.
    """
    if mask.dim() != 3 or mask.dtype.is_floating_point or mask.dtype == torch.bool:
        raise ValueError(
            f"mask must be a (B, H, W) integer tensor, found {tuple(mask.shape)} {mask.dtype}"
        )
    if not 1 <= num_classes <= IGNORE_INDEX:
        raise ValueError(f"num_classes must lie in [1, {IGNORE_INDEX}], found {num_classes}")
    b, height, width = mask.shape
    h, w = size
    if h < 1 or w < 1 or height % h or width % w:
        raise ValueError(
            f"mask size ({height}, {width}) must be an integer multiple of the feature size "
            f"({h}, {w}); crop or pad the tiles to a multiple of the backbone's stride"
        )
    sh, sw = height // h, width // w
    # Compare with every class id and the ignore index: a boolean one-hot (1 byte per pixel
    # and value, never float) counted per cell. Pixels matching none of them are bad labels.
    values = torch.arange(num_classes + 1, device=mask.device, dtype=mask.dtype)
    values[-1] = IGNORE_INDEX
    cells = mask.reshape(b, 1, h, sh, w, sw)
    counts = (cells == values.view(1, -1, 1, 1, 1, 1)).sum(dim=(3, 5), dtype=torch.int32)
    if bool((counts.sum(dim=1) != sh * sw).any()):
        bad = (mask < 0) | ((mask >= num_classes) & (mask != IGNORE_INDEX))
        found = torch.unique(mask[bad])[:8].tolist()
        raise ValueError(
            f"mask holds class ids {found} outside [0, {num_classes}) and not the ignore index "
            f"{IGNORE_INDEX}; raise num_classes or remap the labels"
        )
    return counts[:, :num_classes].float() / float(sh * sw)


def _weights(fractions: Tensor, rule: PoolingRule, min_fraction: float) -> Tensor:
    """Pooling weights ``(B, K, h, w)`` from class fractions by ``rule``."""
    if rule == "soft":
        return fractions
    if rule == "min_fraction":
        return (fractions >= min_fraction).to(fractions.dtype)
    # Majority: the ignore fraction competes as an extra last class, so a cell that is mostly
    # ignore is dropped; ties go to the lowest class id (argmax returns the first maximum).
    ignore = (1.0 - fractions.sum(dim=1, keepdim=True)).clamp_min(0.0)
    winner = torch.cat([fractions, ignore], dim=1).argmax(dim=1, keepdim=True)
    classes = torch.arange(fractions.shape[1], device=fractions.device).view(1, -1, 1, 1)
    return (winner == classes).to(fractions.dtype)


def region_pool(
    features: Tensor,
    mask: Tensor,
    num_classes: int,
    *,
    rule: PoolingRule = "soft",
    min_fraction: float = 0.5,
    min_area: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Mask-average pooling of a feature map into one embedding per semantic region.

    Rules for the weight of a feature cell in region ``k`` (``f`` = the fraction of the cell's
    pixels of class ``k``; ignore pixels belong to no class):

    - ``"soft"`` (default): ``f``. The result is exactly the mean, over the region's pixels, of
      the feature map upsampled to the mask by nearest neighbour, so no region loses pixels to
      the coarse grid (at stride 32 a small field still pools its few cells, weighted by how
      much of each it covers); this is DetCon's area-weighted pooling.
    - ``"majority"``: 1 for the class with the largest fraction, 0 elsewhere; the ignore
      fraction competes too (a cell that is mostly ignore is dropped); ties go to the lowest id.
      Regions then pool disjoint cells.
    - ``"min_fraction"``: 1 where ``f >= min_fraction``, else 0; with ``min_fraction <= 0.5`` a
      boundary cell may count for two regions.

    Args:
        features: ``(B, D, h, w)`` feature map (any float dtype; the result has the same).
        mask: ``(B, H, W)`` integer class ids in ``[0, K)`` or
            :data:`~sdrl.data.samples.IGNORE_INDEX`, on the same device; ``H``/``W`` are
            integer multiples of ``h``/``w`` (1 for a full-resolution feature map).
        num_classes: ``K``, the number of semantic classes.
        rule: How fractions become weights, see above.
        min_fraction: Threshold of the ``"min_fraction"`` rule, in ``(0, 1]``.
        min_area: A region is present (valid) when its total weight is at least this many
            feature cells; the default 1.0 asks for one cell's worth of pixels (``s_h·s_w``
            pixels under ``"soft"``, one assigned cell under the other rules). Must be > 0.

    Returns:
        ``(embeddings, valid)``: ``(B, K, D)`` region means and ``(B, K)`` bool presence.
        Absent regions have zero rows and receive no gradient.

    Raises:
        ValueError: Shapes, batch sizes or arguments do not match (see :func:`cell_fractions`).
    """
    if rule not in get_args(PoolingRule):
        raise ValueError(f"rule must be one of {get_args(PoolingRule)}, found {rule!r}")
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"min_fraction must lie in (0, 1], found {min_fraction}")
    if not min_area > 0.0:
        raise ValueError(f"min_area must be > 0 feature cells, found {min_area}")
    if features.dim() != 4 or not features.dtype.is_floating_point:
        raise ValueError(
            f"features must be a (B, D, h, w) float tensor, found "
            f"{tuple(features.shape)} {features.dtype}"
        )
    if mask.shape[:1] != features.shape[:1]:
        raise ValueError(
            f"features and mask must have the same batch size, found {features.shape[0]} "
            f"and {mask.shape[0] if mask.dim() else 'a scalar'}"
        )
    b, d, h, w = features.shape
    fractions = cell_fractions(mask, num_classes, (h, w))
    weights = _weights(fractions, rule, min_fraction).reshape(b, num_classes, h * w)
    area = weights.sum(dim=-1)  # (B, K), in cells
    valid = area >= min_area * (1 - 1e-6)
    weights = weights / area.clamp_min(1e-12).unsqueeze(-1)
    weights = torch.where(valid.unsqueeze(-1), weights, 0.0).to(features.dtype)
    embeddings = torch.bmm(weights, features.reshape(b, d, h * w).transpose(1, 2))
    return embeddings, valid
