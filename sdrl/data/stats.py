"""Per-band normalisation statistics and label encodings, computed by streaming and cached.

A folder a user brings may have no ``dataset.json``. :func:`ensure_meta` then reads up to
``max_tiles`` evenly spaced tiles (A and B) one at a time, combines their per-band moments
with Chan's parallel formula (float64, no pixel array is ever concatenated), scans the label
values to recognise the encoding (0/1, LEVIR's 0/255, 0/1 + 255 = ignore) and writes the
result to ``dataset.json`` so it is computed once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sdrl.data.folder import DatasetFolder, DatasetMeta, Kind
from sdrl.data.io import read_info, read_raster
from sdrl.errors import DataError

__all__ = ["BandMoments", "ensure_meta", "infer_label_encoding"]

log = logging.getLogger(__name__)


@dataclass
class BandMoments:
    """Running per-band count, mean and sum of squared deviations (Chan et al.).

    Attributes:
        count: ``(C,)`` number of valid, finite pixels per band.
        mean: ``(C,)`` running mean.
        m2: ``(C,)`` running sum of squared deviations from the mean.
    """

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, bands: int) -> BandMoments:
        """Moments of no data for ``bands`` bands."""
        zeros = np.zeros(bands, dtype=np.float64)
        return cls(zeros.copy(), zeros.copy(), zeros.copy())

    def update(self, data: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add the pixels of a ``(C, H, W)`` array.

        Pixels where ``valid`` is false are skipped in every band; non-finite values (NaN, inf)
        are skipped in their own band, so a float raster without declared nodata cannot turn
        the mean and std into NaN.

        Args:
            data: ``(C, H, W)`` pixels.
            valid: ``(H, W)`` bool, or ``None`` for all pixels.
        """
        self.merge(BandMoments(*self._moments(data, valid)))

    def merge(self, other: BandMoments) -> None:
        """Add the pixels ``other`` summarises (Chan's parallel formula)."""
        total = self.count + other.count
        safe = np.maximum(total, 1)
        delta = other.mean - self.mean
        self.mean = self.mean + delta * other.count / safe
        self.m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / safe
        self.count = total

    def remove(self, data: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Take back pixels added with :meth:`update` (same ``data`` and ``valid``).

        Chan's merge solved for the remaining part; exact up to rounding (``m2`` is clipped
        at zero, and a band left without pixels returns to zero moments).

        Args:
            data: ``(C, H, W)`` pixels, as given to :meth:`update`.
            valid: ``(H, W)`` bool, or ``None``, as given to :meth:`update`.
        """
        count, mean, m2 = self._moments(data, valid)
        if (count > self.count).any():
            raise ValueError("BandMoments.remove: more pixels than were added")
        rest = self.count - count
        safe = np.maximum(rest, 1)
        rest_mean = (self.count * self.mean - count * mean) / safe
        delta = mean - rest_mean
        rest_m2 = self.m2 - m2 - delta**2 * rest * count / np.maximum(self.count, 1)
        empty = rest == 0
        self.mean = np.where(empty, 0.0, rest_mean)
        self.m2 = np.where(empty, 0.0, np.maximum(rest_m2, 0.0))
        self.count = rest

    @staticmethod
    def _moments(
        data: np.ndarray, valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(C,)`` count, mean and m2 of the valid, finite pixels of one array."""
        flat = data.reshape(data.shape[0], -1).astype(np.float64)
        if valid is not None:
            flat = flat[:, valid.reshape(-1)]
        finite = np.isfinite(flat)
        if finite.all():
            count = np.full(flat.shape[0], flat.shape[1], dtype=np.float64)
            mean = flat.mean(axis=1) if flat.shape[1] else np.zeros(flat.shape[0])
            return count, mean, ((flat - mean[:, None]) ** 2).sum(axis=1)
        count = finite.sum(axis=1).astype(np.float64)
        mean = np.where(finite, flat, 0.0).sum(axis=1) / np.maximum(count, 1)
        m2 = (np.where(finite, flat - mean[:, None], 0.0) ** 2).sum(axis=1)
        return count, mean, m2

    @property
    def std(self) -> np.ndarray:
        """``(C,)`` population standard deviation."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1))


def infer_label_encoding(
    values: set[int], kind: Kind, path: str
) -> tuple[dict[int, int] | None, int | None, list[str]]:
    """Recognise how a folder's label rasters encode classes.

    Args:
        values: Every raw value found in the label rasters.
        kind: ``change`` or ``pretrain``.
        path: The label folder, for the error message.

    Returns:
        ``(label_values, ignore_index, classes)`` for :class:`DatasetMeta`.

    Raises:
        DataError: Change labels that are neither 0/1, 0/255 nor 0/1/255.
    """
    if kind == "change":
        classes = ["unchanged", "changed"]
        if values <= {0, 1}:
            return None, None, classes
        if values <= {0, 255}:
            return {0: 0, 255: 1}, None, classes
        if values <= {0, 1, 255}:
            return None, 255, classes
        raise DataError(
            path,
            "change labels 0/1, 0/255 (255 = change) or 0/1 with 255 = ignore",
            f"values {sorted(values)}",
            "Declare label_values and ignore_index in dataset.json",
        )
    ignore = 255 if 255 in values else None
    ids = sorted(values - {255})
    top = ids[-1] if ids else 0
    return None, ignore, [f"class_{i}" for i in range(top + 1)]


def ensure_meta(
    folder: DatasetFolder,
    kind: Kind,
    split: str = "train",
    max_tiles: int = 512,
    write: bool = True,
) -> DatasetMeta:
    """Return the folder's metadata, computing and caching what is missing.

    Args:
        folder: The dataset folder.
        kind: What the caller will read it as; must match a ``dataset.json`` that exists.
        split: Split whose tiles give the statistics (``all`` when the split does not exist).
        max_tiles: Most tiles read for the statistics (evenly spaced over the split).
        write: Cache the result in ``dataset.json`` (skipped with a warning when the folder is
            not writable).

    Returns:
        Metadata with ``bands``, ``mean``, ``std`` and ``classes`` filled.
    """
    meta = folder.meta
    if meta is not None and meta.kind != kind:
        raise DataError(
            folder.meta_path,
            f'"kind": "{kind}" to read it as a {kind} dataset',
            f'"kind": "{meta.kind}"',
        )
    if meta is not None and meta.mean is not None and meta.std is not None and meta.classes:
        return meta
    if split not in folder.splits():
        split = "all"
    ids = folder.ids(split)
    picked = ids[np.unique(np.linspace(0, len(ids) - 1, min(max_tiles, len(ids))).astype(int))]
    first = read_info(folder.path("A", str(picked[0])))
    moments = BandMoments.empty(first.count)
    values: set[int] = set()
    for tile_id in picked.tolist():
        for part in ("A", "B"):
            if folder.has(part):
                raster = read_raster(folder.path(part, tile_id))
                if raster.data.shape[0] != first.count:
                    raise DataError(
                        folder.path(part, tile_id),
                        f"{first.count} bands like {first.path.name}",
                        f"{raster.data.shape[0]} bands",
                    )
                moments.update(raster.data, raster.valid)
        for part in ("label", "label_B"):
            if folder.has(part):
                values |= set(np.unique(read_raster(folder.path(part, tile_id)).data).tolist())
    std = np.where(moments.std > 0, moments.std, 1.0)
    if meta is None:
        if not folder.has("label") and kind == "change":
            raise DataError(folder.root / "label", "a label/ folder of change masks", "none")
        labels = str(folder.root / "label")
        label_values, ignore, classes = infer_label_encoding(values, kind, labels)
        meta = DatasetMeta(
            kind=kind,
            bands=list(first.band_names),
            classes=classes,
            label_values=label_values,
            ignore_index=ignore,
            crs=first.crs.to_string() if first.crs is not None else None,
            gsd=first.resolution[0] if first.georeferenced else None,
            provenance={"source": "user folder", "statistics_tiles": len(picked)},
        )
    meta.mean = moments.mean.tolist()
    meta.std = std.tolist()
    if not meta.classes:
        meta.classes = infer_label_encoding(values, kind, str(folder.root / "label"))[2]
    message = f"computed band statistics of {folder.root} from {len(picked)} tiles of '{split}'"
    if write:
        try:
            meta.save(folder.meta_path)
            log.info("%s; cached in %s", message, folder.meta_path)
        except OSError as error:
            log.warning("%s; could not cache them (%s)", message, error)
    else:
        log.info(message)
    return meta
