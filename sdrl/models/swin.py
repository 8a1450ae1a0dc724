"""Swin Transformer backbones with torchvision's module names and any number of input bands.

The model is :class:`torchvision.models.SwinTransformer` without its classification head:
``features`` (patch embedding, then stages interleaved with patch merging) and the final
``norm``, so that a torchvision Swin state dict loads 1:1.

Shape letters: ``B`` batch, ``C`` input bands, ``H``/``W`` input rows/columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import SwinTransformer

from sdrl.models.base import Backbone

__all__ = ["SwinBackbone", "swin_t", "swin_tiny_test"]

_STAGES = (1, 3, 5, 7)
"""Indices of the four stages in ``features`` (0 is the patch embedding, 2/4/6 patch merging)."""


class SwinBackbone(Backbone):
    """A Swin Transformer (v1) without its classification head, returning C2..C5.

    Stage outputs are channels-last inside the model; they are returned channels-first. C5 goes
    through the model's own final ``norm`` (as in torchvision's classifier); C2..C4 through a
    LayerNorm without learned scale and shift, so that every level has a comparable range
    while the state dict keeps exactly torchvision's keys. torchvision pads each window
    internally, so feature maps smaller than, or not a multiple of, the window are fine.

    Args:
        name: Registry name reported by the backbone.
        in_channels: Input bands ``C`` (any positive number).
        embed_dim: Channels of the first stage; stage ``i`` has ``embed_dim * 2**i``.
        depths: Transformer blocks in each of the four stages.
        num_heads: Attention heads in each stage; each stage's channels must divide evenly.
        window_size: Side of the square attention window, in tokens.
        drop_path: Stochastic-depth probability of the last block (linearly increasing from 0).
    """

    def __init__(
        self,
        name: str,
        in_channels: int,
        *,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        drop_path: float = 0.2,
    ) -> None:
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        if len(depths) != 4 or any(int(d) < 1 for d in depths):
            raise ValueError(f"depths must be four positive block counts, got {tuple(depths)}")
        if len(num_heads) != 4 or any(int(h) < 1 for h in num_heads):
            raise ValueError(f"num_heads must be four positive counts, got {tuple(num_heads)}")
        channels = [embed_dim * 2**i for i in range(4)]
        for dim, heads in zip(channels, num_heads, strict=True):
            if dim % int(heads):
                raise ValueError(f"{dim} channels cannot be split into {heads} heads")
        if window_size < 1:
            raise ValueError(f"window_size must be positive, got {window_size}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        super().__init__(name, in_channels, channels)
        self.first_conv = "features.0.0.weight"
        self.head_prefix = "head."
        model = SwinTransformer(
            patch_size=[4, 4],
            embed_dim=embed_dim,
            depths=[int(d) for d in depths],
            num_heads=[int(h) for h in num_heads],
            window_size=[window_size, window_size],
            stochastic_depth_prob=drop_path,
        )
        if in_channels != 3:
            model.features[0][0] = nn.Conv2d(in_channels, embed_dim, kernel_size=4, stride=4)
        self.features = model.features
        self.norm = model.norm

    def forward(self, x: Tensor) -> list[Tensor]:
        """Encode a batch.

        Args:
            x: Input ``(B, C, H, W)``, ``H`` and ``W`` multiples of 32.

        Returns:
            ``[C2, C3, C4, C5]``, level ``i`` of shape ``(B, channels[i], H / s, W / s)`` for
            ``s`` = 4, 8, 16, 32 (contiguous, channels-first).
        """
        self.check_input(x)
        levels: list[Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)  # (B, h, w, D) channels-last from the patch embedding on
            if index in _STAGES:
                y = self.norm(x) if index == _STAGES[-1] else F.layer_norm(x, x.shape[-1:])
                levels.append(y.permute(0, 3, 1, 2).contiguous())
        return levels


def swin_t(in_channels: int, *, drop_path: float = 0.2) -> SwinBackbone:
    """The Swin-T of torchvision: embed_dim 96, depths [2, 2, 6, 2], heads [3, 6, 12, 24]."""
    return SwinBackbone("swin_t", in_channels, drop_path=drop_path)


def swin_tiny_test(
    in_channels: int,
    *,
    embed_dim: int = 24,
    depths: Sequence[int] = (1, 1, 1, 1),
    num_heads: Sequence[int] = (1, 1, 2, 2),
    window_size: int = 4,
    drop_path: float = 0.0,
) -> SwinBackbone:
    """A small Swin for tests: embed_dim 24, depths [1, 1, 1, 1], heads [1, 1, 2, 2], window 4."""
    return SwinBackbone(
        "swin_tiny_test",
        in_channels,
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=window_size,
        drop_path=drop_path,
    )
