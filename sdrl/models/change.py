"""Siamese change-detection network: shared encoder, per-level fusion, FPN decoder.

Shape letters: ``B`` batch, ``C`` input bands, ``H``/``W`` input rows/columns (multiples of 32),
``D_i`` channels of feature level ``i`` (C2..C5 at strides 4, 8, 16, 32), ``D`` decoder
channels, ``K`` output channels (2 for cross-entropy, 1 for a binary logit).

:class:`ChangeNet` encodes both dates with one backbone (one batch ``2B``, so BatchNorm
normalises both dates with the same statistics and a global radiometric shift between the
dates is not normalised away), fuses the two feature maps at each of the four levels and
decodes the fused pyramid into change logits at full resolution:

* ``head="fpn"`` (default, finetuning): fused levels → :class:`~sdrl.models.fpn.FPN`
  (1x1 laterals, top-down upsampling and addition, 3x3 smoothing) → one 3x3 conv-BN-ReLU per
  level, bilinear upsampling to stride 4 and summation (the semantic-FPN head) → 3x3
  conv-BN-ReLU → 1x1 classifier → bilinear upsampling to ``H x W``.
* ``head="linear"`` (linear probe): the encoder is frozen for good and the only trained layer
  is one 1x1 convolution over the hypercolumn of the four fused levels (see
  :class:`LinearProbeHead`); fusion has no parameters there (``|a - b|`` or ``[a, b]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdrl.models.backbones import build_backbone
from sdrl.models.base import Backbone
from sdrl.models.fpn import FPN

__all__ = [
    "ChangeModel",
    "ChangeNet",
    "Fusion",
    "Head",
    "LevelFusion",
    "LinearProbeHead",
    "change_probability",
]

Fusion = Literal["absdiff", "concat"]
Head = Literal["fpn", "linear"]


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """Convolution (no bias, same padding), BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def change_probability(logits: Tensor) -> Tensor:
    """Change probability ``(B, H, W)`` float32 of logits ``(B, K, H, W)``.

    ``K = 1``: sigmoid of the logit; ``K = 2``: softmax probability of class 1 (change).

    Raises:
        ValueError: Another shape.
    """
    if logits.ndim != 4 or logits.shape[1] not in (1, 2):
        raise ValueError(f"expected (B, 1 or 2, H, W) change logits, got {tuple(logits.shape)}")
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)[:, 1]


def check_pair(image_a: Tensor, image_b: Tensor) -> None:
    """Raise a ValueError unless both dates are ``(B, C, H, W)`` batches of one shape."""
    if image_a.ndim != 4 or image_a.shape != image_b.shape:
        raise ValueError(
            "image_a and image_b must be (B, C, H, W) batches of the same shape, got "
            f"{tuple(image_a.shape)} and {tuple(image_b.shape)}"
        )


