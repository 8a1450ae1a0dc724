"""Loading initial weights into a backbone; nothing is ever downloaded.

:func:`load_weights` reads a file or export folder (:func:`~sdrl.models.weight_files.read_weights`)
and hands its tensors to :func:`load_state_dict_into`, which finds the backbone's keys under a
prefix such as ``backbone.`` or ``model.encoder.`` (detected automatically, or given as
``strip_prefix``), checks every shape, adapts a 3-band first layer to the backbone's band count
(:func:`adapt_input_conv`) and loads the result strictly. Keys it does not need (the
classification head, projection heads, a momentum copy) are ignored and listed in the report.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from sdrl.errors import DataError
from sdrl.models.base import Backbone
from sdrl.models.weight_files import META_FILE, read_weights

__all__ = ["LoadReport", "adapt_input_conv", "load_state_dict_into", "load_weights"]

log = logging.getLogger(__name__)

_OPTIONAL = "num_batches_tracked"  # BatchNorm counters that old checkpoints lack


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_state_dict_into` did.

    Attributes:
        source: The file (or label) the tensors came from.
        prefix: The prefix stripped from the file's keys (``""`` for none).
        loaded: Backbone keys taken from the file.
        adapted: Keys whose tensor was adapted to the band count (the first layer).
        ignored: Keys of the file that were not used.
    """

    source: str
    prefix: str
    loaded: tuple[str, ...]
    adapted: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=(), repr=False)


def adapt_input_conv(weight: Tensor, in_channels: int) -> Tensor:
    """Adapt a first-layer kernel trained on RGB to ``in_channels`` bands.

    The rule (timm's ``adapt_input_conv``, made exact for every band count): the response to a
    constant image (every band equal) is unchanged, because the kernels summed over bands are
    unchanged.

    * ``N = 1`` or ``2``: every band gets the sum of the R, G and B kernels divided by ``N``;
    * ``N >= 3``: the R, G, B kernels are repeated cyclically over the bands (band ``i`` gets
      kernel ``i mod 3``) and each copy is divided by the number of copies of its kernel.
      For ``N`` a multiple of 3 this is timm's ``3 / N`` scaling.

    Args:
        weight: Kernel ``(D, 3, k, k)`` of a model trained on 3 bands.
        in_channels: Band count ``N`` of the target model.

    Returns:
        Kernel ``(D, N, k, k)`` with the dtype of ``weight`` (``weight`` itself when ``N = 3``).

    Raises:
        ValueError: If ``weight`` does not have 3 input bands or ``in_channels < 1``.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"only 3-band kernels are adapted, got shape {tuple(weight.shape)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}")
    if in_channels == 3:
        return weight
    w = weight.to(torch.promote_types(weight.dtype, torch.float32))
    if in_channels < 3:
        out = (w.sum(dim=1, keepdim=True) / in_channels).repeat(1, in_channels, 1, 1)
    else:
        source = torch.arange(in_channels) % 3
        copies = torch.bincount(source, minlength=3).to(w)
        out = w[:, source] / copies[source].view(1, in_channels, 1, 1)
    return out.to(weight.dtype)


def _find_prefix(keys: list[str], expected: set[str]) -> str:
    """The prefix under which most of the expected keys appear; the shortest among ties."""
    counts: Counter[str] = Counter()
    for key in keys:
        cuts = [0] + [i + 1 for i, char in enumerate(key) if char == "."]
        for cut in cuts:
            if key[cut:] in expected:
                counts[key[:cut]] += 1
    if not counts:
        return ""
    best = max(counts.values())
    ranked = sorted((p for p, n in counts.items() if n == best), key=len)
    if len(ranked) > 1 and len(ranked[0]) == len(ranked[1]):
        raise ValueError(ranked)
    return ranked[0]


def load_state_dict_into(
    backbone: Backbone,
    state_dict: Mapping[str, Tensor],
    *,
    source: str | Path = "state dict",
    strip_prefix: str | None = None,
    adapt_first_layer: bool = True,
) -> LoadReport:
    """Load tensors into a backbone, adapting its first layer if the band count differs.

    Args:
        backbone: The model to fill in place.
        state_dict: Tensors under torchvision's names, optionally below a common prefix.
        source: File or label named in errors and in the report.
        strip_prefix: Prefix of the backbone's keys in ``state_dict`` (``""`` for none);
            ``None`` detects it: the prefix under which most backbone keys appear, the
            shortest one among ties (``backbone.`` wins over ``momentum_backbone.``).
        adapt_first_layer: Adapt 3-band first-layer weights to the backbone's band count
            (:func:`adapt_input_conv`); when false a band mismatch is an error.

    Returns:
        What was loaded, adapted and ignored.

    Raises:
        DataError: If the backbone's keys are not all found, a shape differs (other than an
            adaptable first layer), or the prefix is ambiguous.
    """
    target = backbone.state_dict()
    keys = list(state_dict)
    if strip_prefix is None:
        try:
            strip_prefix = _find_prefix(keys, set(target))
        except ValueError as err:
            raise DataError(
                source,
                f"one set of {backbone.name} weights",
                f"several: {err.args[0]}",
                "Pass strip_prefix= with the one to load",
            ) from None
    found = {k[len(strip_prefix) :]: v for k, v in state_dict.items() if k.startswith(strip_prefix)}
    missing = [k for k in target if k not in found and not k.endswith(_OPTIONAL)]
    if missing:
        sample = ", ".join(k for k in keys[:3])
        raise DataError(
            source,
            f"the {len(target)} tensors of a {backbone.name} backbone",
            f"{len(missing)} missing under prefix {strip_prefix!r}, e.g. {missing[0]!r} "
            f"(the file's keys start: {sample})",
            "Check that the file holds this architecture; pass strip_prefix= if its keys "
            "sit under another prefix",
        )
    loaded: dict[str, Tensor] = {}
    adapted: list[str] = []
    for key, ref in target.items():
        if key not in found:
            loaded[key] = ref
            continue
        tensor = found[key]
        if key == backbone.first_conv and _other_bands(tensor, ref):
            tensor = _adapt_first(backbone, key, tensor, ref, source, adapt_first_layer)
            adapted.append(key)
        if tensor.shape != ref.shape:
            raise DataError(
                source,
                f"{key} of shape {tuple(ref.shape)} for {backbone.name}",
                f"shape {tuple(tensor.shape)}",
                "The file holds another architecture or width; build the matching backbone",
            )
        loaded[key] = tensor
    backbone.load_state_dict(loaded, strict=True)
    used = {strip_prefix + k for k in loaded}
    return LoadReport(
        source=str(source),
        prefix=strip_prefix,
        loaded=tuple(k for k in target if k in found),
        adapted=tuple(adapted),
        ignored=tuple(k for k in keys if k not in used),
    )


def _other_bands(tensor: Tensor, ref: Tensor) -> bool:
    """Whether two kernels ``(D, C, k, k)`` differ in their band count ``C`` only."""
    if tensor.ndim != 4 or tensor.shape == ref.shape:
        return False
    return tensor.shape[:1] + tensor.shape[2:] == ref.shape[:1] + ref.shape[2:]


def _adapt_first(
    backbone: Backbone,
    key: str,
    tensor: Tensor,
    ref: Tensor,
    source: str | Path,
    adapt: bool,
) -> Tensor:
    """The first-layer kernel adapted to the backbone's band count, or a DataError."""
    if adapt and tensor.shape[1] == 3:
        return adapt_input_conv(tensor, backbone.in_channels)
    hint = (
        "Only 3-band (RGB) weights are adapted to another band count; use weights "
        f"trained on {backbone.in_channels} bands or select those bands"
        if adapt
        else "Set adapt_first_layer=True to adapt 3-band weights"
    )
    raise DataError(
        source,
        f"{key} of shape {tuple(ref.shape)} ({backbone.in_channels} bands)",
        f"shape {tuple(tensor.shape)}",
        hint,
    )


