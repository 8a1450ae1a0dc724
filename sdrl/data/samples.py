"""The sample and batch dictionaries, defined once for the whole package.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns, ``K`` semantic classes.

A **change sample** (:class:`~sdrl.data.datasets.ChangeDataset`) is a dict with

=============  ====================  ==========================================================
key            value                 meaning
=============  ====================  ==========================================================
``id``         ``str``               tile id (file stem)
``image_a``    ``(C, H, W)`` float32  date-1 image, normalised per band; nodata pixels are 0
``image_b``    ``(C, H, W)`` float32  date-2 image on the same grid, normalised the same way
``change``     ``(H, W)`` int64       0 = unchanged, 1 = changed, :data:`IGNORE_INDEX` = ignore
=============  ====================  ==========================================================

A **pretraining sample** (:class:`~sdrl.data.datasets.PretrainPairDataset`) has ``id``,
``image_a``, ``image_b`` as above and

=============  ====================  ==========================================================
``mask_a``     ``(H, W)`` int64       semantic class id of each pixel of A (0..K-1), or ignore
``mask_b``     ``(H, W)`` int64       the same for B (``mask_a`` when the folder has no label_B)
=============  ====================  ==========================================================

For a single-date pretraining folder (no ``B/``), ``image_b`` is ``image_a`` and ``mask_b`` is
``mask_a``: the two views then come from two augmentations of one image.

A **batch** is the same dict collated by :func:`collate`: tensors gain a leading ``B``
dimension, ``id`` becomes a list of ``B`` strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["IGNORE_INDEX", "IMAGE_KEYS", "MASK_KEYS", "collate"]

IGNORE_INDEX = 255
"""Label value that losses and metrics skip, in every mask tensor of the package."""

IMAGE_KEYS = ("image_a", "image_b")
"""Keys of image tensors ``(C, H, W)``: resampled bilinearly, photometrically augmented."""

MASK_KEYS = ("change", "mask_a", "mask_b")
"""Keys of label tensors ``(H, W)``: resampled nearest, padded with :data:`IGNORE_INDEX`."""


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch.

    Args:
        samples: Sample dicts with the same keys and tensor shapes.

    Returns:
        A dict with each tensor stacked to ``(B, ...)`` and every other value gathered in a list.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        batch[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return batch
