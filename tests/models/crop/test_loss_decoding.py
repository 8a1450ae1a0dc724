"""Hierarchical loss and decoding, against plain loops."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from sdrl.models.crop import (
    decode_consistent,
    decode_independent,
    hierarchical_loss,
    valid_path_share,
)
from sdrl.models.crop.decoding import PATH_CHUNK


def random_tree(classes: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """One path per class id >= 1 of the last level, each id's parent drawn at random."""
    gen = torch.Generator().manual_seed(seed)
    parents = [
        torch.randint(1, up, (down,), generator=gen) for up, down in itertools.pairwise(classes)
    ]
    rows = []
    for leaf in range(1, classes[-1]):
        path = [leaf]
        for level in range(len(classes) - 2, -1, -1):
            path.insert(0, int(parents[level][path[0]]))
        rows.append(path)
    return torch.tensor(rows)


def brute_force(logits: list[torch.Tensor], paths: torch.Tensor) -> torch.Tensor:
    candidates = [tuple(row) for row in paths.tolist()] + [(0,) * len(logits)]
    logp = [torch.log_softmax(x.double(), dim=1) for x in logits]
    batch, _, height, width = logits[0].shape
    out = torch.zeros(batch, len(logits), height, width, dtype=torch.long)
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                scores = [
                    sum(float(logp[level][b, path[level], i, j]) for level in range(len(path)))
                    for path in candidates
                ]
                best = candidates[max(range(len(scores)), key=scores.__getitem__)]
                out[b, :, i, j] = torch.tensor(best)
    return out


@pytest.mark.parametrize("classes", [(4, 7, 9), (3, 6, 12, 45)])
def test_consistent_decoding_is_the_best_valid_path(classes):
    paths = random_tree(classes, seed=len(classes))
    gen = torch.Generator().manual_seed(1)
    logits = [torch.randn(2, k, 5, 6, generator=gen) * 3 for k in classes]
    got = decode_consistent(logits, paths)
    assert got.shape == (2, len(classes), 5, 6) and got.dtype == torch.long
    assert torch.equal(got, brute_force(logits, paths))
    assert valid_path_share(got, paths) == 1.0
    assert valid_path_share(decode_independent(logits), paths) < 1.0
    if classes[-1] > PATH_CHUNK:  # several chunks were scored
        assert len(paths) > 2 * PATH_CHUNK


def test_consistent_decoding_differs_from_the_independent_argmax():
    paths = torch.tensor([[1, 1], [2, 2]])
    level0 = torch.tensor([0.01, 0.55, 0.44]).log()  # argmax 1
    level1 = torch.tensor([0.01, 0.04, 0.95]).log()  # argmax 2: (1, 2) is no path
    logits = [level0.view(1, 3, 1, 1), level1.view(1, 3, 1, 1)]
    assert decode_independent(logits).flatten().tolist() == [1, 2]
    assert decode_consistent(logits, paths).flatten().tolist() == [2, 2]
    assert valid_path_share(decode_independent(logits), paths) == 0.0


def test_valid_path_share_by_hand():
    paths = torch.tensor([[1, 1], [1, 3], [2, 2]])
    pred = torch.tensor([[[1, 1], [0, 2]], [[1, 2], [0, 2]]]).unsqueeze(0)  # (1, 2, 2, 2)
    # pixels (level0, level1): (1,1) valid, (1,2) no, (0,0) background, (2,2) valid
    assert valid_path_share(pred, paths) == 0.75
    assert valid_path_share(torch.full((1, 2, 1, 1), -1), paths) == 0.0
    with pytest.raises(ValueError, match="paths must be"):
        valid_path_share(pred, torch.tensor([1, 1]))


def test_decoding_is_memory_sane_at_full_size():
    classes = (7, 37, 83, 102)
    paths = random_tree(classes)
    logits = [torch.randn(1, k, 192, 192) for k in classes]
    got = decode_consistent(logits, paths)
    assert got.shape == (1, 4, 192, 192) and valid_path_share(got, paths) == 1.0


def test_hierarchical_loss_is_the_sum_of_level_cross_entropies():
    gen = torch.Generator().manual_seed(0)
    classes = (3, 5)
    logits = [torch.randn(2, k, 4, 4, generator=gen, requires_grad=True) for k in classes]
    label = torch.stack([torch.randint(0, k, (2, 4, 4), generator=gen) for k in classes], dim=1)
    label[0, :, 0] = 255
    total, terms = hierarchical_loss(logits, label, ignore_index=255)
    expected = [F.cross_entropy(x, label[:, i], ignore_index=255) for i, x in enumerate(logits)]
    torch.testing.assert_close(terms, expected)
    torch.testing.assert_close(total, expected[0] + expected[1])
    class_weights = torch.tensor([0.5, 1.0, 2.0])
    total, terms = hierarchical_loss(logits, label, weights=[class_weights, 3.0], ignore_index=255)
    weighted = F.cross_entropy(logits[0], label[:, 0], weight=class_weights, ignore_index=255)
    torch.testing.assert_close(terms, [weighted, 3.0 * expected[1]])
    empty = torch.full_like(label, 255)
    total, terms = hierarchical_loss(logits, empty, ignore_index=255)
    assert total.item() == 0.0 and not math.isnan(total.item())
    total.backward()  # still part of the graph
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in logits)
    with pytest.raises(ValueError, match="label must be"):
        hierarchical_loss(logits, label[:, :1])
