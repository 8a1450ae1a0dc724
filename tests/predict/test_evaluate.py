"""`sdrl evaluate`: metrics equal scikit-learn's on the saved maps, protocols, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
)

from sdrl.cli import main
from sdrl.data.datasets import ChangeDataset
from sdrl.data.io import read_raster, write_raster
from sdrl.data.synth import generate_dataset
from sdrl.errors import ConfigError
from sdrl.evaluation import evaluate as evaluate_fn
from sdrl.metrics import METRIC_KEYS
from sdrl.predict import predict_change
from sdrl.predict.model import load_change_model
from sdrl.predict.plan import TilePlan
from sdrl.predict.windows import StitchedImage, predict_windows
from tests.runs import predict, synth_data, tiny_finetune

pytestmark = pytest.mark.usefixtures("one_thread")

KEYS = (
    *METRIC_KEYS,
    "ignored",
    "split",
    "tiles",
    "pixels",
    "protocol",
    "threshold",
    "ignore_handling",
    "ignore_label",
    "checkpoint",
    "data",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synth_data(tmp_path_factory, "cd", "change", num=10, size=64, bands=4, seed=0)


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ft") / "run"
    extra = ["--max-steps", "3", "--val-split", "none"]
    return tiny_finetune(data, run, *extra, checkpoint="last.ckpt")


@pytest.fixture(scope="module")
def with_ignore(data, tmp_path_factory) -> Path:
    """The dataset with ignore_index 255 declared and an unlabelled block in every label."""
    out = tmp_path_factory.mktemp("ign") / "data"
    shutil.copytree(data, out)
    meta = json.loads((out / "dataset.json").read_text())
    meta["ignore_index"] = 255
    (out / "dataset.json").write_text(json.dumps(meta))
    for i, path in enumerate(sorted((out / "label").glob("*.tif"))):
        raster = read_raster(path)
        raster.data[:, 5 + i : 20 + i, 10:30] = 255
        write_raster(path, raster.data, crs=raster.crs, transform=raster.transform)
    return out


@pytest.fixture(scope="module")
def threshold(data, checkpoint) -> str:
    """The median change probability of the tiles: a threshold that gives both outcomes."""
    loaded = load_change_model(checkpoint)
    dataset = ChangeDataset(data, "all")
    dataset.mean = np.asarray(loaded.mean, dtype=np.float32)[:, None, None]
    dataset.std = np.asarray(loaded.std, dtype=np.float32)[:, None, None]
    images = [
        StitchedImage(
            i, s["image_a"].numpy(), s["image_b"].numpy(), TilePlan.build(64, 64, 64, 0), "blend"
        )
        for i, s in enumerate(dataset[i] for i in range(len(dataset)))
    ]
    probs = np.concatenate([p.ravel() for _, p in predict_windows(loaded.model, images)])
    return f"{float(np.median(probs)):.6f}"


def evaluate(data: Path, checkpoint: Path, out: Path, *extra: str) -> dict:
    argv = ["evaluate", "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, *extra]) == 0
    return json.loads(out.read_text())


def test_metrics_equal_sklearn_on_the_saved_predictions(
    with_ignore, checkpoint, threshold, tmp_path
):
    preds = tmp_path / "preds"
    result = evaluate(
        with_ignore,
        checkpoint,
        tmp_path / "m" / "metrics.json",
        "--split",
        "all",
        "--save-predictions",
        str(preds),
        "--tile",
        "32",
        "--overlap",
        "8",
        "--threshold",
        threshold,
    )
    assert all(k in result for k in KEYS) and result["tiles"] == 10 and result["split"] == "all"
    truth, predicted = [], []
    for label in sorted((with_ignore / "label").glob("*.tif")):
        with rasterio.open(preds / label.name) as src, rasterio.open(label) as ref:
            assert src.crs == ref.crs and src.transform == ref.transform  # georeferenced map
            predicted.append(src.read(1).ravel())
            truth.append(ref.read(1).ravel())
        picture = rasterio.open(preds / f"{label.stem}_compare.png").read()
        assert picture.shape == (3, 64, 4 * 64 + 12)
    y_true, y_pred = np.concatenate(truth), np.concatenate(predicted)
    valid = y_true != 255
    assert result["ignored"] == int((~valid).sum()) > 0
    y_true, y_pred = y_true[valid], y_pred[valid]
    assert set(np.unique(y_pred)) == {0, 1} and set(np.unique(y_true)) == {0, 1}
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    assert (result["tp"], result["fp"], result["fn"], result["tn"]) == (tp, fp, fn, tn)
    assert result["pixels"] == tp + fp + fn + tn
    expected = {
        "precision": precision_score(y_true, y_pred, zero_division=0),
        "recall": recall_score(y_true, y_pred, zero_division=0),
        "f1": f1_score(y_true, y_pred, zero_division=0),
        "iou": jaccard_score(y_true, y_pred, zero_division=0),
        "oa": accuracy_score(y_true, y_pred),
        "kappa": cohen_kappa_score(y_true, y_pred),
    }
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key
    assert result["ignore_label"] == 255 and "ignore" in result["ignore_handling"]
    # per image: the same counts image by image, sklearn's F1 each, their mean over images
    per = result["per_image"]
    assert len(per) == 10
    for key in ("tp", "fp", "fn", "tn"):
        assert sum(v[key] for v in per.values()) == result[key]
    f1s = []
    for label in sorted((with_ignore / "label").glob("*.tif")):
        with rasterio.open(preds / label.name) as src, rasterio.open(label) as ref:
            t, p = ref.read(1).ravel(), src.read(1).ravel()
        t, p = t[t != 255], p[t != 255]
        assert per[label.stem]["f1"] == pytest.approx(f1_score(t, p, zero_division=0), abs=1e-12)
        if (t == 1).any():
            f1s.append(f1_score(t, p, zero_division=0))
    assert result["mean_image_f1"] == pytest.approx(np.mean(f1s), abs=1e-12)


def test_protocols_are_recorded_and_whole_matches_sdrl_predict(
    data, checkpoint, threshold, tmp_path
):
    whole = evaluate(
        data,
        checkpoint,
        tmp_path / "w.json",
        "--tile",
        "32",
        "--overlap",
        "8",
        "--save-predictions",
        str(tmp_path / "w"),
        "--threshold",
        threshold,
    )
    assert whole["protocol"] == {
        "name": "whole",
        "tile": 32,
        "overlap": 8,
        "stitch": "blend",
        "description": whole["protocol"]["description"],
    }
    assert whole["split"] == "test" and whole["tiles"] == 1
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert whole["checkpoint"]["sha256"] == sha and whole["checkpoint"]["global_step"] == 3
    # the same tiling and stitching as `sdrl predict` on the tile's files
    tile_id = ChangeDataset(data, "test").ids[0]
    out = tmp_path / "predict.tif"
    before, after = data / "A" / f"{tile_id}.tif", data / "B" / f"{tile_id}.tif"
    extra = ["--tile", "32", "--overlap", "8", "--outputs", "binary", "--threshold", threshold]
    assert predict(checkpoint, before, after, out, *extra) == 0
    mine = rasterio.open(tmp_path / "w" / f"{tile_id}.tif").read(1)
    theirs = rasterio.open(out).read(1)
    assert 0 < mine.mean() < 1 and np.mean(theirs != mine) < 1e-3  # float32 vs 64 at the edge
    # the threshold-free metrics: sklearn's on predict's probabilities (binned as evaluate's)
    extra[extra.index("binary")] = "probability"
    assert predict(checkpoint, before, after, tmp_path / "prob.tif", *extra) == 0
    prob = rasterio.open(tmp_path / "prob.tif").read(1).ravel().astype(np.float64)
    label = rasterio.open(data / "label" / f"{tile_id}.tif").read(1).ravel()
    keep = label != 255
    binned = np.minimum(np.floor(prob[keep] * 1000), 999)
    ap = average_precision_score(label[keep], binned)
    assert whole["average_precision"] == pytest.approx(ap, abs=2e-3)
    assert whole["best_f1"] >= whole["f1"] - 1e-3 and 0 <= whole["best_threshold"] < 1
    crops = evaluate(data, checkpoint, tmp_path / "c.json", "--protocol", "crops")
    assert crops["protocol"]["name"] == "crops" and crops["protocol"]["tile"] is None
    assert crops["protocol"]["overlap"] == 0 and crops["pixels"] == 64 * 64
    cut = evaluate(data, checkpoint, tmp_path / "c32.json", "--protocol", "crops", "--tile", "32")
    assert cut["protocol"]["tile"] == 32 and "32x32 crops" in cut["protocol"]["description"]


def test_evaluate_and_predict_share_one_precision(data, checkpoint, threshold, tmp_path):
    """The maps behind evaluate's metrics are predict's maps, also in half precision."""
    tile_id = ChangeDataset(data, "test").ids[0]
    before, after = data / "A" / f"{tile_id}.tif", data / "B" / f"{tile_id}.tif"
    window = ["--tile", "32", "--overlap", "8", "--stitch", "centre", "--threshold", threshold]
    for precision in ("auto", "bf16"):
        saved = tmp_path / precision
        extra = [*window, "--save-predictions", str(saved), "--precision", precision]
        result = evaluate(data, checkpoint, tmp_path / f"{precision}.json", *extra)
        used = "32" if precision == "auto" else precision  # auto is float32 on CPU
        assert result["inference"] == {"device": "cpu", "precision": used}
        out = tmp_path / f"{precision}.tif"
        argv = [*window, "--outputs", "binary", "--precision", precision, "--device", "cpu"]
        assert predict(checkpoint, before, after, out, *argv) == 0
        with rasterio.open(out) as src:
            assert src.tags()["precision"] == used
            theirs = src.read(1)
        mine = rasterio.open(saved / f"{tile_id}.tif").read(1)
        assert 0 < mine.mean() < 1 and np.array_equal(mine, theirs)
    with pytest.raises(ConfigError, match="--precision"):
        evaluate_fn(data, checkpoint, tmp_path / "x.json", precision="64")
    assert not (tmp_path / "x.json").exists()


def test_windowed_inference_equals_the_raster_engine(data, checkpoint, tmp_path):
    loaded = load_change_model(checkpoint)
    dataset = ChangeDataset(data, "all")
    dataset.mean = np.asarray(loaded.mean, dtype=np.float32)[:, None, None]
    dataset.std = np.asarray(loaded.std, dtype=np.float32)[:, None, None]
    samples = [dataset[i] for i in range(3)]
    for stitch in ("blend", "centre"):
        images = [
            StitchedImage(
                s["id"],
                s["image_a"].numpy(),
                s["image_b"].numpy(),
                TilePlan.build(64, 64, 32, 12),
                stitch,
            )
            for s in samples
        ]
        results = list(predict_windows(loaded.model, images, batch_size=5))
        assert [k for k, _ in results] == [s["id"] for s in samples]  # input order
        for tile_id, prob in results:
            out = tmp_path / f"{tile_id}_{stitch}.tif"
            predict_change(
                loaded.model,
                data / "A" / f"{tile_id}.tif",
                data / "B" / f"{tile_id}.tif",
                out,
                mean=loaded.mean,
                std=loaded.std,
                tile=32,
                overlap=12,
                stitch=stitch,
                outputs=["probability"],
                progress=False,
            )
            np.testing.assert_allclose(rasterio.open(out).read(1), prob, atol=2e-5)


def test_bad_input_and_no_writes_into_data(data, checkpoint, tmp_path, capsys, monkeypatch):
    def error(*extra: str, data_dir: Path = data, ckpt: Path = checkpoint, out: Path) -> str:
        argv = ["evaluate", "--data", str(data_dir), "--checkpoint", str(ckpt), "--out", str(out)]
        assert main([*argv, *extra]) == 2
        assert not out.exists()
        return capsys.readouterr().err

    out = tmp_path / "metrics.json"
    pre = tmp_path / "pre.ckpt"
    torch.save({"state_dict": {}, "sdrl": {"kind": "pretrain", "method": "sdrl", "data": "x"}}, pre)
    assert "finetune it first" in error(ckpt=pre, out=out)
    three = tmp_path / "three"
    generate_dataset(three, kind="change", num=3, size=64, bands=3, seed=0)
    assert "4 bands" in error("--split", "all", data_dir=three, out=out)
    empty = tmp_path / "empty"
    shutil.copytree(data, empty)
    (empty / "list" / "test.txt").write_text("\n")
    assert "empty" in error(data_dir=empty, out=out)
    assert "split" in error("--split", "nope", out=out)
    assert "multiple of 32" in error("--tile", "48", out=out)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "folder" in error(out=blocker / "metrics.json")
    # a failure mid-way leaves no metrics.json behind
    monkeypatch.setattr("sdrl.evaluation.predict_windows", _failing)
    with pytest.raises(RuntimeError, match="boom"):
        main(["evaluate", "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out)])
    assert not out.exists()
    monkeypatch.undo()
    # the data folder is only read: statistics are not cached into it
    bare = tmp_path / "bare"
    shutil.copytree(data, bare)
    (bare / "dataset.json").unlink()
    before = sorted(p.relative_to(bare) for p in bare.rglob("*"))
    evaluate(bare, checkpoint, out)
    assert sorted(p.relative_to(bare) for p in bare.rglob("*")) == before


def _failing(*args, **kwargs):
    raise RuntimeError("boom")
    yield


def test_windows_of_different_sizes_are_never_batched_together(data, checkpoint):
    """Images smaller than the window are predicted in one pass of their own size: a batch
    must not mix those with other images' windows (np.stack failed on OSCD's small cities)."""
    loaded = load_change_model(checkpoint)
    dataset = ChangeDataset(data, "all")
    samples = [dataset[i] for i in range(3)]
    plans = [TilePlan.build(64, 64, 32, 12), TilePlan.build(64, 64, 64, 0)] * 2

    def images() -> list[StitchedImage]:
        return [
            StitchedImage(i, s["image_a"].numpy(), s["image_b"].numpy(), plan, "blend")
            for i, (s, plan) in enumerate(zip(samples * 2, plans[:3] * 2, strict=True))
        ]

    batched = dict(predict_windows(loaded.model, images(), batch_size=5))
    alone = dict(predict_windows(loaded.model, images(), batch_size=1))
    assert sorted(batched) == sorted(alone) == list(range(6))
    for key, prob in alone.items():
        np.testing.assert_allclose(batched[key], prob, atol=1e-6)
