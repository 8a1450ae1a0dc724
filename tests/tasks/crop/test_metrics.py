"""Crop metrics equal scikit-learn's, both schemes; the valid-path share."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, jaccard_score

from sdrl.tasks.crop.metrics import CropMetrics

NUM_CLASSES = (3, 5, 7)  # background included


def _sklearn(truth: np.ndarray, pred: np.ndarray, background: bool) -> dict[str, float]:
    if not background:
        keep = truth != 0
        truth, pred = truth[keep], pred[keep]
    labels = sorted(k for k in np.unique(truth) if background or k > 0)
    return {
        "oa": accuracy_score(truth, pred),
        "miou": jaccard_score(truth, pred, labels=labels, average="macro", zero_division=0),
        "macro_f1": f1_score(truth, pred, labels=labels, average="macro", zero_division=0),
    }


def test_scores_equal_sklearn_over_batches():
    gen = torch.Generator().manual_seed(0)
    metrics = CropMetrics(NUM_CLASSES)
    truths, preds = [], []
    for _ in range(3):
        truth = torch.stack(
            [torch.randint(0, k, (2, 9, 11), generator=gen) for k in NUM_CLASSES], 1
        )
        truth[:, 2][truth[:, 2] == 4] = 5  # class 4 of level 3 absent from the truth
        noise = torch.stack(
            [torch.randint(0, k, (2, 9, 11), generator=gen) for k in NUM_CLASSES], 1
        )
        pred = torch.where(torch.rand(truth.shape, generator=gen) < 0.6, truth, noise)
        metrics.update(pred, truth)
        truths.append(truth)
        preds.append(pred)
    truth, pred = torch.cat(truths), torch.cat(preds)
    out = metrics.compute()
    for scheme, background in (("with_background", True), ("without_background", False)):
        for level in range(len(NUM_CLASSES)):
            expected = _sklearn(
                truth[:, level].flatten().numpy(), pred[:, level].flatten().numpy(), background
            )
            for name, value in expected.items():
                assert out[scheme]["levels"][level][name] == pytest.approx(value, abs=1e-12)
        mean = np.mean([out[scheme]["levels"][lv]["macro_f1"] for lv in range(3)])
        assert out[scheme]["mean"]["macro_f1"] == pytest.approx(mean)
    assert out["valid_paths"] is None


def test_absent_class_is_skipped_even_when_predicted():
    metrics = CropMetrics((3,))
    truth = torch.tensor([0, 0, 1, 1]).view(1, 1, 1, 4)
    pred = torch.tensor([2, 0, 1, 1]).view(1, 1, 1, 4)  # class 2 predicted, absent in truth
    metrics.update(pred, truth)
    per_class = metrics.compute(per_class=True)["with_background"]["levels"][0]["per_class"]
    assert set(per_class) == {"0", "1"}
    assert per_class["0"]["f1"] == pytest.approx(2 / 3)


def test_valid_path_share_and_ignore():
    paths = torch.tensor([[1, 1], [1, 2], [2, 3]])
    metrics = CropMetrics((3, 4), paths=paths, ignore_index=255)
    pred = torch.tensor([[0, 0], [1, 2], [2, 3], [1, 3], [0, 1], [2, 2]]).T.reshape(1, 2, 1, 6)
    truth = pred.clone()
    truth[0, :, 0, 5] = 255  # the last pixel (an invalid path) is not evaluated
    metrics.update(pred, truth)
    out = metrics.compute()
    assert out["valid_paths"] == pytest.approx(3 / 5)  # 0-0, 1-2, 2-3 valid; 1-3, 0-1 not
    assert out["with_background"]["levels"][0]["pixels"] == 5


def test_bad_ids_are_reported():
    metrics = CropMetrics((3,))
    with pytest.raises(ValueError, match="level 1: ids must lie in 0..2"):
        metrics.update(torch.full((1, 1, 2, 2), 3), torch.zeros(1, 1, 2, 2, dtype=torch.long))
    empty = CropMetrics((3,)).compute()
    assert math.isnan(empty["with_background"]["mean"]["oa"])
