"""Georeferenced change maps for before/after rasters of any size.

:func:`predict_change` reads both rasters window by window, runs a change model on
overlapping tiles, stitches them (``blend`` or ``centre``) in a strip buffer whose size does
not depend on the raster height, and writes the map atomically, block row by block row.

========================  ==============================================================
module                    role
========================  ==============================================================
:mod:`.plan`              tile offsets, centre crops and blending weights
:mod:`.reader`            windowed, normalised reads of both dates on the before grid
:mod:`.strip`             the strip buffer that stitches tiles and releases finished rows
:mod:`.writer`            the atomic window-by-window GeoTIFF writer
:mod:`.inference`         :func:`tile_probabilities`: the model on a tile batch, precision
:mod:`.windows`           the same tiling and stitching on images held in memory (evaluate)
:mod:`.engine`            :func:`predict_change`, batching, the model, the progress bar
========================  ==============================================================
"""

from sdrl.predict.engine import GDAL_CACHE_MB, PredictResult, predict_change
from sdrl.predict.inference import PRECISIONS, resolve_device, resolve_precision, tile_probabilities
from sdrl.predict.plan import AxisPlan, TilePlan
from sdrl.predict.writer import BAND_NAMES, NODATA, OUTPUTS, ChangeMapWriter

__all__ = [
    "BAND_NAMES",
    "GDAL_CACHE_MB",
    "NODATA",
    "OUTPUTS",
    "PRECISIONS",
    "AxisPlan",
    "ChangeMapWriter",
    "PredictResult",
    "TilePlan",
    "predict_change",
    "resolve_device",
    "resolve_precision",
    "tile_probabilities",
]
