"""The EnMAP stream: a spectral-spatial transformer (H2Crop's) or an sdrl 2D backbone.

Shape letters: ``B`` batch, ``N`` EnMAP bands (218), ``h``/``w`` rows/columns of the EnMAP grid
(30 m), ``H``/``W`` rows/columns of the S2 grid (10 m; ``H = 3h`` for H2Crop's patches),
``D`` token width, ``E`` the stream's output channels, ``G`` side of the band branch's pooled grid.

:class:`SpectralTransformer` has two branches, each upsampled x3 by a 3x3 conv and a pixel
shuffle (as H2Crop), then fused by convolutions:

* **pixel branch** -- one token per pixel, a 1x1 projection of its spectrum ``N -> D``, then
  Swin blocks (torchvision's 2D ``SwinTransformerBlock``, windows of ``pixel_window`` pixels,
  every second block shifted). H2Crop attends over all ``h * w`` pixels at once (4,096 tokens
  at 64 x 64: an ``heads x 4096 x 4096`` attention map per sample); windowed attention keeps the
  cost linear in the pixels (64 tokens per window at 8 x 8) with the parameters of a ViT block
  plus a small relative-position table; the shifted windows carry context across windows.
* **band branch** -- one token per band: its ``h x w`` map average-pooled to ``G x G``, projected
  ``G**2 -> D``, plus a learned band embedding; a transformer over the ``N`` band tokens; each
  token projected back ``D -> G**2``, resized to ``h x w`` and added to its band of the input, so
  the cube keeps its full spatial detail and the transformer corrects it per band and region;
  then a 3x3 conv over the ``N`` bands (H2Crop projects to a fixed ``h * w`` map instead, which
  ties the model to one patch size).

:class:`BackboneSpectral` runs a registered 2D backbone (``resnet18``, ``swin_t``...) whose first
layer takes the ``N`` bands, an FPN over its four levels, and upsamples the stride-4 level to
the S2 grid.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.swin_transformer import SwinTransformerBlock

from sdrl.models.backbones import build_backbone
from sdrl.models.base import Backbone
from sdrl.models.change import conv_bn_relu
from sdrl.models.fpn import FPN

__all__ = ["UPSCALE", "BackboneSpectral", "SpectralTransformer", "to_grid"]

UPSCALE = 3
"""EnMAP (30 m) to S2 (10 m)."""
_TILE = 32


def to_grid(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B, E, h', w')`` resized bilinearly to ``(B, E, H, W)`` unless it is that size already."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _upsample(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv to ``9 E`` channels and a x3 pixel shuffle: ``(B, D, h, w) -> (B, E, 3h, 3w)``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels * UPSCALE**2, 3, padding=1),
        nn.PixelShuffle(UPSCALE),
    )


class PixelBranch(nn.Module):
    """One token per pixel, windowed self-attention (module doc).

    Args:
        bands: ``N``.
        dim: ``D``.
        depth: Swin blocks.
        heads: Attention heads.
        window: Side of the attention window in pixels.
        out_channels: ``E``.
    """

    def __init__(
        self, bands: int, dim: int, depth: int, heads: int, window: int, out_channels: int
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(bands, dim, kernel_size=1)
        self.blocks = nn.Sequential(
            *(
                SwinTransformerBlock(
                    dim,
                    heads,
                    window_size=[window, window],
                    shift_size=[0, 0] if i % 2 == 0 else [window // 2, window // 2],
                )
                for i in range(depth)
            )
        )
        self.norm = nn.LayerNorm(dim)
        self.up = _upsample(dim, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, h, w) -> (B, E, 3h, 3w)``."""
        tokens = self.embed(x).permute(0, 2, 3, 1)  # (B, h, w, D)
        tokens = self.norm(self.blocks(tokens))
        return self.up(tokens.permute(0, 3, 1, 2))


