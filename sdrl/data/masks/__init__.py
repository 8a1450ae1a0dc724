"""Semantic masks for pretraining pairs, from four sources.

- :mod:`~sdrl.data.masks.label`: label rasters, aligned onto the image grid (nearest).
- :mod:`~sdrl.data.masks.vector`: GeoJSON polygons rasterised onto the image grid.
- :mod:`~sdrl.data.masks.indices`: spectral-index rules (water, vegetation, built-up).
- :mod:`~sdrl.data.masks.kmeans`: unsupervised k-means clusters of pixel spectra.

Every mask is an ``(H, W)`` uint8 array of class ids with
:data:`~sdrl.data.samples.IGNORE_INDEX` (255) where there is no label or no data.
"""

from sdrl.data.masks.indices import INDEX_CLASSES, find_bands, index_mask
from sdrl.data.masks.kmeans import SpectralKMeans, kmeans_mask
from sdrl.data.masks.label import LabelRaster, label_mask
from sdrl.data.masks.vector import VectorLabels, vector_mask

__all__ = [
    "INDEX_CLASSES",
    "LabelRaster",
    "SpectralKMeans",
    "VectorLabels",
    "find_bands",
    "index_mask",
    "kmeans_mask",
    "label_mask",
    "vector_mask",
]
