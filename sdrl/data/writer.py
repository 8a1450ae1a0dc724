"""Writing dataset folders tile by tile, with statistics gathered on the way.

Used by ``sdrl synth`` and every ``sdrl prep`` recipe, so that everything sdrl writes has the
same layout and a complete ``dataset.json``. Wrap it in :func:`~sdrl.data.staging.staged_dir`
so a failure leaves nothing that looks complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from sdrl.data.folder import DatasetMeta, write_split
from sdrl.data.io import write_raster
from sdrl.data.stats import BandMoments

__all__ = ["DatasetWriter"]


class DatasetWriter:
    """Write tiles into a dataset folder and finish it with split lists and ``dataset.json``.

    Args:
        root: The (staging) folder to write into.
        image_ext: ``.tif`` (GeoTIFF, keeps CRS/transform, any dtype) or ``.png`` (8/16-bit).
        label_ext: Extension of label files; ``image_ext`` when ``None``.
        nodata: Nodata value of the images, recorded in each GeoTIFF and skipped by the
            statistics.
    """

    def __init__(
        self,
        root: str | Path,
        image_ext: str = ".tif",
        label_ext: str | None = None,
        nodata: float | None = None,
    ) -> None:
        self.root = Path(root)
        self.image_ext = image_ext
        self.label_ext = label_ext or image_ext
        self.nodata = nodata
        self.moments: BandMoments | None = None
        self.label_counts: dict[str, np.ndarray] = {}
        self.ids: list[str] = []

    def _path(self, part: str, tile_id: str, ext: str) -> Path:
        folder = self.root / part
        folder.mkdir(exist_ok=True)
        return folder / f"{tile_id}{ext}"

    def add(
        self,
        tile_id: str,
        image_a: np.ndarray,
        image_b: np.ndarray | None = None,
        label: np.ndarray | None = None,
        label_b: np.ndarray | None = None,
        crs: CRS | str | None = None,
        transform: Affine | None = None,
        band_names: Sequence[str] | None = None,
    ) -> None:
        """Write one tile.

        Args:
            tile_id: File stem; unique within the folder.
            image_a: ``(C, H, W)`` image at time 1.
            image_b: ``(C, H, W)`` image at time 2 on the same grid, if any.
            label: ``(H, W)`` change mask or semantic mask of A (uint8 / uint16).
            label_b: ``(H, W)`` semantic mask of B, if any.
            crs: CRS of the tile.
            transform: Affine transform of the tile's top-left pixel.
            band_names: One name per band.
        """
        if self.moments is None:
            self.moments = BandMoments.empty(image_a.shape[0])
        for part, image in (("A", image_a), ("B", image_b)):
            if image is None:
                continue
            write_raster(
                self._path(part, tile_id, self.image_ext),
                image,
                crs=crs,
                transform=transform,
                nodata=self.nodata,
                band_names=band_names,
            )
            valid = None if self.nodata is None else ~(image == self.nodata).all(axis=0)
            self.moments.update(image, valid)
        for part, mask in (("label", label), ("label_B", label_b)):
            if mask is None:
                continue
            path = self._path(part, tile_id, self.label_ext)
            write_raster(path, mask, crs=crs, transform=transform)
            counts = np.bincount(mask.astype(np.int64).ravel(), minlength=256)
            previous = self.label_counts.get(part)
            if previous is not None and len(previous) > len(counts):
                counts = np.pad(counts, (0, len(previous) - len(counts)))
            elif previous is not None:
                previous = np.pad(previous, (0, len(counts) - len(previous)))
            self.label_counts[part] = counts if previous is None else previous + counts
        self.ids.append(tile_id)

    def finish(self, meta: DatasetMeta, splits: Mapping[str, Sequence[str]]) -> DatasetMeta:
        """Write the split lists and ``dataset.json`` (mean/std from the written images).

        Args:
            meta: Description of the dataset; its ``mean``/``std`` are filled in here.
            splits: Split name → tile ids (each id must have been added).

        Returns:
            The metadata as written.
        """
        if self.moments is None:
            raise ValueError("no tile was written")
        unknown = {i for ids in splits.values() for i in ids} - set(self.ids)
        if unknown:
            raise ValueError(f"split lists name tiles that were not written: {sorted(unknown)[:3]}")
        for name, ids in splits.items():
            write_split(self.root, name, ids)
        std = self.moments.std
        meta.mean = self.moments.mean.tolist()
        meta.std = np.where(std > 0, std, 1.0).tolist()
        meta.save(self.root / "dataset.json")
        return meta

    def class_pixels(self, part: str = "label") -> np.ndarray:
        """``(V,)`` pixel count per raw label value written so far in ``part``."""
        return self.label_counts.get(part, np.zeros(0, dtype=np.int64))
