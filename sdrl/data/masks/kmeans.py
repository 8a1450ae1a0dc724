"""Unsupervised masks: k-means clusters of pixel spectra, for data with no labels at all.

One model is fitted on a random sample of pixels drawn from *all* the given images (both dates
of a pair), so a cluster id means the same spectra on either date. Spectra are standardised per
band (mean and standard deviation of the sample) before clustering, so no band dominates by its
scale. Cluster ids are then ordered by the mean standardised value of their centre (dark to
bright), which makes them independent of k-means' internal numbering; together with a fixed
``seed`` the masks are reproducible. Prediction assigns every pixel to its nearest centre in
chunks of pixels, so large rasters can be predicted window by window after fitting on a sample
(DetCon's unsupervised masks, in the spectral domain).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from sdrl.data.samples import IGNORE_INDEX
from sdrl.errors import DataError

__all__ = ["SpectralKMeans", "kmeans_mask", "sample_spectra", "valid_pixels"]

log = logging.getLogger(__name__)


def valid_pixels(image: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Pixels with data: not every band equal to ``nodata``, and every band finite.

    Args:
        image: ``(C, H, W)`` image.
        nodata: The nodata value, or ``None``.

    Returns:
        ``(H, W)`` bool.
    """
    valid = np.ones(image.shape[1:], dtype=bool)
    if image.dtype.kind == "f":
        valid &= np.isfinite(image).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(image == nodata).all(axis=0)
    return valid


