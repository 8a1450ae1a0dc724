"""The one inference step of ``sdrl predict`` and ``sdrl evaluate``: tiles in, probabilities out.

Shape letters: ``B`` tiles per batch, ``C`` bands, ``K`` logit channels (1 for a sigmoid
model, 2 for a softmax model whose class 1 is change), ``T`` tile size.

:func:`tile_probabilities` is the only place where a change model runs at inference, so the
metrics of ``evaluate`` describe the maps ``predict`` writes: same device handling, same
precision, same logits → probability conversion, same output checks.

Precision policy (:func:`resolve_precision`), ``"auto"`` by default:

======  ====================================================================================
value   the model runs
======  ====================================================================================
auto    ``bf16`` on a CUDA GPU that supports bfloat16, ``16`` on older GPUs, ``32`` on CPU
        and other devices: the policy of training's ``--precision auto``
32      in float32, no autocast (exact; the slowest on GPU)
bf16    under ``torch.autocast(device, bfloat16)``: float32's exponent range, so large
        logits do not overflow as in float16; about 3 significant digits
16      under ``torch.autocast(device, float16)``: 3–4 significant digits, values above
        65504 overflow
======  ====================================================================================

Probabilities are always computed in float32 from the (possibly half-precision) logits.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Literal, cast, get_args

import torch
from torch import Tensor, nn

from sdrl.errors import ConfigError, one_line
from sdrl.models.change import change_probability, check_pair

__all__ = [
    "PRECISIONS",
    "Precision",
    "ResolvedPrecision",
    "autocast",
    "resolve_device",
    "resolve_precision",
    "tile_probabilities",
]

Precision = Literal["auto", "32", "bf16", "16"]
"""A ``--precision`` value."""

ResolvedPrecision = Literal["32", "bf16", "16"]
"""The precision a model actually runs in (recorded in metrics.json and GeoTIFF tags)."""

PRECISIONS: tuple[str, ...] = get_args(Precision)

_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; otherwise ``torch.device(device)``.

    Raises:
        ConfigError: A string torch does not read as a device, or a GPU that is not there.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"--device {device}: {one_line(error)}") from None
    if target.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (target.index or 0) >= count:
            raise ConfigError(
                f"--device {device}: expected a visible CUDA device, found {count} GPU(s); "
                "use --device cpu (or auto)"
            )
    elif target.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: expected an available MPS device, found none")
    return target


def resolve_precision(precision: str, device: torch.device) -> ResolvedPrecision:
    """The precision the model runs in on ``device`` (module doc).

    Args:
        precision: ``auto``, ``32``, ``bf16`` or ``16``.
        device: Where the model runs.

    Returns:
        ``"32"``, ``"bf16"`` or ``"16"``.

    Raises:
        ValueError: An unknown precision, or ``bf16`` on a CUDA GPU without bfloat16.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    cuda = device.type == "cuda"
    if precision == "auto":
        if not cuda:
            return "32"
        return "bf16" if torch.cuda.is_bf16_supported() else "16"
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"precision 'bf16': the GPU {device} does not support bfloat16; use '16' or '32'"
        )
    return cast(ResolvedPrecision, precision)


def autocast(device: torch.device, precision: ResolvedPrecision) -> AbstractContextManager:
    """The autocast context of a resolved precision on ``device`` (none for ``"32"``)."""
    if precision == "32":
        return nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def tile_probabilities(
    model: nn.Module,
    image_a: Tensor,
    image_b: Tensor,
    device: str | torch.device = "cpu",
    precision: str = "auto",
) -> Tensor:
    """Change probability of a batch of tiles: the model, in inference mode and ``precision``.

    Args:
        model: A change model in eval mode on ``device``:
            ``model(image_a (B, C, T, T), image_b (B, C, T, T))`` returns ``(B, K, T, T)``
            logits, ``K = 1`` (sigmoid) or ``2`` (softmax, class 1 change).
        image_a: ``(B, C, T, T)`` float32 date 1, normalised (on any device).
        image_b: ``(B, C, T, T)`` float32 date 2.
        device: Where the model is; the tiles are moved there.
        precision: ``auto``, ``32``, ``bf16`` or ``16`` (module doc).

    Returns:
        ``(B, T, T)`` float32 change probability in ``[0, 1]``, on the CPU.

    Raises:
        ValueError: Tiles of different shapes, an unknown precision, or a model that does
            not return ``(B, 1 | 2, T, T)`` logits.
    """
    check_pair(image_a, image_b)
    device = resolve_device(device)
    resolved = resolve_precision(precision, device)
    with torch.inference_mode():
        a = image_a.to(device, non_blocking=True)
        b = image_b.to(device, non_blocking=True)
        with autocast(device, resolved):
            logits = model(a, b)
        if not isinstance(logits, Tensor):
            raise ValueError(f"the model must return a logits tensor, got {type(logits).__name__}")
        size = tuple(image_a.shape[-2:])
        if logits.ndim == 4 and tuple(logits.shape[-2:]) != size:
            raise ValueError(
                f"the model returned {tuple(logits.shape[-2:])} logits for "
                f"{size[0]}x{size[1]} tiles: change models must predict at full resolution"
            )
        return change_probability(logits).cpu()
