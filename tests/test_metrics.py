"""Change metrics against scikit-learn on random predictions with ignore pixels."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sdrl.data.samples import IGNORE_INDEX
from sdrl.metrics import METRIC_KEYS, ChangeMetrics, ChangeScores

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def sklearn_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The reference: scikit-learn on the pixels whose target is not ignored."""
    # imported here so that the spawned workers of the all-reduce test start faster
    from sklearn.metrics import (
        accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
        jaccard_score,
        precision_score,
        recall_score,
    )

    keep = target != IGNORE_INDEX
    y, p = target[keep], pred[keep]
    (tn, fp), (fn, tp) = confusion_matrix(y, p, labels=[0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings of the edge cases
        return {
            "precision": precision_score(y, p, zero_division=0),
            "recall": recall_score(y, p, zero_division=0),
            "f1": f1_score(y, p, zero_division=0),
            "iou": jaccard_score(y, p, zero_division=0),
            "oa": accuracy_score(y, p),
            "kappa": cohen_kappa_score(y, p, replace_undefined_by=0.0),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
        }


def random_batches(seed: int, change: float, batches: int = 4) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batches):
        target = (rng.random((3, 32, 48)) < change).astype(np.int64)
        target[rng.random(target.shape) < 0.1] = IGNORE_INDEX
        # predictions correlated with the target so that kappa is not ~0
        pred = np.where(rng.random(target.shape) < 0.7, target == 1, rng.random(target.shape) < 0.3)
        out.append((pred.astype(np.int64), target))
    return out


def accumulate(batches: list[tuple[np.ndarray, ...]], device: str = "cpu") -> ChangeMetrics:
    metrics = ChangeMetrics()
    for pred, target in batches:
        metrics.update(torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device))
    return metrics


def check_equal(result: dict, expected: dict) -> None:
    assert set(METRIC_KEYS) <= set(result)
    for key in METRIC_KEYS:
        if key in ("tp", "fp", "fn", "tn"):
            assert result[key] == expected[key] and isinstance(result[key], int), key
        else:
            assert isinstance(result[key], float), key
            assert result[key] == pytest.approx(expected[key], abs=1e-12), key


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("seed", "change"), [(0, 0.5), (1, 0.05), (2, 0.01)])
def test_matches_sklearn(seed: int, change: float, device: str) -> None:
    batches = random_batches(seed, change)
    metrics = accumulate(batches, device)
    assert metrics.counts.device.type == device and metrics.counts.dtype == torch.int64
    result = metrics.compute()
    pred = np.concatenate([p.ravel() for p, _ in batches])
    target = np.concatenate([t.ravel() for _, t in batches])
    check_equal(result, sklearn_metrics(pred, target))
    assert result["ignored"] == int((target == IGNORE_INDEX).sum())


@pytest.mark.parametrize(
    ("pred_value", "target_value"),
    [(0, 0), (1, 0), (0, 1), (1, 1)],
    ids=["no-change-anywhere", "all-false-alarm", "all-missed", "all-change"],
)
def test_edge_cases_match_sklearn(pred_value: int, target_value: int) -> None:
    target = np.full((2, 16, 16), target_value, dtype=np.int64)
    target[:, :2] = IGNORE_INDEX
    pred = np.full_like(target, pred_value)
    pred[:, :2] = 1 - pred_value  # under ignore: must not count
    check_equal(accumulate([(pred, target)]).compute(), sklearn_metrics(pred, target))


def test_nothing_evaluated_is_zero() -> None:
    metrics = ChangeMetrics()
    metrics.update(torch.ones(1, 4, 4, dtype=torch.int64), torch.full((1, 4, 4), IGNORE_INDEX))
    result = metrics.compute()
    assert all(result[k] == 0 for k in METRIC_KEYS) and result["ignored"] == 16


def test_merge_reset_and_bool_input() -> None:
    batches = random_batches(3, 0.2, batches=6)
    whole = accumulate(batches).compute()
    merged = accumulate(batches[:2]).merge(accumulate(batches[2:]))
    assert merged.compute() == whole
    merged.reset()
    assert merged.counts.sum() == 0
    as_bool = ChangeMetrics()
    for pred, target in batches:
        as_bool.update(torch.from_numpy(pred).bool(), torch.from_numpy(target).to(torch.uint8))
    assert as_bool.compute() == whole


