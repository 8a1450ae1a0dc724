"""Pictures of change maps: truth, prediction with its errors coloured, side by side.

Shape letters: ``C`` bands, ``H``/``W`` rows/columns. Outputs are ``(3, H, W)`` uint8.

Colours of :func:`outcome_picture`: true positive white, false positive red, false negative
blue, true negative black, ignored pixels grey (:data:`OUTCOME_COLOURS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sdrl.data.samples import IGNORE_INDEX
from sdrl.viz.preview import image_grid, to_rgb

__all__ = ["OUTCOME_COLOURS", "change_comparison", "outcome_picture", "truth_picture"]

OUTCOME_COLOURS = {
    "tn": (0, 0, 0),
    "tp": (255, 255, 255),
    "fp": (228, 26, 28),
    "fn": (55, 126, 255),
    "ignore": (128, 128, 128),
}
"""RGB colour of each pixel outcome."""


def _paint(layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]], shape: tuple) -> np.ndarray:
    out = np.zeros((3, *shape), dtype=np.uint8)
    for where, colour in layers:
        out[:, where] = np.asarray(colour, dtype=np.uint8)[:, None]
    return out


def truth_picture(truth: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Change white, unchanged black, ignored grey: ``(H, W)`` labels to ``(3, H, W)``."""
    return _paint(
        [(truth == 1, OUTCOME_COLOURS["tp"]), (truth == ignore_index, OUTCOME_COLOURS["ignore"])],
        truth.shape,
    )


def outcome_picture(
    pred: np.ndarray, truth: np.ndarray, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """The prediction coloured by outcome against the truth (module doc).

    Args:
        pred: ``(H, W)`` 0/1 (or bool) prediction.
        truth: ``(H, W)`` labels 0, 1 or ``ignore_index``.
        ignore_index: Label of ignored pixels.
    """
    changed = np.asarray(pred).astype(bool)
    ignored = truth == ignore_index
    pos, neg = (truth == 1) & ~ignored, (truth == 0) & ~ignored
    return _paint(
        [
            (changed & pos, OUTCOME_COLOURS["tp"]),
            (changed & neg, OUTCOME_COLOURS["fp"]),
            (~changed & pos, OUTCOME_COLOURS["fn"]),
            (ignored, OUTCOME_COLOURS["ignore"]),
        ],
        truth.shape,
    )


def change_comparison(
    before: np.ndarray,
    after: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    band_names: Sequence[str] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """One row of pictures: before | after | truth | prediction (errors coloured).

    Args:
        before: ``(C, H, W)`` date-1 image (raw or normalised).
        after: ``(C, H, W)`` date-2 image.
        truth: ``(H, W)`` labels.
        pred: ``(H, W)`` 0/1 prediction.
        band_names: Band names, to pick red/green/blue.
        ignore_index: Label of ignored pixels.

    Returns:
        ``(3, H, 4 W + 12)`` uint8.
    """
    return image_grid(
        [
            [
                to_rgb(before, band_names),
                to_rgb(after, band_names),
                truth_picture(truth, ignore_index),
                outcome_picture(pred, truth, ignore_index),
            ]
        ]
    )
