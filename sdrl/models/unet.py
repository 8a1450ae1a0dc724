"""Early-fusion U-Net baseline: both dates stacked as channels, a plain U-Net.

Shape letters: ``B`` batch, ``C`` bands per date, ``H``/``W`` rows/columns (multiples of
``2**depth``), ``K`` output channels, ``w_l = base_width * 2**l`` channels at level ``l``.

Daudt et al.'s FC-EF idea in its plainest form, which recent comparisons found hard to beat:
``[a, b]`` (``2C`` bands) → double 3x3 conv-BN-ReLU → ``depth`` times (2x2 max-pool, double
conv, width doubled) → ``depth`` times (2x2 transposed conv, concatenation with the skip of
the same resolution, double conv) → 1x1 classifier, at full resolution.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from sdrl.models.change import ChangeModel, check_pair, conv_bn_relu

__all__ = ["EarlyFusionUNet"]

MAX_DEPTH = 6


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU blocks, ``(B, in, h, w) -> (B, out, h, w)``."""
    return nn.Sequential(
        conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels)
    )


class UNetEncoder(nn.Module):
    """The contracting path: returns the ``depth + 1`` levels, full resolution first.

    Args:
        in_channels: Input channels (``2C`` for early fusion).
        widths: Channels ``w_0..w_depth`` of the levels.
    """

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        self.stem = double_conv(in_channels, widths[0])
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(w_in, w_out))
            for w_in, w_out in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """Levels ``(B, w_l, H / 2**l, W / 2**l)`` for ``l = 0..depth``."""
        levels = [self.stem(x)]
        for down in self.downs:
            levels.append(down(levels[-1]))
        return levels


class UpBlock(nn.Module):
    """2x2 transposed convolution, concatenation with the skip, double convolution.

    Args:
        in_channels: Channels ``w_{l+1}`` of the coarser input.
        out_channels: Channels ``w_l`` of the skip and of the output.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = double_conv(2 * out_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """``(B, w_{l+1}, h, w)`` and skip ``(B, w_l, 2h, 2w)`` to ``(B, w_l, 2h, 2w)``."""
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class EarlyFusionUNet(ChangeModel):
    """U-Net on the two dates stacked as channels (module doc).

    Args:
        in_channels_per_date: Bands ``C`` of each date; the network sees ``2C``.
        out_channels: ``K`` = 2 for cross-entropy (default) or 1 for one binary logit.
        base_width: Channels ``w_0`` of the full-resolution level.
        depth: Number of 2x downsamplings (1 to 6); ``H`` and ``W`` must be multiples of
            ``2**depth``.

    Attributes:
        encoder: The contracting path (:class:`UNetEncoder`); it is trained from scratch,
            pretrained backbone weights do not fit it.
        decoder: The expanding path, one :class:`UpBlock` per level, coarsest first.
        classifier: The final 1x1 convolution to ``K`` channels.
    """

    encoder: UNetEncoder

    def __init__(
        self,
        in_channels_per_date: int,
        *,
        out_channels: int = 2,
        base_width: int = 32,
        depth: int = 4,
    ) -> None:
        super().__init__(out_channels)
        for name, value, low, high in (
            ("in_channels_per_date", in_channels_per_date, 1, None),
            ("base_width", base_width, 1, None),
            ("depth", depth, 1, MAX_DEPTH),
        ):
            bad = isinstance(value, bool) or not isinstance(value, int) or value < low
            if bad or (high is not None and value > high):
                limit = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise ValueError(f"{name} must be an integer {limit}, got {value!r}")
        self.in_channels = in_channels_per_date
        self.depth = depth
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.encoder = UNetEncoder(2 * in_channels_per_date, widths)
        self.decoder = nn.ModuleList(
            UpBlock(w_in, w_out) for w_in, w_out in zip(widths[:0:-1], widths[-2::-1], strict=True)
        )
        self.classifier = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, image_a: Tensor, image_b: Tensor) -> Tensor:
        """Change logits of a pair of dates.

        Args:
            image_a: Date 1, ``(B, C, H, W)`` with ``H`` and ``W`` multiples of ``2**depth``.
            image_b: Date 2 on the same grid, ``(B, C, H, W)``.

        Returns:
            Logits ``(B, K, H, W)``.
        """
        check_pair(image_a, image_b)
        _, bands, height, width = image_a.shape
        if bands != self.in_channels:
            raise ValueError(
                f"the U-Net was built for {self.in_channels} bands per date, got {bands}"
            )
        factor = 2**self.depth
        if height % factor or width % factor:
            raise ValueError(
                f"the U-Net of depth {self.depth} needs H and W that are multiples of {factor}, "
                f"got {height}x{width}; crop or pad the input"
            )
        levels = self.encoder(torch.cat([image_a, image_b], dim=1))
        x = levels[-1]
        for block, skip in zip(self.decoder, levels[-2::-1], strict=True):
            x = block(x, skip)
        return self.classifier(x)
