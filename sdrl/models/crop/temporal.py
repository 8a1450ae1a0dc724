"""The Sentinel-2 temporal stream: torchvision's video Swin, time folded into channels, U-Net.

Shape letters: ``B`` batch, ``T`` frames (months), ``C`` bands, ``H``/``W`` rows/columns of the
S2 grid, ``T'`` temporal tokens (``ceil(T / 2)``: the patch is 2 frames and patch merging keeps
time), ``D_s`` channels of stage ``s`` (``embed_dim * 2**s``), ``F`` decoder channels.

:class:`TemporalEncoder` is :class:`~torchvision.models.video.swin_transformer.SwinTransformer3d`
without its classifier and pooling, under torchvision's module names (``patch_embed``,
``features``, ``norm``): the tensors of an ``sdrl export --temporal`` (``swin3d_t`` names, head
excluded) are exactly its state dict. It returns the four stage outputs; the last goes through
the model's own ``norm``, the others through a LayerNorm without scale and shift (as
:class:`~sdrl.models.swin.SwinBackbone` does in 2D).

:class:`TemporalDecoder` folds each stage's time into its channels,
``(B, D_s, T', h, w) -> (B, D_s * T', h, w)``, reduces them with a 1x1 conv-BN-ReLU and runs a
U-Net from stride 32 to 4 (bilinear x2, concatenation with the next stage, two 3x3 convs; as
H2Crop's neck), then upsamples bilinearly x4 to the S2 grid.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.video.swin_transformer import SwinTransformer3d

from sdrl.models.change import conv_bn_relu

__all__ = ["PATCH", "STRIDE", "TemporalDecoder", "TemporalEncoder", "temporal_tokens"]

PATCH = (2, 4, 4)
"""Patch of the video Swin: frames, rows, columns."""
STRIDE = 32
"""Spatial stride of the last stage: S2 tiles are padded to a multiple of it."""


def temporal_tokens(frames: int) -> int:
    """Temporal tokens ``T'`` of every stage for a clip of ``frames`` frames."""
    return -(-frames // PATCH[0])


class TemporalEncoder(nn.Module):
    """torchvision's video Swin as a four-stage feature extractor (module doc).

    Args:
        in_channels: Bands ``C`` of each frame.
        embed_dim: Channels ``D_0`` of the first stage.
        depths: Blocks of the four stages.
        num_heads: Attention heads of the four stages.
        window: Attention window ``(frames, rows, columns)`` in tokens.
        drop_path: Stochastic depth of the last block (linearly increasing from 0).

    Attributes:
        channels: ``D_s`` of the four stages.
        config: The architecture as an export's ``meta.json`` describes a video Swin
            (``family``, ``patch_size``, ``embed_dim``, ``depths``, ``num_heads``,
            ``window_size``).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        embed_dim: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        window: Sequence[int],
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4 or len(window) != 3:
            raise ValueError(
                f"a video Swin needs four depths and heads and a 3D window, got {tuple(depths)}, "
                f"{tuple(num_heads)}, {tuple(window)}"
            )
        swin = SwinTransformer3d(
            patch_size=list(PATCH),
            embed_dim=embed_dim,
            depths=[int(d) for d in depths],
            num_heads=[int(h) for h in num_heads],
            window_size=[int(w) for w in window],
            stochastic_depth_prob=drop_path,
        )
        swin.patch_embed.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=PATCH, stride=PATCH)
        self.in_channels = in_channels
        self.patch_embed = swin.patch_embed
        self.pos_drop = swin.pos_drop
        self.features = swin.features
        self.norm = swin.norm
        self.channels = [embed_dim * 2**i for i in range(4)]
        self.config: dict[str, Any] = {
            "family": "swin",
            "patch_size": list(PATCH),
            "embed_dim": int(embed_dim),
            "depths": [int(d) for d in depths],
            "num_heads": [int(h) for h in num_heads],
            "window_size": [int(w) for w in window],
        }

    def forward(self, x: Tensor) -> list[Tensor]:
        """Encode a clip.

        Args:
            x: ``(B, C, T, H, W)`` (torchvision's video layout), ``H``, ``W`` multiples of 32.

        Returns:
            Four stages ``(B, D_s, T', H / 2**(s + 2), W / 2**(s + 2))``, channels first.
        """
        x = self.pos_drop(self.patch_embed(x))  # (B, T', h, w, D_0) channels-last
        stages: list[Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index % 2 == 0:  # a stage; odd indices are patch merging
                last = index == len(self.features) - 1
                y = self.norm(x) if last else F.layer_norm(x, x.shape[-1:])
                stages.append(y.permute(0, 4, 1, 2, 3))
        return stages


def _fold(x: Tensor) -> Tensor:
    """``(B, D, T', h, w) -> (B, D * T', h, w)``: time folded into channels."""
    batch, dim, frames, height, width = x.shape
    return x.reshape(batch, dim * frames, height, width)


class TemporalDecoder(nn.Module):
    """Time folded into channels, then a U-Net from stride 32 to the S2 grid (module doc).

    Args:
        channels: ``D_s`` of the four encoder stages, finest first.
        frames: Temporal tokens ``T'`` of every stage.
        widths: Decoder channels at strides 32, 16, 8, 4 (``F`` is the last).

    Attributes:
        out_channels: ``F``.
    """

    def __init__(self, channels: Sequence[int], frames: int, widths: Sequence[int]) -> None:
        super().__init__()
        if len(channels) != 4 or len(widths) != 4:
            raise ValueError(f"four stages and four widths, got {channels} and {widths}")
        coarse_first = list(reversed(channels))
        self.reduce = nn.ModuleList(
            conv_bn_relu(dim * frames, width, kernel_size=1)
            for dim, width in zip(coarse_first, widths, strict=True)
        )
        self.up = nn.ModuleList(
            nn.Sequential(conv_bn_relu(w_in + w_out, w_in), conv_bn_relu(w_in, w_out))
            for w_in, w_out in itertools.pairwise(widths)
        )
        self.out = conv_bn_relu(widths[-1], widths[-1])
        self.out_channels = int(widths[-1])

    def forward(self, stages: Sequence[Tensor]) -> Tensor:
        """Decode the stages to the input grid.

        Args:
            stages: ``(B, D_s, T', h_s, w_s)`` of the four stages, finest first (strides 4..32).

        Returns:
            ``(B, F, 4 h_0, 4 w_0)``.
        """
        folded = [reduce(_fold(x)) for reduce, x in zip(self.reduce, reversed(stages), strict=True)]
        x = folded[0]
        for block, skip in zip(self.up, folded[1:], strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        x = self.out(x)
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