class BandBranch(nn.Module):
    """One token per band, self-attention across bands (module doc).

    Args:
        bands: ``N``.
        dim: ``D``.
        depth: Transformer layers.
        heads: Attention heads.
        grid: ``G``.
        out_channels: ``E``.
    """

    def __init__(
        self, bands: int, dim: int, depth: int, heads: int, grid: int, out_channels: int
    ) -> None:
        super().__init__()
        self.grid = grid
        self.embed = nn.Linear(grid * grid, dim)
        self.band_embedding = nn.Parameter(torch.zeros(1, bands, dim))
        nn.init.trunc_normal_(self.band_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False
        )
        self.project = nn.Linear(dim, grid * grid)
        self.up = _upsample(bands, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, h, w) -> (B, E, 3h, 3w)``."""
        batch, bands, height, width = x.shape
        pooled = F.adaptive_avg_pool2d(x, self.grid).flatten(2)  # (B, N, G*G)
        tokens = self.encoder(self.embed(pooled) + self.band_embedding)  # (B, N, D)
        maps = self.project(tokens).reshape(batch, bands, self.grid, self.grid)
        return self.up(x + to_grid(maps, (height, width)))


class SpectralTransformer(nn.Module):
    """H2Crop's EnMAP stream: pixel and band branches, x3 upsampling, conv fusion (module doc).

    Args:
        bands: ``N``.
        out_channels: ``E``.
        pixel: Keyword options of :class:`PixelBranch` (``dim``, ``depth``, ``heads``,
            ``window``).
        band: Keyword options of :class:`BandBranch` (``dim``, ``depth``, ``heads``, ``grid``).
    """

    def __init__(
        self, bands: int, out_channels: int, *, pixel: dict[str, int], band: dict[str, int]
    ) -> None:
        super().__init__()
        self.in_channels = bands
        self.out_channels = out_channels
        self.pixel = PixelBranch(bands, out_channels=out_channels, **pixel)
        self.band = BandBranch(bands, out_channels=out_channels, **band)
        self.fuse = nn.Sequential(
            conv_bn_relu(2 * out_channels, out_channels), conv_bn_relu(out_channels, out_channels)
        )

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """Encode an EnMAP cube onto the S2 grid.

        Args:
            x: ``(B, N, h, w)``.
            size: ``(H, W)`` of the S2 grid.

        Returns:
            ``(B, E, H, W)``.
        """
        pixel = to_grid(self.pixel(x), size)
        band = to_grid(self.band(x), size)
        return self.fuse(torch.cat([pixel, band], dim=1))


class BackboneSpectral(nn.Module):
    """An sdrl 2D backbone on the EnMAP bands, an FPN, the stride-4 level on the S2 grid.

    The cube is zero-padded to a multiple of 32 (the backbone's stride) and the padding is
    cropped from the stride-4 map after upsampling it back to the EnMAP grid.

    Args:
        name: A registered backbone (:data:`~sdrl.models.backbones.BACKBONES`).
        bands: ``N``.
        out_channels: ``E``.
        **options: Options of the backbone's builder (e.g. ``drop_path``).
    """

    def __init__(self, name: str, bands: int, out_channels: int, **options: Any) -> None:
        super().__init__()
        self.in_channels = bands
        self.out_channels = out_channels
        self.backbone: Backbone = build_backbone(name, bands, **options)
        self.neck = FPN(self.backbone.channels, out_channels)
        self.out = conv_bn_relu(out_channels, out_channels)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """Encode an EnMAP cube onto the S2 grid.

        Args:
            x: ``(B, N, h, w)``.
            size: ``(H, W)`` of the S2 grid.

        Returns:
            ``(B, E, H, W)``.
        """
        height, width = x.shape[-2:]
        padded = F.pad(x, (0, -width % _TILE, 0, -height % _TILE))
        level = self.neck(self.backbone(padded))[0]  # (B, E, h_pad / 4, w_pad / 4)
        level = F.interpolate(level, scale_factor=4, mode="bilinear", align_corners=False)
        return self.out(to_grid(level[..., :height, :width], size))
