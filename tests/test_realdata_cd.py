"""Integration on real change-detection samples (skipped when ../shared/realdata is absent).

Nothing is written into the shared folders: finetuning runs with ``--no-cache-stats`` (the
statistics are computed, not cached into the folder's dataset.json) and evaluation only reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from sdrl.cli import main
from sdrl.metrics import METRIC_KEYS
from tests.conftest import realdata
from tests.runs import predict, tiny_finetune

pytestmark = [pytest.mark.realdata, pytest.mark.usefixtures("one_thread")]


def listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def levir_run(tmp_path_factory) -> Path:
    """A 2-step finetuning on LEVIR-CD as distributed (splits from the file-name prefixes)."""
    root = realdata("cd", "levir_cd_256")
    before = listing(root)
    run = tmp_path_factory.mktemp("levir") / "run"
    extra = ["--crop-size", "64", "--max-steps", "2", "--no-cache-stats", "--log-every", "1"]
    tiny_finetune(root, run, *extra)
    assert listing(root) == before and not (root / "dataset.json").exists()
    return run


def test_finetune_and_evaluate_on_levir_cd(levir_run, tmp_path):
    root = realdata("cd", "levir_cd_256")
    subset = json.loads((levir_run / "train_subset.json").read_text())
    assert subset["count"] == subset["total"] == 3  # train_* tiles
    meta = torch.load(levir_run / "best.ckpt", weights_only=True)["sdrl"]
    assert meta["label_values"] == {0: 0, 255: 1} and meta["in_channels"] == 3
    before = listing(root)
    out = tmp_path / "metrics.json"
    argv = [
        "evaluate",
        "--data",
        str(root),
        "--checkpoint",
        str(levir_run / "best.ckpt"),
        "--out",
        str(out),
        "--save-predictions",
        str(tmp_path / "preds"),
    ]
    assert main(argv) == 0
    assert listing(root) == before
    result = json.loads(out.read_text())
    assert all(key in result for key in METRIC_KEYS)
    assert result["split"] == "test" and result["tiles"] == 7
    assert result["pixels"] == 7 * 256 * 256 and result["protocol"]["name"] == "whole"
    for name in ("test_2_0000_0000.png", "test_2_0000_0000_compare.png"):
        assert (tmp_path / "preds" / name).is_file()  # PNG: the inputs have no CRS
    saved = rasterio.open(tmp_path / "preds" / "test_2_0000_0000.png").read(1)
    assert set(np.unique(saved)) <= {0, 255}


def test_predict_on_a_whu_cd_pair(levir_run, tmp_path):
    root = realdata("cd", "whu_cd_1024")
    before = listing(root)
    out = tmp_path / "change.tif"
    before_png, after_png = root / "A" / "000121.png", root / "B" / "000121.png"
    assert predict(levir_run / "last.ckpt", before_png, after_png, out, "--tile", "512") == 0
    assert listing(root) == before
    with rasterio.open(out) as dst:
        assert (dst.count, dst.height, dst.width) == (2, 1024, 1024)
        assert dst.crs is None
        prob = dst.read(1)
    assert np.isfinite(prob).all() and ((prob >= 0) & (prob <= 1)).all()
