"""Integration: real change-detection folders load as distributed (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from sdrl.data.datasets import ChangeDataset
from sdrl.data.samples import IGNORE_INDEX
from tests.conftest import realdata

pytestmark = pytest.mark.realdata


def test_levir_cd_256_as_distributed():
    root = realdata("cd", "levir_cd_256")
    dataset = ChangeDataset(root, "test", cache_stats=False)
    assert len(dataset) == 7
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample["image_a"].shape == (3, 256, 256)
        raw = rasterio.open(root / "label" / f"{sample['id']}.png").read(1)
        np.testing.assert_array_equal(sample["change"].numpy(), (raw == 255).astype(np.int64))
    nochange = ChangeDataset(root, "train", cache_stats=False)
    index = nochange.ids.tolist().index("train_386_0512_0768")
    assert int(nochange[index]["change"].sum()) == 0
    assert dataset.meta.label_values == {0: 0, 255: 1}
    assert not (root / "dataset.json").exists()


def test_whu_cd_1024_with_random_crops():
    root = realdata("cd", "whu_cd_1024")
    dataset = ChangeDataset(root, "all", crop_size=256, cache_stats=False)
    assert len(dataset) == 3
    torch.manual_seed(0)
    sample = dataset[0]
    assert sample["image_a"].shape == (3, 256, 256)
    assert set(sample["change"].unique().tolist()) <= {0, 1, IGNORE_INDEX}
    full = ChangeDataset(root, "all", cache_stats=False)[0]
    assert full["image_b"].shape == (3, 1024, 1024)
    assert 0 < float(full["change"].float().mean()) < 0.5
