"""Re-mapping a first-layer kernel from one band set to another by centre wavelength.

Used by ``sdrl export --bands`` and when ``--init``/``--weights`` load weights whose bands
differ from the data's (:func:`~sdrl.models.weights.load_weights`); the band tables are in
:mod:`sdrl.bands`.

The rule, for each target band ``t`` (first match wins):

1. **The same band**: a source band with the same common name (``blue``, ``nir08``...: the same
   spectral band on another sensor, e.g. Landsat's B2 and Sentinel-2's B02) or the same name
   gives its kernel unchanged;
2. **By wavelength**: the kernel of the source band nearest in centre wavelength; where the
   target lies between two source bands, the linear interpolation of their two kernels
   (weights ``(nm_hi - nm_t) / (nm_hi - nm_lo)`` and ``(nm_t - nm_lo) / (nm_hi - nm_lo)``);
   outside the source range, the nearest end band;
3. **Unknown wavelength**: the mean kernel of all source bands, with a warning.

Every kernel is then multiplied by ``S / T`` (``S`` source bands, ``T`` target bands), so the
response to a constant image (every band equal) keeps its scale: the kernels summed over the
bands keep their size. It is exact when every source kernel is used equally often (e.g. RGB
to 3k bands, as timm's ``3 / N``), approximate otherwise. An RGB first layer re-mapped to the 13
Sentinel-2 bands and applied to an image holding RGB in B04/B03/B02 and 0 elsewhere gives the
RGB layer's response times ``3 / 13``.

Shape letters: ``D`` output channels of the first layer, ``S`` source bands, ``T`` target
bands, ``k`` kernel sides (one or more).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sdrl.bands import Band

__all__ = ["BandMapping", "map_bands", "remap_input_conv"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BandMapping:
    """How each target band is made from the source bands.

    Attributes:
        weights: ``(T, S)`` float64 mixing weights, each row summing to 1.
        rules: For each target band, ``"same"``, ``"nearest"``, ``"interpolated"`` or
            ``"mean"``.
        factor: ``S / T``, applied to every re-mapped kernel.
    """

    weights: Tensor
    rules: tuple[str, ...]
    factor: float

    def describe(self, source: Sequence[Band], target: Sequence[Band]) -> list[dict[str, object]]:
        """Plain data for ``meta.json``: per target band, its rule and source weights."""
        rows: list[dict[str, object]] = []
        for t, band in enumerate(target):
            parts = {
                source[s].name: round(float(w), 6)
                for s, w in enumerate(self.weights[t].tolist())
                if w > 0 and self.rules[t] != "mean"
            }
            rows.append({"band": band.name, "rule": self.rules[t], "from": parts or "mean"})
        return rows


def _same(band: Band, source: Sequence[Band]) -> int | None:
    """Index of the source band that is the same spectral band as ``band``, if any."""
    if band.common is not None:
        hits = [i for i, s in enumerate(source) if s.common == band.common]
        if len(hits) == 1:
            return hits[0]
    for i, s in enumerate(source):
        if s.name.lower() == band.name.lower() and (s.nm is None or s.nm == band.nm):
            return i
    return None


def map_bands(source: Sequence[Band], target: Sequence[Band]) -> BandMapping:
    """The mixing weights that make ``target`` bands from ``source`` bands (module rule).

    Args:
        source: ``S`` bands the kernel was trained on.
        target: ``T`` bands wanted.

    Returns:
        The mapping; target bands of unknown wavelength (or with no source wavelength to match)
        take the mean kernel, and a warning names them.

    Raises:
        ValueError: If either list is empty.
    """
    if not source or not target:
        raise ValueError(f"cannot map {len(source)} source bands to {len(target)} target bands")
    known = sorted(
        ((float(b.nm), i) for i, b in enumerate(source) if b.nm is not None), key=lambda p: p
    )
    weights = torch.zeros(len(target), len(source), dtype=torch.float64)
    rules: list[str] = []
    for t, band in enumerate(target):
        same = _same(band, source)
        if same is not None:
            weights[t, same] = 1.0
            rules.append("same")
        elif band.nm is None or not known:
            weights[t] = 1.0 / len(source)
            rules.append("mean")
        else:
            rules.append(_by_wavelength(float(band.nm), known, weights[t]))
    mean = [target[t].name for t, rule in enumerate(rules) if rule == "mean"]
    if mean:
        log.warning(
            "bands %s have no known centre wavelength (or the source has none): they take the "
            "mean first-layer kernel of the %d source bands",
            ", ".join(mean),
            len(source),
        )
    return BandMapping(weights, tuple(rules), len(source) / len(target))


def _by_wavelength(nm: float, known: list[tuple[float, int]], row: Tensor) -> str:
    """Fill ``row`` from the sorted ``(nm, index)`` source bands; returns the rule used."""
    below = [p for p in known if p[0] <= nm]
    above = [p for p in known if p[0] >= nm]
    if below and above and below[-1][0] < above[0][0]:
        (lo_nm, lo), (hi_nm, hi) = below[-1], above[0]
        share = (nm - lo_nm) / (hi_nm - lo_nm)
        row[lo] = 1.0 - share
        row[hi] = share
        return "interpolated"
    nearest = below[-1] if below else above[0]
    row[nearest[1]] = 1.0
    return "nearest"


def remap_input_conv(
    weight: Tensor, source: Sequence[Band], target: Sequence[Band]
) -> tuple[Tensor, BandMapping]:
    """Re-map a first-layer kernel from ``source`` bands to ``target`` bands (module rule).

    Args:
        weight: Kernel ``(D, S, k...)`` (2D or 3D convolution).
        source: The ``S`` bands of ``weight``.
        target: The ``T`` bands wanted.

    Returns:
        The kernel ``(D, T, k...)`` in the dtype of ``weight``, and the mapping used.

    Raises:
        ValueError: If ``weight`` does not have ``S`` input bands.
    """
    if weight.ndim < 3 or weight.shape[1] != len(source):
        raise ValueError(
            f"a kernel (D, {len(source)}, k...) for {len(source)} source bands, "
            f"got shape {tuple(weight.shape)}"
        )
    mapping = map_bands(source, target)
    mixed = torch.einsum("ts,ds...->dt...", mapping.weights, weight.to(torch.float64))
    return (mixed * mapping.factor).to(weight.dtype).contiguous(), mapping
