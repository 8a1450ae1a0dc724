"""The backbone contract shared by every architecture of :mod:`sdrl.models`.

Shape letters: ``B`` batch, ``C`` input bands, ``H``/``W`` rows/columns of the input,
``D_i`` channels of feature level ``i``.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["STRIDES", "Backbone"]

STRIDES = (4, 8, 16, 32)
"""Output strides of the four feature levels C2..C5, relative to the input."""


class Backbone(nn.Module):
    """An image encoder returning four feature levels C2..C5 at strides 4, 8, 16 and 32.

    Subclasses keep torchvision's module names, so :meth:`torchvision_state_dict` holds exactly
    the keys of the matching torchvision model minus its classification head
    (:attr:`head_prefix`).

    Attributes:
        name: Registry name of the architecture (``"resnet18"``, ``"swin_t"``...).
        in_channels: Number of input bands ``C``.
        channels: Channels ``D_i`` of the four levels.
        strides: Strides of the four levels, always :data:`STRIDES`.
        first_conv: State-dict key of the first layer's weight ``(D, C, k, k)``, the tensor
            that is adapted when a checkpoint has another band count.
        head_prefix: Key prefix of torchvision's classification head, which a backbone lacks.
    """

    name: str
    in_channels: int
    channels: list[int]
    strides: list[int]
    first_conv: str
    head_prefix: str

    def __init__(self, name: str, in_channels: int, channels: list[int]) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        self.name = name
        self.in_channels = in_channels
        self.channels = list(channels)
        self.strides = list(STRIDES)

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError unless ``x`` is ``(B, C, H, W)`` with ``H`` and ``W`` multiples of 32.

        Args:
            x: Input batch ``(B, C, H, W)``.
        """
        if x.ndim != 4:
            raise ValueError(
                f"{self.name} expects a (B, C, H, W) batch, got shape {tuple(x.shape)}"
            )
        _, bands, height, width = x.shape
        if bands != self.in_channels:
            raise ValueError(
                f"{self.name} was built for {self.in_channels} input bands, got {bands}; "
                f"build it with in_channels={bands} or select the matching bands"
            )
        if height % STRIDES[-1] or width % STRIDES[-1]:
            raise ValueError(
                f"{self.name} needs H and W that are multiples of {STRIDES[-1]}, "
                f"got {height}x{width}; crop or pad the input"
            )

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        """Encode a batch.

        Args:
            x: Input ``(B, C, H, W)`` with ``H`` and ``W`` multiples of 32.

        Returns:
            Four tensors C2..C5, level ``i`` of shape ``(B, D_i, H / s_i, W / s_i)`` with
            ``D_i = channels[i]`` and ``s_i = strides[i]``.
        """
        raise NotImplementedError

    def torchvision_state_dict(self) -> dict[str, Tensor]:
        """The weights under torchvision's names, ready for ``torchvision.models.<name>()``.

        Returns:
            Every parameter and buffer of the backbone (detached, on their device). They load
            into the torchvision model with ``strict=False`` reporting only the head keys
            (:attr:`head_prefix`) as missing, and with ``strict=True`` once the head is
            replaced by ``nn.Identity()``. The first layer has :attr:`in_channels` bands.
        """
        return {key: value.detach() for key, value in self.state_dict().items()}
