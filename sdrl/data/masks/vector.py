"""Masks from vector polygons: GeoJSON features rasterised onto the image grid.

The GeoJSON is read with the standard ``json`` module. Coordinates are in EPSG:4326
(longitude, latitude) as RFC 7946 prescribes, unless the file carries a legacy ``"crs"`` member
(``{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}``), which is
honoured. Geometries are reprojected once to the image CRS (``rasterio.warp.transform_geom``)
and burnt with ``rasterio.features.rasterize``: a pixel takes a feature's class when its centre
is inside (or, with ``all_touched``, when the geometry touches it); where features overlap the
later one in the file wins; everything else is background.

Features outside the raster: a file none of whose features touch the raster is an error
(almost always a CRS or file mix-up); when only some lie outside, a warning says how many.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import bounds as geometry_bounds
from rasterio.features import rasterize
from rasterio.transform import array_bounds
from rasterio.warp import transform_geom
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from sdrl.data.io import RasterInfo
from sdrl.data.samples import IGNORE_INDEX
from sdrl.errors import DataError

__all__ = ["GEOJSON_CRS", "VectorLabels", "vector_mask"]

GEOJSON_CRS = "EPSG:4326"
"""CRS of GeoJSON coordinates without a ``"crs"`` member (RFC 7946: WGS 84 longitude, latitude)."""


def _features(raw: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(raw, dict) or "type" not in raw:
        found = type(raw).__name__ if not isinstance(raw, dict) else "an object without 'type'"
        raise DataError(path, "a GeoJSON FeatureCollection", found)
    if raw["type"] == "FeatureCollection":
        features = raw.get("features")
        if not isinstance(features, list):
            raise DataError(path, "a 'features' list in the FeatureCollection", repr(features))
        return features
    if raw["type"] == "Feature":
        return [raw]
    if "coordinates" in raw or raw["type"] == "GeometryCollection":  # a bare geometry
        return [{"type": "Feature", "geometry": raw, "properties": {}}]
    raise DataError(path, "a GeoJSON FeatureCollection, Feature or geometry", f"type {raw['type']}")


def _crs(raw: dict[str, Any], path: Path) -> CRS:
    member = raw.get("crs")
    if member is None:
        return CRS.from_user_input(GEOJSON_CRS)
    try:
        return CRS.from_user_input(member["properties"]["name"])
    except (KeyError, TypeError, CRSError) as error:
        raise DataError(
            path,
            'a "crs" member like {"type": "name", "properties": {"name": "EPSG:32633"}}',
            json.dumps(member)[:120],
            "Remove it if the coordinates are longitude/latitude (RFC 7946)",
        ) from error


def _class_of(
    properties: dict[str, Any],
    index: int,
    path: Path,
    class_property: str,
    classes: Sequence[str] | None,
) -> int:
    if class_property not in properties:
        raise DataError(
            path,
            f"a '{class_property}' property on every feature",
            f"feature {index} with properties {sorted(properties)}",
            "Choose the class property with --class-property",
        )
    value = properties[class_property]
    if isinstance(value, str) and classes is not None and value in classes:
        return list(classes).index(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value):
        limit = len(classes) if classes is not None else IGNORE_INDEX
        if 0 <= int(value) < limit:
            return int(value)
    expected = f"class names {list(classes)}" if classes is not None else ""
    limit_text = f"class ids 0..{(len(classes) if classes is not None else IGNORE_INDEX) - 1}"
    expected = f"{expected} or {limit_text}" if expected else limit_text
    raise DataError(
        path,
        f"'{class_property}' values among {expected}",
        f"{value!r} in feature {index}",
        "Declare the class names with --classes",
    )


class VectorLabels:
    """GeoJSON features reprojected to an image CRS, ready to rasterise window by window.

    Args:
        path: A GeoJSON file (FeatureCollection; a single Feature or bare geometry also works).
        reference: The image whose grid and CRS the mask must match.
        class_property: Feature property holding the class: a name from ``classes`` or an
            integer id. ``None`` burns every feature as ``burn`` (e.g. building footprints).
        classes: Class names, index = class id, for string-valued ``class_property``.
        burn: Class id of every feature when ``class_property`` is ``None``.
        background: Class id of pixels covered by no feature.
        all_touched: Burn every pixel a geometry touches, not only those whose centre it covers.

    Raises:
        DataError: Invalid JSON, no features with a geometry, a missing or unknown class
            value, a reference without CRS, or no feature overlapping the raster.
    """

    def __init__(
        self,
        path: str | Path,
        reference: RasterInfo,
        class_property: str | None = None,
        classes: Sequence[str] | None = None,
        burn: int = 1,
        background: int = 0,
        all_touched: bool = False,
    ) -> None:
        self.path = Path(path)
        self.reference = reference
        self.background = background
        self.all_touched = all_touched
        if reference.crs is None:
            raise DataError(
                reference.path, "a georeferenced image to rasterise GeoJSON onto", "no CRS"
            )
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError as error:
            raise DataError(self.path, "an existing GeoJSON file", "no such file") from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(self.path, "a GeoJSON (JSON) file", f"'{error}'") from error
        features = _features(raw, self.path)
        source_crs = _crs(raw, self.path)
        shapes: list[tuple[dict[str, Any], int]] = []
        for index, feature in enumerate(features):
            geometry = feature.get("geometry") if isinstance(feature, dict) else None
            if not geometry:
                continue
            properties = feature.get("properties") or {}
            value = (
                burn
                if class_property is None
                else _class_of(properties, index, self.path, class_property, classes)
            )
            try:
                geometry = transform_geom(source_crs, reference.crs, geometry)
            except Exception as error:  # GDAL/OGR raise several types for bad geometries
                raise DataError(
                    self.path, f"a valid geometry in feature {index}", f"'{error}'"
                ) from error
            shapes.append((geometry, value))
        if not shapes:
            raise DataError(self.path, "at least one feature with a geometry", "none")
        self.shapes = shapes
        self.bounds = np.array([geometry_bounds(g) for g, _ in shapes], dtype=np.float64)
        west, south, east, north = array_bounds(
            reference.height, reference.width, reference.transform
        )
        inside = self._overlapping(west, south, east, north)
        if not inside.any():
            fw, fs = self.bounds[:, :2].min(axis=0)
            fe, fn = self.bounds[:, 2:].max(axis=0)
            raise DataError(
                self.path,
                f"features over {reference.path.name} (bounds {west:.6g}, {south:.6g}, "
                f"{east:.6g}, {north:.6g} in {reference.crs})",
                f"all {len(shapes)} features outside, within {fw:.6g}, {fs:.6g}, {fe:.6g}, "
                f"{fn:.6g} after reprojection from {source_crs}",
                "Check that the file covers the image and declares its CRS",
            )
        if not inside.all():
            warnings.warn(
                f"{self.path}: {int((~inside).sum())} of {len(shapes)} features lie outside "
                f"{reference.path.name} and are dropped",
                stacklevel=2,
            )

    def _overlapping(self, west: float, south: float, east: float, north: float) -> np.ndarray:
        """``(N,)`` bool: features whose bounding box overlaps the given box."""
        b = self.bounds
        return (b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= north) & (b[:, 3] >= south)

    def read(self, window: Window | None = None) -> np.ndarray:
        """Rasterise the features onto a window of the reference grid.

        Args:
            window: Window of the reference grid; all of it when ``None``.

        Returns:
            ``(h, w)`` uint8 class ids.
        """
        ref = self.reference
        if window is None:
            window = Window(0, 0, ref.width, ref.height)
        transform: Affine = window_transform(window, ref.transform)
        height, width = int(window.height), int(window.width)
        keep = self._overlapping(*array_bounds(height, width, transform))
        shapes = [shape for shape, k in zip(self.shapes, keep.tolist(), strict=True) if k]
        if not shapes:
            return np.full((height, width), self.background, dtype=np.uint8)
        return rasterize(
            shapes,
            out_shape=(height, width),
            transform=transform,
            fill=self.background,
            all_touched=self.all_touched,
            dtype=np.uint8,
        )


def vector_mask(
    path: str | Path,
    reference: RasterInfo,
    class_property: str | None = None,
    classes: Sequence[str] | None = None,
    burn: int = 1,
    background: int = 0,
    all_touched: bool = False,
    window: Window | None = None,
) -> np.ndarray:
    """Rasterise GeoJSON polygons onto an image grid.

    Args:
        path: The GeoJSON file (EPSG:4326 unless it has a ``"crs"`` member).
        reference: The image whose grid (CRS, transform, size) the mask takes.
        class_property: Feature property with the class name (from ``classes``) or id;
            ``None`` burns every feature as ``burn``.
        classes: Class names, index = class id.
        burn: Class id of every feature without ``class_property`` (buildings → 1).
        background: Class id of pixels no feature covers.
        all_touched: Burn every pixel a geometry touches.
        window: Window of the reference grid; all of it when ``None``.

    Returns:
        ``(H, W)`` uint8 class ids.

    Raises:
        DataError: See :class:`VectorLabels`.
    """
    labels = VectorLabels(path, reference, class_property, classes, burn, background, all_touched)
    return labels.read(window)
