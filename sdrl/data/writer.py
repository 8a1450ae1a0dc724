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

from sdrl.data.folder import SUBFOLDERS, DatasetMeta, write_split
from sdrl.data.io import read_raster, write_raster
from sdrl.data.stats import BandMoments

__all__ = ["DatasetWriter"]

IMAGE_PARTS = SUBFOLDERS[:2]  # A, B
LABEL_PARTS = SUBFOLDERS[2:]  # label, label_B


class DatasetWriter:
    """Write tiles into a dataset folder and finish it with split lists and ``dataset.json``.

    Args:
        root: The (staging) folder to write into.
        image_ext: ``.tif`` (GeoTIFF, keeps CRS/transform, any dtype) or ``.png`` (8/16-bit).
        label_ext: Extension of label files; ``image_ext`` when ``None``.
        nodata: Nodata value of the images, recorded in each GeoTIFF and skipped by the
            statistics (so are non-finite values of float images, band by band).
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

    def _ext(self, part: str) -> str:
        return self.image_ext if part in IMAGE_PARTS else self.label_ext

    def _valid(self, image: np.ndarray) -> np.ndarray | None:
        """``(H, W)`` pixels where not every band is ``nodata`` (``None`` without nodata)."""
        if self.nodata is None or np.isnan(self.nodata):
            return None  # NaN never compares equal; BandMoments skips non-finite values
        return ~(image == self.nodata).all(axis=0)

    def _count_labels(self, part: str, mask: np.ndarray, sign: int) -> None:
        counts = np.bincount(mask.astype(np.int64).ravel(), minlength=256) * sign
        previous = self.label_counts.get(part)
        if previous is not None and len(previous) > len(counts):
            counts = np.pad(counts, (0, len(previous) - len(counts)))
        elif previous is not None:
            previous = np.pad(previous, (0, len(counts) - len(previous)))
        self.label_counts[part] = counts if previous is None else previous + counts

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
        for part, image in zip(IMAGE_PARTS, (image_a, image_b), strict=True):
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
            self.moments.update(image, self._valid(image))
        for part, mask in zip(LABEL_PARTS, (label, label_b), strict=True):
            if mask is None:
                continue
            path = self._path(part, tile_id, self.label_ext)
            write_raster(path, mask, crs=crs, transform=transform)
            self._count_labels(part, mask, 1)
        self.ids.append(tile_id)

    def remove(self, tile_id: str) -> None:
        """Delete a written tile: its file in every part, its id, and its share of the statistics.

        The band moments and label counts are taken back from the files before they are deleted,
        so :meth:`finish` describes the tiles that remain.

        Args:
            tile_id: An id given to :meth:`add`.

        Raises:
            KeyError: ``tile_id`` was not written (or was removed already).
        """
        if tile_id not in self.ids:
            raise KeyError(f"DatasetWriter.remove: no tile '{tile_id}' was written to {self.root}")
        for part in SUBFOLDERS:
            path = self.root / part / f"{tile_id}{self._ext(part)}"
            if not path.is_file():
                continue
            data = read_raster(path).data
            if part in IMAGE_PARTS and self.moments is not None:
                self.moments.remove(data, self._valid(data))
            elif part in LABEL_PARTS:
                self._count_labels(part, data[0], -1)
            path.unlink()
        self.ids.remove(tile_id)

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