def sample_spectra(
    image: np.ndarray, valid: np.ndarray | None, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw up to ``n`` valid pixel spectra at random, without replacement.

    Args:
        image: ``(C, H, W)`` image.
        valid: ``(H, W)`` bool, or ``None`` for all pixels.
        n: Number of pixels wanted (all valid ones when fewer).
        rng: Random generator.

    Returns:
        ``(N, C)`` float32 spectra, ``N <= n``.
    """
    flat = image.reshape(image.shape[0], -1)
    index = np.flatnonzero(valid.reshape(-1)) if valid is not None else np.arange(flat.shape[1])
    if n < index.size:
        index = np.sort(rng.choice(index, size=n, replace=False))
    return flat[:, index].T.astype(np.float32)


class SpectralKMeans:
    """k-means on standardised pixel spectra with brightness-ordered cluster ids.

    Args:
        k: Number of clusters ``K`` (2..255).
        seed: Seed of k-means' initialisation.
        chunk_pixels: Pixels assigned per vectorised step in :meth:`predict`.

    Attributes:
        mean: ``(C,)`` per-band mean of the fitted sample.
        scale: ``(C,)`` per-band standard deviation (1 where constant).
        centers: ``(K, C)`` standardised centres, ordered dark to bright.
        fitted_pixels: Number of spectra the model was fitted on.
    """

    def __init__(self, k: int = 8, seed: int = 0, chunk_pixels: int = 1 << 18) -> None:
        if not 2 <= k < IGNORE_INDEX:
            raise ValueError(f"k must be in 2..{IGNORE_INDEX - 1}, got {k}")
        self.k = k
        self.seed = seed
        self.chunk_pixels = chunk_pixels
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.centers: np.ndarray | None = None
        self.fitted_pixels = 0

    def fit(self, spectra: np.ndarray) -> SpectralKMeans:
        """Fit on a sample of spectra.

        Args:
            spectra: ``(N, C)`` pixel spectra (raw values), ``N >= K``.

        Returns:
            ``self``.
        """
        if spectra.ndim != 2 or spectra.shape[0] < self.k:
            raise ValueError(
                f"k-means with k={self.k} needs at least {self.k} pixels, got {spectra.shape[0]}"
            )
        x = spectra.astype(np.float64)
        self.fitted_pixels = int(x.shape[0])
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        model = KMeans(n_clusters=self.k, n_init=1, random_state=self.seed)  # k-means++ init
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit((x - self.mean) / self.scale)
        for warning in caught:
            if issubclass(warning.category, ConvergenceWarning):  # fewer distinct spectra than k
                distinct = len(np.unique(x, axis=0))
                log.warning(
                    "k-means with k=%d: the sampled pixels hold %d distinct spectra, so some "
                    "of the %d region ids stay empty (a uniform or mostly nodata scene?)",
                    self.k, distinct, self.k,
                )  # fmt: skip
            else:
                warnings.warn(warning.message, warning.category, stacklevel=2)
        centers = model.cluster_centers_
        order = np.argsort(centers.mean(axis=1), kind="stable")
        self.centers = centers[order].astype(np.float32)
        return self

    def fit_windows(
        self,
        windows: Iterable[tuple[np.ndarray, np.ndarray | None]],
        per_window: int,
        sample_pixels: int = 100_000,
        source: str | Path | None = None,
    ) -> SpectralKMeans:
        """Fit on spectra sampled window by window, so memory is bounded by the sample.

        Args:
            windows: ``((C, h, w) image, (h, w) valid or None)`` pairs, e.g. the tiles of both
                dates of a raster pair, read one at a time.
            per_window: Pixels drawn from each window.
            sample_pixels: Most pixels kept (a random subset when the windows gave more).
            source: The raster the windows come from, for the error message.

        Returns:
            ``self``.

        Raises:
            DataError: Fewer than ``K`` pixels with data.
        """
        rng = np.random.default_rng(self.seed)
        spectra = [sample_spectra(image, valid, per_window, rng) for image, valid in windows]
        pixels = np.concatenate(spectra) if spectra else np.zeros((0, 1), dtype=np.float32)
        if pixels.shape[0] > sample_pixels:
            keep = rng.choice(pixels.shape[0], size=sample_pixels, replace=False)
            pixels = pixels[np.sort(keep)]
        if pixels.shape[0] < self.k:
            raise DataError(source, f"at least {self.k} pixels with data", f"{pixels.shape[0]}")
        return self.fit(pixels)

    def predict(self, image: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Assign every pixel to its nearest centre.

        Args:
            image: ``(C, H, W)`` image with the fitted bands.
            valid: ``(H, W)`` bool; pixels where false (and non-finite ones) become ignore.

        Returns:
            ``(H, W)`` uint8 cluster ids ``0..K-1``, :data:`IGNORE_INDEX` where invalid.
        """
        if self.centers is None or self.mean is None or self.scale is None:
            raise RuntimeError("SpectralKMeans.predict called before fit")
        if image.shape[0] != self.centers.shape[1]:
            raise ValueError(f"{image.shape[0]} bands, the model has {self.centers.shape[1]}")
        ok = valid_pixels(image) if valid is None else valid & valid_pixels(image)
        flat = image.reshape(image.shape[0], -1)
        mean = self.mean.astype(np.float32)
        scale = self.scale.astype(np.float32)
        sq_centers = (self.centers**2).sum(axis=1)
        out = np.empty(flat.shape[1], dtype=np.uint8)
        for start in range(0, flat.shape[1], self.chunk_pixels):
            x = (flat[:, start : start + self.chunk_pixels].T.astype(np.float32) - mean) / scale
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            distance = sq_centers[None, :] - 2.0 * (x @ self.centers.T)
            out[start : start + x.shape[0]] = distance.argmin(axis=1)
        out[~ok.reshape(-1)] = IGNORE_INDEX
        return out.reshape(image.shape[1:])


def kmeans_mask(
    images: Sequence[np.ndarray],
    k: int = 8,
    seed: int = 0,
    sample_pixels: int = 100_000,
    nodata: float | None = None,
    valid: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Cluster the pixels of several co-registered images with one k-means model.

    Args:
        images: ``(C, H, W)`` images with the same bands (e.g. both dates of a pair).
        k: Number of clusters ``K``.
        seed: Seed of the pixel sample and of k-means.
        sample_pixels: Pixels drawn (from all images, in proportion to their valid pixels)
            to fit the model.
        nodata: Nodata value: pixels where every band equals it are ignored.
        valid: ``(H, W)`` bool per image, false where there is no data.

    Returns:
        One ``(H, W)`` uint8 mask per image: cluster ids ``0..K-1`` ordered dark to bright,
        :data:`IGNORE_INDEX` where invalid.
    """
    if not images:
        raise ValueError("kmeans_mask needs at least one image")
    masks = [valid_pixels(image, nodata) for image in images]
    if valid is not None:
        masks = [m & v for m, v in zip(masks, valid, strict=True)]
    total = sum(int(m.sum()) for m in masks)
    rng = np.random.default_rng(seed)
    spectra = [
        sample_spectra(image, m, int(np.ceil(sample_pixels * m.sum() / max(total, 1))), rng)
        for image, m in zip(images, masks, strict=True)
    ]
    model = SpectralKMeans(k, seed).fit(np.concatenate(spectra))
    return [model.predict(image, m) for image, m in zip(images, masks, strict=True)]