def test_bad_input() -> None:
    metrics = ChangeMetrics()
    with pytest.raises(ValueError, match="same shape"):
        metrics.update(torch.zeros(1, 4, 4, dtype=torch.int64), torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match="integer labels"):
        metrics.update(torch.rand(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.int64))
    metrics.update(torch.full((1, 2, 2), 2), torch.zeros(1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="4 pixels"):
        metrics.compute()
    metrics.reset()
    metrics.update(torch.zeros(1, 2, 2, dtype=torch.int64), torch.full((1, 2, 2), 7))
    with pytest.raises(ValueError, match="map labels"):
        metrics.compute()


def _scored(seed: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities on the bin grid (so binning loses nothing) and targets with ignore."""
    rng = np.random.default_rng(seed)
    target = (rng.random((3, 20, 30)) < 0.25).astype(np.int64)
    prob = np.clip(rng.normal(0.35 + 0.3 * target, 0.25), 0, 1)
    prob = np.minimum(np.floor(prob * bins), bins - 1) / bins + 0.25 / bins  # inside a bin
    target[rng.random(target.shape) < 0.1] = IGNORE_INDEX
    return prob.astype(np.float32), target


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_sklearn(seed: int) -> None:
    from sklearn.metrics import average_precision_score, f1_score

    prob, target = _scored(seed, bins=50)
    scores = ChangeScores(bins=50)
    scores.CHUNK = 257  # several chunks per update
    for image in range(3):
        scores.update(prob[image], target[image])
    result = scores.compute()
    keep = target != IGNORE_INDEX
    y, p = target[keep], prob[keep]
    assert result["average_precision"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    f1 = {k / 50: f1_score(y, (p >= k / 50).astype(int)) for k in range(50)}
    best = max(f1.values())
    assert result["best_f1"] == pytest.approx(best, abs=1e-12)
    assert f1[result["best_threshold"]] == pytest.approx(best, abs=1e-12)
    # merging accumulators = one accumulator over everything
    parts = [ChangeScores(bins=50) for _ in range(3)]
    for image, part in enumerate(parts):
        part.update(prob[image], target[image])
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.compute() == result


def test_scores_edge_cases_and_bad_input() -> None:
    scores = ChangeScores(bins=10)
    scores.update(np.full((4, 4), 0.7), np.zeros((4, 4), dtype=np.int64))
    assert scores.compute()["average_precision"] == 0.0  # no changed pixel: 0, like F1
    perfect = ChangeScores(bins=10)
    perfect.update(np.array([0.05, 0.15, 0.95, 1.0]), np.array([0, 0, 1, 1]))
    assert perfect.compute() == {"average_precision": 1.0, "best_f1": 1.0, "best_threshold": 0.9}
    with pytest.raises(ValueError, match="same size"):
        scores.update(np.zeros((2, 2)), np.zeros((2, 3), dtype=np.int64))
    for bad in (np.nan, 1.5, -0.1):
        with pytest.raises(ValueError, match="finite and in"):
            scores.update(np.array([bad, 0.5]), np.array([1, 0]))
    scores.update(np.array([np.nan]), np.array([IGNORE_INDEX]))  # ignored: not checked
    with pytest.raises(ValueError, match="merge 5 bins"):
        scores.merge(ChangeScores(bins=5))
    with pytest.raises(ValueError, match="bins"):
        ChangeScores(bins=0)


def _all_reduce_worker(rank: int, world: int, store: str, queue: mp.Queue) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        batches = random_batches(10, 0.3)
        metrics = accumulate(batches[rank::world]).all_reduce()
        queue.put((rank, metrics.compute()))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_sums_over_processes(tmp_path: Path) -> None:
    assert ChangeMetrics().all_reduce().counts.sum() == 0  # no process group: a no-op
    world = 2
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_all_reduce_worker, args=(r, world, str(tmp_path / "store"), queue))
        for r in range(world)
    ]
    for proc in procs:
        proc.start()
    results = dict(queue.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    whole = accumulate(random_batches(10, 0.3)).compute()
    assert results[0] == results[1] == whole
