"""From per-level logits to class ids: independent or taxonomy-consistent decoding.

Shape letters: ``B`` batch, ``L`` taxonomy levels, ``N_l = K_l + 1`` classes of level ``l``
(0 = background), ``H``/``W`` rows/columns, ``P`` valid paths through the taxonomy (one per
leaf, each ``L`` ids from the root level down).

Independent decoding takes each level's argmax and can produce ids that no path of the tree
holds (a level-2 class under the wrong level-1 parent). Consistent decoding picks, per pixel,
the path ``p`` maximising ``sum_l log softmax(logits_l)[p_l]`` over the valid paths and the
all-background path ``0, ..., 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["decode_consistent", "decode_independent", "valid_path_share", "with_background"]

PATH_CHUNK = 16
"""Paths scored at once by :func:`decode_consistent`: ``B * PATH_CHUNK * H * W`` floats."""


def decode_independent(logits: Sequence[Tensor]) -> Tensor:
    """Per-level argmax.

    Args:
        logits: ``L`` tensors ``(B, N_l, H, W)``.

    Returns:
        ``(B, L, H, W)`` int64 ids.
    """
    return torch.stack([level.argmax(dim=1) for level in logits], dim=1)


def with_background(paths: Tensor, levels: int) -> Tensor:
    """``paths`` ``(P, L)`` with the all-background row ``0, ..., 0`` appended if absent.

    Raises:
        ValueError: If ``paths`` is not ``(P, L)`` integer ids ``>= 0``.
    """
    if paths.ndim != 2 or paths.shape[1] != levels or paths.is_floating_point():
        raise ValueError(f"paths must be (P, L={levels}) integer ids, got {tuple(paths.shape)}")
    if paths.numel() and int(paths.min()) < 0:
        raise ValueError("paths must hold ids >= 0")
    paths = paths.long()
    if not bool((paths == 0).all(dim=1).any()):
        paths = torch.cat([paths, paths.new_zeros(1, levels)])
    return paths


def decode_consistent(logits: Sequence[Tensor], paths: Tensor) -> Tensor:
    """Per pixel the valid path with the largest summed log-probability (module doc).

    The paths are scored :data:`PATH_CHUNK` at a time against a running best, so memory is
    the log-probabilities plus ``B * PATH_CHUNK * H * W`` floats, whatever ``P``. Ties go to
    the path listed first (the all-background path, when appended, comes last).

    Args:
        logits: ``L`` tensors ``(B, N_l, H, W)``.
        paths: ``(P, L)`` integer ids, one row per leaf of the taxonomy.

    Returns:
        ``(B, L, H, W)`` int64 ids, every pixel a row of ``paths`` or all background.

    Raises:
        ValueError: If ``paths`` does not fit the levels or holds an id beyond a level's classes.
    """
    levels = len(logits)
    paths = with_background(paths, levels).to(logits[0].device)
    for level, level_logits in enumerate(logits):
        if int(paths[:, level].max()) >= level_logits.shape[1]:
            raise ValueError(
                f"paths hold id {int(paths[:, level].max())} at level {level}, which has "
                f"{level_logits.shape[1]} classes"
            )
    logp = [torch.log_softmax(level.float(), dim=1) for level in logits]
    batch, _, height, width = logp[0].shape
    best = logp[0].new_full((batch, height, width), float("-inf"))
    index = torch.zeros(batch, height, width, dtype=torch.long, device=best.device)
    for start in range(0, paths.shape[0], PATH_CHUNK):
        chunk = paths[start : start + PATH_CHUNK]
        score = logp[0].index_select(1, chunk[:, 0])
        for level in range(1, levels):
            score = score + logp[level].index_select(1, chunk[:, level])
        top, arg = score.max(dim=1)
        better = top > best
        best = torch.where(better, top, best)
        index = torch.where(better, arg + start, index)
    return paths[index].permute(0, 3, 1, 2).contiguous()


def valid_path_share(pred: Tensor, paths: Tensor) -> float:
    """Share of pixels whose ids across the levels are a valid path (or all background).

    Args:
        pred: ``(B, L, H, W)`` integer ids.
        paths: ``(P, L)`` integer ids, one row per leaf.

    Returns:
        The share in ``[0, 1]``; ``nan`` for an empty ``pred``.
    """
    if pred.ndim != 4:
        raise ValueError(f"pred must be (B, L, H, W), got {tuple(pred.shape)}")
    levels = pred.shape[1]
    paths = with_background(paths, levels).to(pred.device)
    if pred.numel() == 0:
        return float("nan")
    ids = pred.long().permute(0, 2, 3, 1).reshape(-1, levels)  # (B*H*W, L)
    radix = int(max(int(ids.max()), int(paths.max()))) + 1
    if radix**levels >= 2**62:
        raise ValueError(f"ids up to {radix - 1} over {levels} levels are too many to encode")
    powers = radix ** torch.arange(levels - 1, -1, -1, device=pred.device, dtype=torch.long)
    keys = (ids * powers).sum(dim=1)
    keys = torch.where((ids < 0).any(dim=1), -1, keys)  # negative ids are never valid
    found = torch.isin(keys, (paths * powers).sum(dim=1))
    return float(found.float().mean())
