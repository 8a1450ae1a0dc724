"""RGB previews of multispectral tiles and masks, assembled into grids (uint8, band-first).

Shape letters: ``C`` bands, ``H``/``W`` rows/columns. Outputs are ``(3, H, W)`` uint8 arrays
ready for :func:`sdrl.data.io.write_raster` to a ``.png``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sdrl.data.samples import IGNORE_INDEX

__all__ = ["PALETTE", "colorize", "image_grid", "to_rgb"]

PALETTE = np.array(
    [
        [166, 132, 92],  # 0 brown
        [76, 175, 80],  # 1 green
        [46, 125, 50],  # 2 dark green
        [30, 136, 229],  # 3 blue
        [120, 120, 120],  # 4 grey
        [229, 57, 53],  # 5 red
        [255, 193, 7],  # 6 amber
        [142, 36, 170],  # 7 purple
        [0, 172, 193],  # 8 cyan
        [255, 112, 67],  # 9 orange
        [205, 220, 57],  # 10 lime
        [121, 85, 72],  # 11 dark brown
    ],
    dtype=np.uint8,
)
_RGB_NAMES = (("red", "b04", "b4"), ("green", "b03", "b3"), ("blue", "b02", "b2"))


def _rgb_bands(band_names: Sequence[str] | None, count: int) -> list[int]:
    if band_names is not None:
        lower = [n.lower() for n in band_names]
        found = [next((lower.index(a) for a in names if a in lower), None) for names in _RGB_NAMES]
        if all(i is not None for i in found):
            return [int(i) for i in found if i is not None]
    return [0, 1, 2] if count >= 3 else [0, 0, 0]


def to_rgb(
    image: np.ndarray,
    band_names: Sequence[str] | None = None,
    percentiles: tuple[float, float] = (2.0, 98.0),
) -> np.ndarray:
    """An 8-bit RGB composite of an image of any band count.

    Args:
        image: ``(C, H, W)`` image (raw or normalised values).
        band_names: Band names; red/green/blue (or Sentinel-2 B04/B03/B02) are used when
            present, else the first three bands, else the single band as grey.
        percentiles: Per-band stretch limits.

    Returns:
        ``(3, H, W)`` uint8.
    """
    picked = image[_rgb_bands(band_names, image.shape[0])].astype(np.float64)
    finite = np.isfinite(picked)
    low = np.array(
        [
            np.percentile(b[f], percentiles[0]) if f.any() else 0
            for b, f in zip(picked, finite, strict=True)
        ]
    )
    high = np.array(
        [
            np.percentile(b[f], percentiles[1]) if f.any() else 1
            for b, f in zip(picked, finite, strict=True)
        ]
    )
    scaled = (picked - low[:, None, None]) / np.maximum(high - low, 1e-9)[:, None, None]
    return (np.clip(np.nan_to_num(scaled), 0, 1) * 255).astype(np.uint8)


def colorize(mask: np.ndarray, palette: np.ndarray = PALETTE) -> np.ndarray:
    """Colour a class mask; :data:`IGNORE_INDEX` is black.

    Args:
        mask: ``(H, W)`` integer class ids.
        palette: ``(P, 3)`` uint8 colours, cycled for ids ≥ P.

    Returns:
        ``(3, H, W)`` uint8.
    """
    ids = np.asarray(mask, dtype=np.int64)
    out = palette[np.mod(ids, len(palette))]
    out[ids == IGNORE_INDEX] = 0
    return np.moveaxis(out, -1, 0)


def image_grid(rows: Sequence[Sequence[np.ndarray]], pad: int = 4, fill: int = 255) -> np.ndarray:
    """Arrange ``(3, H, W)`` uint8 pictures of one size into rows and columns.

    Args:
        rows: Rows of pictures, all ``(3, H, W)``.
        pad: White space between pictures, pixels.
        fill: Padding value.

    Returns:
        ``(3, rows·(H + pad) - pad, cols·(W + pad) - pad)`` uint8.
    """
    height, width = rows[0][0].shape[1:]
    cols = max(len(r) for r in rows)
    out = np.full(
        (3, len(rows) * (height + pad) - pad, cols * (width + pad) - pad), fill, dtype=np.uint8
    )
    for i, row in enumerate(rows):
        for j, picture in enumerate(row):
            y, x = i * (height + pad), j * (width + pad)
            out[:, y : y + height, x : x + width] = picture
    return out
