"""Batch-level augmentation of crop batches: random dihedral transforms and aligned crops.

Shape letters: ``B`` batch, ``T`` months, ``C`` Sentinel-2 bands, ``E`` EnMAP bands, ``L``
taxonomy levels, ``H``/``W`` rows/columns at 10 m (EnMAP: ``H/3``, ``W/3``).

Every transform is a permutation of pixels (``torch.flip``/``torch.rot90``) or a slice, so
images are not resampled and labels stay exact; the same draw is applied to ``s2``, ``enmap``,
``label`` and ``prior`` of a sample. kornia is not used here: its flips and rotations go
through a resampling warp, which is slower and, for labels, only nearest-exact; these
transforms need none. Samples that drew the same transform are processed together (at most 16
groups per batch), on whatever device the batch is on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["IMAGE_KEYS", "LABEL_KEYS", "CropAugment"]

IMAGE_KEYS = ("s2", "enmap")
"""Image tensors of a crop batch: ``s2`` ``(B, T, C, H, W)``, ``enmap`` ``(B, E, H/3, W/3)``."""
LABEL_KEYS = ("label", "prior")
"""Label tensors of a crop batch: ``(B, L, H, W)``."""


class CropAugment(nn.Module):
    """Random flips, 90° rotations and an optional aligned crop, shared by all parts.

    Args:
        flips: Draw a horizontal and a vertical flip per sample, each with probability 1/2.
        rotations: Draw a rotation by ``k × 90°`` per sample, ``k`` uniform in 0..3 (0 or 2 for
            non-square tiles, which keep their shape). With ``flips`` the eight dihedral
            transforms are equally likely.
        crop_size: Side ``S`` of a random square crop per sample, ``None`` for none. With an
            ``enmap`` tensor in the batch, ``S`` must be a multiple of 3 and crops start on
            multiples of 3 pixels, so the EnMAP crop (side ``S/3``) covers the same ground.
    """

    def __init__(
        self, flips: bool = True, rotations: bool = True, crop_size: int | None = None
    ) -> None:
        super().__init__()
        if crop_size is not None and crop_size < 1:
            raise ValueError(f"crop_size must be a positive number of pixels, got {crop_size}")
        self.flips = flips
        self.rotations = rotations
        self.crop_size = crop_size

    def forward(
        self, batch: dict[str, Any], generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        """Augment a batch.

        Args:
            batch: ``s2`` ``(B, T, C, H, W)``, optionally ``enmap`` ``(B, E, H/3, W/3)``,
                ``label`` and ``prior`` ``(B, L, H, W)``; other entries pass unchanged.
            generator: Source of the random draws (its device); the global CPU generator when
                ``None``.

        Returns:
            A new dict with the transformed tensors (``H = W = S`` after a crop); the input
            tensors are not modified.
        """
        out = dict(batch)
        size = self._check(out)
        if self.crop_size is not None:
            self._crop(out, size, generator)
        square = out["s2"].shape[-1] == out["s2"].shape[-2]
        count = out["s2"].shape[0]
        flips = _draw(2, (2, count), generator) if self.flips else torch.zeros(2, count)
        turns = _draw(4 if square else 2, (count,), generator) if self.rotations else None
        codes = flips[0].long() * 8 + flips[1].long() * 4
        if turns is not None:
            codes += turns.long() * (1 if square else 2)
        keys = [k for k in (*IMAGE_KEYS, *LABEL_KEYS) if isinstance(out.get(k), Tensor)]
        groups = {int(c): (codes == c).nonzero().flatten() for c in codes.unique().tolist()}
        if set(groups) == {0}:
            return out
        for key in keys:
            source = out[key]
            result = source.clone() if 0 in groups else torch.empty_like(source)
            for code, members in groups.items():
                if code:
                    index = members.to(source.device)
                    result[index] = _dihedral(source[index], code)
            out[key] = result
        return out

    def _check(self, batch: dict[str, Any]) -> tuple[int, int]:
        """``(H, W)`` of the batch, after checking that the parts agree."""
        if not isinstance(batch.get("s2"), Tensor) or batch["s2"].dim() != 5:
            raise ValueError("CropAugment needs batch['s2'] of shape (B, T, C, H, W)")
        b, _, _, h, w = batch["s2"].shape
        for key in LABEL_KEYS:
            value = batch.get(key)
            if isinstance(value, Tensor) and (
                value.dim() != 4 or value.shape[0] != b or value.shape[-2:] != (h, w)
            ):
                raise ValueError(
                    f"batch[{key!r}] must be ({b}, L, {h}, {w}), got {tuple(value.shape)}"
                )
        enmap = batch.get("enmap")
        if isinstance(enmap, Tensor):
            expected = (b, h // 3, w // 3)
            if (
                h % 3
                or w % 3
                or enmap.dim() != 4
                or (enmap.shape[0], *enmap.shape[-2:]) != expected
            ):
                raise ValueError(
                    f"batch['enmap'] must be ({b}, E, {h // 3}, {w // 3}) for s2 of {h}x{w} "
                    f"pixels (a multiple of 3), got {tuple(enmap.shape)}"
                )
            if self.crop_size is not None and self.crop_size % 3:
                raise ValueError(
                    f"crop_size must be a multiple of 3 with EnMAP data, got {self.crop_size}"
                )
        if self.crop_size is not None and self.crop_size > min(h, w):
            raise ValueError(f"crop_size {self.crop_size} is larger than the {h}x{w} tiles")
        return h, w

    def _crop(
        self, batch: dict[str, Any], size: tuple[int, int], generator: torch.Generator | None
    ) -> None:
        """Replace every part by its per-sample random crop (in ``batch``)."""
        assert self.crop_size is not None
        side = self.crop_size
        step = 3 if isinstance(batch.get("enmap"), Tensor) else 1
        count = batch["s2"].shape[0]
        rows = _draw((size[0] - side) // step + 1, (count,), generator) * step
        cols = _draw((size[1] - side) // step + 1, (count,), generator) * step
        starts = list(zip(rows.tolist(), cols.tolist(), strict=True))
        for key in (*IMAGE_KEYS, *LABEL_KEYS):
            value = batch.get(key)
            if not isinstance(value, Tensor):
                continue
            scale = 3 if key == "enmap" else 1
            n = side // scale
            batch[key] = torch.stack(
                [
                    value[i, ..., r // scale : r // scale + n, c // scale : c // scale + n]
                    for i, (r, c) in enumerate(starts)
                ]
            )


def _draw(high: int, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """Integers uniform in ``0..high-1`` on the CPU, drawn on the generator's device."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, high, shape, generator=generator, device=device).cpu()


def _dihedral(x: Tensor, code: int) -> Tensor:
    """Apply transform ``code`` (bit 3: flip W, bit 2: flip H, bits 0-1: quarter turns)."""
    dims = [d for bit, d in ((8, -1), (4, -2)) if code & bit]
    if dims:
        x = torch.flip(x, dims)
    turns = code & 3
    return torch.rot90(x, turns, (-2, -1)) if turns else x