_HEADER_PREFIXES = {"pretrain": "method.backbone.", "change": "model.encoder."}
"""Where the backbone's keys sit in an sdrl checkpoint of each kind."""


def load_weights(
    backbone: Backbone,
    path: str | Path,
    *,
    strip_prefix: str | None = None,
    adapt_first_layer: bool = True,
) -> LoadReport:
    """Read a weights file or export folder and load it into a backbone.

    Args:
        backbone: The model to fill in place.
        path: See :func:`read_weights`.
        strip_prefix: See :func:`load_state_dict_into`.
        adapt_first_layer: See :func:`load_state_dict_into`.

    Returns:
        What was loaded, adapted and ignored (also logged at INFO level).

    Raises:
        DataError: If the file cannot be read or does not fit the backbone; an export whose
            ``meta.json`` names another ``architecture`` is refused before loading.
    """
    weights = read_weights(path)
    header = weights.header
    if header is not None:  # an sdrl checkpoint: its header names the backbone and its keys
        if header.backbone != backbone.name:
            raise DataError(
                weights.path,
                f"weights for a {backbone.name} backbone",
                f"a {header.kind} checkpoint of a {header.backbone} backbone",
                f"Build the backbone with name {header.backbone!r}",
            )
        if strip_prefix is None:
            strip_prefix = _HEADER_PREFIXES.get(header.kind)
    arch = (weights.meta or {}).get("architecture")
    if isinstance(arch, str) and arch != backbone.name:
        raise DataError(
            weights.path.with_name(META_FILE),
            f"weights for a {backbone.name} backbone",
            f"architecture {arch!r}",
            f"Build the backbone with name {arch!r}",
        )
    report = load_state_dict_into(
        backbone,
        weights.state_dict,
        source=weights.path,
        strip_prefix=strip_prefix,
        adapt_first_layer=adapt_first_layer,
    )
    adapted = f", adapted {', '.join(report.adapted)} to {backbone.in_channels} bands"
    log.info(
        "%s: loaded %d tensors into %s (prefix %r%s), ignored %d",
        report.source,
        len(report.loaded),
        backbone.name,
        report.prefix,
        adapted if report.adapted else "",
        len(report.ignored),
    )
    return report
