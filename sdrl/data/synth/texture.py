"""Spatially correlated noise for textures, moisture patches, haze and boundary warping.

A smooth random field is white noise on a coarse lattice of ``k × k`` cells, interpolated to
``n × n`` pixels with a separable Gaussian kernel: ``W @ Z @ Wᵀ`` with ``W`` of shape
``(n, k + 4)``. That is two small matrix products per octave (no FFT, any ``n``), isotropic,
and of unit variance at every pixel. Summing octaves with amplitudes ``k^(-β/2)`` gives
fractal (``1/f^β``-like) noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["fractal_noise", "smooth_noise"]

_MARGIN = 2
_BLUR_BELOW = 6.0  # features smaller than this (pixels) come from blurred white noise


@lru_cache(maxsize=32)
def _taps(sigma: float) -> np.ndarray:
    """1-D Gaussian taps whose 2-D outer product has unit L2 norm."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= np.sqrt((taps**2).sum())
    result = taps.astype(np.float32)
    result.setflags(write=False)
    return result


def _blurred_white(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """``(n, n)`` unit-variance noise: white noise blurred by a separable Gaussian."""
    taps = _taps(round(sigma, 2))
    radius = len(taps) // 2
    white = rng.standard_normal((n + 2 * radius, n + 2 * radius), dtype=np.float32)
    rows = taps[0] * white[:n]
    for i in range(1, len(taps)):
        rows += taps[i] * white[i : i + n]
    field = taps[0] * rows[:, :n]
    for i in range(1, len(taps)):
        field += taps[i] * rows[:, i : i + n]
    return field


@lru_cache(maxsize=128)
def _kernel(n: int, cells: int) -> np.ndarray:
    """``(n, cells + 2·margin)`` interpolation weights whose rows have unit L2 norm."""
    spacing = n / cells
    centres = (np.arange(-_MARGIN, cells + _MARGIN) + 0.5) * spacing
    pixels = np.arange(n) + 0.5
    weights = np.exp(-0.5 * ((pixels[:, None] - centres[None, :]) / (0.7 * spacing)) ** 2)
    weights /= np.sqrt((weights**2).sum(axis=1, keepdims=True))
    result = weights.astype(np.float32)
    result.setflags(write=False)
    return result


def smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """One octave of smooth Gaussian noise.

    Args:
        rng: Random generator.
        n: Output side in pixels.
        cells: Lattice cells across the side (features about ``n / cells`` pixels wide).

    Returns:
        ``(n, n)`` float32 with zero mean and unit variance per pixel.
    """
    cells = int(max(1, min(cells, n)))
    if n / cells < _BLUR_BELOW:
        return _blurred_white(rng, n, 0.5 * n / cells)
    weights = _kernel(n, cells)
    lattice = rng.standard_normal((cells + 2 * _MARGIN,) * 2, dtype=np.float32)
    field: np.ndarray = weights @ lattice @ weights.T
    return field


def fractal_noise(
    rng: np.random.Generator,
    n: int,
    coarsest: float,
    finest: float,
    beta: float = 2.0,
) -> np.ndarray:
    """Multi-octave noise with features from ``coarsest`` down to ``finest`` pixels.

    Args:
        rng: Random generator.
        n: Output side in pixels.
        coarsest: Size in pixels of the largest features.
        finest: Size in pixels of the smallest features (at least 1.5).
        beta: Spectral slope; larger is smoother (amplitude of an octave ∝ ``size^(β/2)``).

    Returns:
        ``(n, n)`` float32 with zero mean and unit variance per pixel.
    """
    finest = max(finest, 1.5)
    coarsest = max(coarsest, finest)
    sizes = [coarsest]
    while sizes[-1] / 2 >= finest:
        sizes.append(sizes[-1] / 2)
    amplitudes = np.array([s ** (beta / 2) for s in sizes], dtype=np.float64)
    amplitudes /= np.sqrt((amplitudes**2).sum())
    total = np.zeros((n, n), dtype=np.float32)
    for size, amplitude in zip(sizes, amplitudes, strict=True):
        total += np.float32(amplitude) * smooth_noise(rng, n, round(n / size))
    return total
