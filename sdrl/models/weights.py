"""Loading initial weights into a backbone; nothing is ever downloaded.

:func:`load_weights` reads a file or export folder (:func:`~sdrl.models.weight_files.read_weights`)
and hands its tensors to :func:`load_state_dict_into`, which finds the backbone's keys under a
prefix such as ``backbone.`` or ``model.encoder.`` (detected automatically, or given as
``strip_prefix``), checks every shape, adapts a 3-band first layer to the backbone's band count
(:func:`adapt_input_conv`) and loads the result strictly. Keys it does not need (the
classification head, projection heads, a momentum copy) are ignored and listed in the report.

When the caller names the data's bands (``bands``, ``wavelengths_nm``) and the file names its
own (an export's ``meta.json``, an sdrl checkpoint's header), and the two differ with centre
wavelengths known on both sides, the first layer is re-mapped by wavelength instead
(:func:`~sdrl.models.band_mapping.remap_input_conv`), whatever the two band counts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sdrl.bands import Band, lookup_bands
from sdrl.errors import DataError
from sdrl.models.band_mapping import remap_input_conv
from sdrl.models.base import Backbone
from sdrl.models.weight_files import META_FILE, WeightsFile, read_weights

__all__ = [
    "BACKBONE_PREFIXES",
    "LoadReport",
    "adapt_input_conv",
    "load_state_dict_into",
    "load_weights",
]

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
    first_layer: Callable[[Tensor], Tensor] | None = None,
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
        first_layer: Maps the file's first-layer kernel to the backbone's bands (a band
            re-mapping); it replaces the 3-band rule, and the key counts as adapted.

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
        if key == backbone.first_conv and first_layer is not None:
            tensor = first_layer(tensor)
            adapted.append(key)
        elif key == backbone.first_conv and _other_bands(tensor, ref):
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


BACKBONE_PREFIXES = {"pretrain": "method.backbone.", "change": "model.encoder."}
"""Where the backbone's keys sit in an sdrl checkpoint of each kind."""


def load_weights(
    backbone: Backbone,
    path: str | Path,
    *,
    strip_prefix: str | None = None,
    adapt_first_layer: bool = True,
    bands: Sequence[str] | None = None,
    wavelengths_nm: Sequence[float | None] | None = None,
) -> LoadReport:
    """Read a weights file or export folder and load it into a backbone.

    Args:
        backbone: The model to fill in place.
        path: See :func:`read_weights`.
        strip_prefix: See :func:`load_state_dict_into`.
        adapt_first_layer: See :func:`load_state_dict_into`; also allows the re-mapping by
            wavelength.
        bands: Names of the backbone's ``C`` input bands (the data's), if known.
        wavelengths_nm: Their centre wavelengths in nm (``None`` entries where unknown); names
            of :mod:`sdrl.bands` tables are looked up where this is not given.

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
            strip_prefix = BACKBONE_PREFIXES.get(header.kind)
    arch = (weights.meta or {}).get("architecture")
    if isinstance(arch, str) and arch != backbone.name:
        raise DataError(
            weights.path.with_name(META_FILE),
            f"weights for a {backbone.name} backbone",
            f"architecture {arch!r}",
            f"Build the backbone with name {arch!r}",
        )
    remap = None
    if adapt_first_layer and (bands is not None or wavelengths_nm is not None):
        remap = _band_remap(weights, backbone, bands, wavelengths_nm)
    report = load_state_dict_into(
        backbone,
        weights.state_dict,
        source=weights.path,
        strip_prefix=strip_prefix,
        adapt_first_layer=adapt_first_layer,
        first_layer=remap,
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


def _file_bands(weights: WeightsFile) -> list[Band] | None:
    """The bands a weights file was trained on, from an export's meta or a header."""
    names: Any = None
    nms: Any = None
    if weights.meta is not None:
        names, nms = weights.meta.get("bands"), weights.meta.get("wavelengths_nm")
    elif weights.header is not None:
        names, nms = weights.header.bands, weights.header.wavelengths_nm
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return None
    numbers = isinstance(nms, list) and all(v is None or isinstance(v, int | float) for v in nms)
    return lookup_bands(names, nms if numbers and len(nms) == len(names) else None)


def _band_remap(
    weights: WeightsFile,
    backbone: Backbone,
    bands: Sequence[str] | None,
    wavelengths_nm: Sequence[float | None] | None,
) -> Callable[[Tensor], Tensor] | None:
    """The first-layer re-mapping from the file's bands to the backbone's, if one applies.

    It applies when the file names its bands, the two band lists differ, and at least one
    centre wavelength is known on each side; otherwise ``None`` (the 3-band rule or a plain
    load follow).
    """
    count = backbone.in_channels
    names = list(bands) if bands is not None else [f"band_{i + 1}" for i in range(count)]
    if len(names) != count or (wavelengths_nm is not None and len(wavelengths_nm) != count):
        raise ValueError(f"{backbone.name} has {count} bands; got {len(names)} band names")
    source = _file_bands(weights)
    if source is None:
        return None
    target = lookup_bands(names, wavelengths_nm)
    if [(b.name.lower(), b.nm) for b in source] == [(b.name.lower(), b.nm) for b in target]:
        return None
    if not any(b.nm is not None for b in source) or not any(b.nm is not None for b in target):
        return None

    def remap(kernel: Tensor) -> Tensor:
        if kernel.ndim < 3 or kernel.shape[1] != len(source):
            raise DataError(
                weights.path,
                f"a first-layer kernel for the {len(source)} bands its metadata names",
                f"shape {tuple(kernel.shape)}",
            )
        mapped, _ = remap_input_conv(kernel, source, target)
        return mapped

    log.info(
        "%s: first layer re-mapped by wavelength from %d bands (%s) to %d (%s)",
        weights.path,
        len(source),
        _short([b.name for b in source]),
        count,
        _short(names),
    )
    return remap


def _short(names: Sequence[str], limit: int = 6) -> str:
    """A list of names for a message, cut after ``limit``."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