class ChangeModel(nn.Module):
    """What every change model offers: ``forward(image_a, image_b)``, ``encoder``, freezing.

    A frozen encoder has ``requires_grad=False`` on every parameter and stays in eval mode
    (BatchNorm statistics and dropout fixed) even when the model is put in training mode, so
    that Lightning's ``model.train()`` at each epoch does not unfreeze its statistics. An
    optimiser built over all parameters skips the frozen ones (their ``grad`` stays ``None``).
    Under DDP, which lists the parameters to synchronise when it wraps the model, a model whose
    freezing changes during training must be wrapped unfrozen, with unused parameters allowed
    (Lightning's ``ddp_find_unused_parameters_true``); a linear probe needs neither.

    Attributes:
        encoder: The module that :func:`~sdrl.models.init.init_encoder` fills and
            :meth:`freeze_encoder` freezes.
        out_channels: Channels ``K`` of the logits.
    """

    encoder: nn.Module

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(
                f"out_channels must be 1 (binary logit) or 2+ (classes), got {out_channels!r}"
            )
        self.out_channels = out_channels
        self._encoder_frozen = False

    @property
    def encoder_frozen(self) -> bool:
        """Whether :meth:`freeze_encoder` froze the encoder."""
        return self._encoder_frozen

    def freeze_encoder(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the encoder's parameters and BatchNorm statistics.

        Args:
            frozen: ``True`` to freeze, ``False`` to train the encoder again.
        """
        self._encoder_frozen = frozen
        for param in self.encoder.parameters():
            param.requires_grad_(not frozen)
        self.encoder.train(self.training and not frozen)

    def train(self, mode: bool = True) -> ChangeModel:
        """Set training mode, keeping a frozen encoder in eval mode."""
        super().train(mode)
        if self._encoder_frozen:
            self.encoder.eval()
        return self

    def forward(self, image_a: Tensor, image_b: Tensor) -> Tensor:  # pragma: no cover
        """Change logits ``(B, K, H, W)`` of the pair ``(B, C, H, W)``, ``(B, C, H, W)``."""
        raise NotImplementedError


class LevelFusion(nn.Module):
    """Fuses the two dates' features of one level.

    Args:
        channels: Channels ``D_i`` of the level.
        fusion: ``"absdiff"``: ``|a - b|`` (symmetric in the dates, no parameters);
            ``"concat"``: ``[a, b]`` along channels, then (when ``project``) a 1x1
            conv-BN-ReLU back to ``D_i``.
        project: Project the concatenation back to ``D_i`` channels (false in the linear probe).

    Attributes:
        out_channels: ``D_i``, or ``2 D_i`` for an unprojected concatenation.
    """

    def __init__(self, channels: int, fusion: Fusion, project: bool = True) -> None:
        super().__init__()
        self.fusion = fusion
        self.proj = (
            conv_bn_relu(2 * channels, channels, 1) if fusion == "concat" and project else None
        )
        self.out_channels = 2 * channels if fusion == "concat" and not project else channels

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """Fuse ``(B, D_i, h, w)`` and ``(B, D_i, h, w)`` into ``(B, out_channels, h, w)``."""
        if self.fusion == "absdiff":
            return (a - b).abs()
        fused = torch.cat([a, b], dim=1)
        return self.proj(fused) if self.proj is not None else fused


class FPNDecoder(nn.Module):
    """FPN over the fused levels and a semantic-FPN head to full-resolution logits.

    Args:
        level_channels: Channels ``D_i`` of the four fused levels.
        channels: Channels ``D`` of the pyramid and of the head.
        out_channels: Channels ``K`` of the logits.
    """

    def __init__(self, level_channels: Sequence[int], channels: int, out_channels: int) -> None:
        super().__init__()
        self.fpn = FPN(level_channels, channels)
        self.branches = nn.ModuleList(conv_bn_relu(channels, channels) for _ in level_channels)
        self.fuse = conv_bn_relu(channels, channels)
        self.classifier = nn.Conv2d(channels, out_channels, 1)

    def forward(self, levels: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
        """Decode levels ``(B, D_i, H / s_i, W / s_i)`` into logits ``(B, K, H, W)``."""
        pyramid = self.fpn(levels)
        stride4 = pyramid[0].shape[-2:]
        merged = self.branches[0](pyramid[0])
        for branch, level in zip(self.branches[1:], pyramid[1:], strict=True):
            merged = merged + F.interpolate(
                branch(level), size=stride4, mode="bilinear", align_corners=False
            )
        logits = self.classifier(self.fuse(merged))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class LinearProbeHead(nn.Module):
    """One 1x1 convolution over the hypercolumn of the fused levels: a per-pixel linear probe.

    Each level first goes through a BatchNorm without learned scale and shift (as MAE's linear
    probe), which only standardises the feature scales of the levels. The logit of pixel
    ``(y, x)`` is then ``W [up(f_2), up(f_3), up(f_4), up(f_5)](y, x) + bias`` with ``up`` the
    bilinear upsampling to ``H x W``. Because bilinear upsampling is linear with weights summing
    to one, it commutes with the 1x1 convolution, so the convolution is applied per level, at
    the level's own resolution, and only the ``K``-channel results are upsampled and summed:
    the same function at a fraction of the memory.

    Args:
        level_channels: Channels of the four fused levels.
        out_channels: Channels ``K`` of the logits.
    """

    def __init__(self, level_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(c, affine=False) for c in level_channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(c, out_channels, 1, bias=i == 0) for i, c in enumerate(level_channels)
        )

    def forward(self, levels: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
        """Map levels ``(B, D_i, H / s_i, W / s_i)`` to logits ``(B, K, H, W)``."""
        out: Tensor | None = None
        for norm, conv, level in zip(self.norms, self.convs, levels, strict=True):
            up = F.interpolate(conv(norm(level)), size=size, mode="bilinear", align_corners=False)
            out = up if out is None else out + up
        assert out is not None
        return out


class ChangeNet(ChangeModel):
    """Siamese change detector: shared backbone, fusion at four levels, decoder (module doc).

    Args:
        in_channels: Bands ``C`` of each date.
        backbone: A registered backbone name (:func:`~sdrl.models.build_backbone`) or a built
            :class:`~sdrl.models.base.Backbone` with ``in_channels`` bands.
        fusion: ``"absdiff"`` (default; the model is then symmetric in the dates) or
            ``"concat"`` (see :class:`LevelFusion`).
        head: ``"fpn"`` (decoder, default) or ``"linear"`` (linear probe; the encoder is frozen).
        out_channels: ``K`` = 2 for cross-entropy over {unchanged, changed} (default) or 1 for
            one binary logit.
        decoder_channels: Channels ``D`` of the FPN decoder.
        backbone_options: Options of the backbone builder (e.g. ``widths`` of ``resnet_tiny``).

    Attributes:
        encoder: The shared :class:`~sdrl.models.base.Backbone`.
        fusions: One :class:`LevelFusion` per level.
        decoder: :class:`FPNDecoder` or :class:`LinearProbeHead`.
    """

    encoder: Backbone

    def __init__(
        self,
        in_channels: int,
        *,
        backbone: str | Backbone = "resnet18",
        fusion: Fusion = "absdiff",
        head: Head = "fpn",
        out_channels: int = 2,
        decoder_channels: int = 128,
        backbone_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(out_channels)
        if fusion not in get_args(Fusion):
            raise ValueError(f"fusion must be one of {get_args(Fusion)}, got {fusion!r}")
        if head not in get_args(Head):
            raise ValueError(f"head must be one of {get_args(Head)}, got {head!r}")
        if isinstance(decoder_channels, bool) or not isinstance(decoder_channels, int):
            raise ValueError(f"decoder_channels must be an integer, got {decoder_channels!r}")
        if decoder_channels < 1:
            raise ValueError(f"decoder_channels must be positive, got {decoder_channels}")
        if isinstance(backbone, Backbone):
            if backbone_options:
                raise ValueError("backbone_options apply to a backbone name, not a built backbone")
            if backbone.in_channels != in_channels:
                raise ValueError(
                    f"the backbone has {backbone.in_channels} input bands, the model "
                    f"in_channels={in_channels}; build both for the same bands"
                )
            self.encoder = backbone
        else:
            self.encoder = build_backbone(backbone, in_channels, **dict(backbone_options or {}))
        self.in_channels = in_channels
        self.fusion: Fusion = fusion
        self.head: Head = head
        linear = head == "linear"
        fusions = [LevelFusion(c, fusion, project=not linear) for c in self.encoder.channels]
        self.fusions = nn.ModuleList(fusions)
        fused = [f.out_channels for f in fusions]
        self.decoder: FPNDecoder | LinearProbeHead = (
            LinearProbeHead(fused, out_channels)
            if linear
            else FPNDecoder(fused, decoder_channels, out_channels)
        )
        if linear:
            self.freeze_encoder(True)

    def freeze_encoder(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the encoder; a linear probe's encoder stays frozen.

        Args:
            frozen: ``True`` to freeze, ``False`` to train the encoder again.

        Raises:
            ValueError: On unfreezing a linear probe (``head="linear"``).
        """
        if not frozen and self.head == "linear":
            raise ValueError("a linear probe (head='linear') keeps its encoder frozen")
        super().freeze_encoder(frozen)

    def forward(self, image_a: Tensor, image_b: Tensor) -> Tensor:
        """Change logits of a pair of dates.

        Args:
            image_a: Date 1, ``(B, C, H, W)`` with ``H`` and ``W`` multiples of 32.
            image_b: Date 2 on the same grid, ``(B, C, H, W)``.

        Returns:
            Logits ``(B, K, H, W)``.
        """
        check_pair(image_a, image_b)
        levels = self.encoder(torch.cat([image_a, image_b]))
        fused = [
            fusion(*level.chunk(2)) for fusion, level in zip(self.fusions, levels, strict=True)
        ]
        return self.decoder(fused, (image_a.shape[-2], image_a.shape[-1]))
