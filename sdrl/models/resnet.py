"""ResNet backbones with torchvision's module names and any number of input bands.

The layers are torchvision's own blocks (:class:`~torchvision.models.resnet.BasicBlock`,
:class:`~torchvision.models.resnet.Bottleneck`), assembled as in
:class:`torchvision.models.ResNet` but with configurable stage widths, so that a torchvision
state dict loads 1:1 into ``resnet18`` / ``resnet50`` and a tiny variant runs in tests.

Shape letters: ``B`` batch, ``C`` input bands, ``H``/``W`` input rows/columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from sdrl.models.base import Backbone

__all__ = ["ResNetBackbone", "resnet18", "resnet50", "resnet_tiny"]

_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNetBackbone(Backbone):
    """A ResNet without its classification head, returning C2..C5.

    Module names equal torchvision's (``conv1``, ``bn1``, ``layer1``..``layer4``); the missing
    head is ``fc``. With ``widths=(64, 128, 256, 512)`` the parameters are exactly those of
    :class:`torchvision.models.ResNet` with the same block and layers, initialised the same way.

    Args:
        name: Registry name reported by the backbone.
        in_channels: Input bands ``C`` (any positive number).
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50 and deeper).
        layers: Blocks in each of the four stages.
        widths: Planes of the four stages; the stem has ``widths[0]`` channels and stage ``i``
            outputs ``widths[i] * expansion`` channels (expansion 1 for basic, 4 for bottleneck).
        zero_init_residual: Zero the last BatchNorm of every residual branch, as torchvision's
            option of the same name.
    """

    def __init__(
        self,
        name: str,
        in_channels: int,
        *,
        block: Literal["basic", "bottleneck"] = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        zero_init_residual: bool = False,
    ) -> None:
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {block!r}")
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, got {tuple(layers)}")
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be four positive channel counts, got {tuple(widths)}")
        block_type = _BLOCKS[block]
        super().__init__(name, in_channels, [int(w) * block_type.expansion for w in widths])
        self.first_conv = "conv1.weight"
        self.head_prefix = "fc."
        self._inplanes = int(widths[0])
        self.conv1 = nn.Conv2d(
            in_channels, self._inplanes, kernel_size=7, stride=2, padding=3, bias=False
        )
        self.bn1 = nn.BatchNorm2d(self._inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block_type, int(widths[0]), int(layers[0]), stride=1)
        self.layer2 = self._make_layer(block_type, int(widths[1]), int(layers[1]), stride=2)
        self.layer3 = self._make_layer(block_type, int(widths[2]), int(layers[2]), stride=2)
        self.layer4 = self._make_layer(block_type, int(widths[3]), int(layers[3]), stride=2)
        self._init_weights(zero_init_residual)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        """One stage, exactly as ``torchvision.models.ResNet._make_layer`` without dilation."""
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self._inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        stage: list[nn.Module] = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        stage += [block(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """Initialise as torchvision does: Kaiming (fan-out) convs, BatchNorm at 1 and 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Encode a batch.

        Args:
            x: Input ``(B, C, H, W)``, ``H`` and ``W`` multiples of 32.

        Returns:
            ``[C2, C3, C4, C5]``, level ``i`` of shape ``(B, channels[i], H / s, W / s)`` for
            ``s`` = 4, 8, 16, 32.
        """
        self.check_input(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


def resnet18(in_channels: int, *, zero_init_residual: bool = False) -> ResNetBackbone:
    """The ResNet-18 of torchvision (BasicBlock, [2, 2, 2, 2]); channels 64, 128, 256, 512."""
    return ResNetBackbone(
        "resnet18",
        in_channels,
        block="basic",
        layers=(2, 2, 2, 2),
        zero_init_residual=zero_init_residual,
    )


def resnet50(in_channels: int, *, zero_init_residual: bool = False) -> ResNetBackbone:
    """The ResNet-50 of torchvision (Bottleneck, [3, 4, 6, 3]); channels 256, 512, 1024, 2048."""
    return ResNetBackbone(
        "resnet50",
        in_channels,
        block="bottleneck",
        layers=(3, 4, 6, 3),
        zero_init_residual=zero_init_residual,
    )


def resnet_tiny(
    in_channels: int,
    *,
    block: Literal["basic", "bottleneck"] = "basic",
    layers: Sequence[int] = (1, 1, 1, 1),
    widths: Sequence[int] = (8, 16, 32, 64),
    zero_init_residual: bool = False,
) -> ResNetBackbone:
    """A small ResNet for tests: by default BasicBlock, [1, 1, 1, 1], channels 8, 16, 32, 64."""
    return ResNetBackbone(
        "resnet_tiny",
        in_channels,
        block=block,
        layers=layers,
        widths=widths,
        zero_init_residual=zero_init_residual,
    )
