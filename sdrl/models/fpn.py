"""Feature pyramid neck over the four backbone levels.

Shape letters: ``B`` batch, ``H``/``W`` input rows/columns, ``D_i`` backbone channels of level
``i``, ``D`` the neck's channels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork

__all__ = ["FPN"]


class FPN(nn.Module):
    """torchvision's :class:`~torchvision.ops.FeaturePyramidNetwork` on a list of levels.

    Turns the backbone's ``[C2, C3, C4, C5]`` into ``[P2, P3, P4, P5]`` at the same strides
    (4, 8, 16, 32), each with ``out_channels`` channels: a 1x1 lateral convolution per level,
    top-down nearest upsampling and addition, then a 3x3 convolution.

    Args:
        in_channels: Channels ``D_i`` of the input levels, e.g. ``backbone.channels``.
        out_channels: Channels ``D`` of every output level.

    Attributes:
        in_channels: As given.
        channels: ``[out_channels] * len(in_channels)``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        if not in_channels or any(int(c) < 1 for c in in_channels):
            raise ValueError(f"in_channels must be positive channel counts, got {in_channels}")
        if out_channels < 1:
            raise ValueError(f"out_channels must be positive, got {out_channels}")
        self.in_channels = [int(c) for c in in_channels]
        self.channels = [out_channels] * len(self.in_channels)
        self.fpn = FeaturePyramidNetwork(self.in_channels, out_channels)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Build the pyramid.

        Args:
            features: Levels ``(B, D_i, H / s_i, W / s_i)``, finest first.

        Returns:
            Levels ``(B, D, H / s_i, W / s_i)``, finest first.
        """
        found = [int(f.shape[1]) for f in features]
        if found != self.in_channels:
            raise ValueError(f"FPN was built for level channels {self.in_channels}, got {found}")
        named = OrderedDict((str(i), f) for i, f in enumerate(features))
        return list(self.fpn(named).values())
