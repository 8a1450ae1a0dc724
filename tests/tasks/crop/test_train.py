"""`sdrl crop train|evaluate|predict`: run folder, metrics against scikit-learn, maps, init,
resume and bad input, on tiny generated crop folders (tiny model, 4 months, 24-px patches)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, f1_score, jaccard_score

from sdrl.bands import preset_bands
from sdrl.checkpoint import read_checkpoint
from sdrl.cli import build_parser, main
from sdrl.cli.config import apply_config
from sdrl.cli.options import config_from_args
from sdrl.data.crop.dataset import CropDataset
from sdrl.data.crop.folder import crop_folder_info
from sdrl.data.crop.synth_folder import generate_crop_dataset
from sdrl.data.io import read_raster
from sdrl.errors import ConfigError
from sdrl.export import export_backbone
from sdrl.tasks.checkpoints import RunCheckpoint
from sdrl.tasks.crop.config import CropConfig
from sdrl.tasks.crop.inference import load_crop_model, predict_patches
from sdrl.tasks.crop.metrics import CropMetrics
from sdrl.tasks.crop.run import build_model, resolve_taxonomy
from sdrl.tasks.seeding import reseed
from tests.export.checkpoints import fake_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

S2 = [b.name for b in preset_bands("sentinel2-10")]
MONTHS = 4
# Tiny model, 4 months, batch 2, no loader processes: well under a second per step on a CPU.
TINY = ["--size", "tiny", "--months", str(MONTHS), "--batch-size", "2", "--num-workers", "0"]


def train_argv(data: Path, run: Path, *extra: str) -> list[str]:
    """Argv of a tiny ``sdrl crop train`` from ``data`` into ``run``, then ``extra``."""
    return ["crop", "train", "--data", str(data), "--out", str(run), *TINY, *extra]


def column(run: Path, name: str) -> list[float]:
    with open(run / "metrics.csv", newline="") as file:
        return [float(r[name]) for r in csv.DictReader(file) if r.get(name) not in (None, "")]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """20 generated 24-px crop patches (train 14, val 3, test 3), with priors."""
    out = tmp_path_factory.mktemp("crop") / "data"
    generate_crop_dataset(out, num=20, size=24, seed=0)
    return out


@pytest.fixture(scope="module")
def trained(data) -> Path:
    """Run folder of a 3-step tiny S2 + EnMAP run, validated once."""
    run = data.parent / "run"
    assert main(train_argv(data, run, "--max-steps", "3", "--log-every", "1")) == 0
    return run


@pytest.fixture(scope="module")
def swin_export(data) -> Path:
    """An ``sdrl export --temporal 4`` of a swin_tiny_test at the tiny preset's width."""
    folder = data.parent
    fake_checkpoint(folder / "swin.ckpt", "swin_tiny_test", S2, seed=3)
    return export_backbone(folder / "swin.ckpt", folder / "video", temporal=MONTHS).out


def predictions(checkpoint: Path, data: Path, decoding: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """``{id: (L, H, W) ids}``, all predictions and all labels of the test split, in order."""
    predictor = load_crop_model(checkpoint, device="cpu")
    dataset = CropDataset(
        data,
        "test",
        months=predictor.months,
        enmap=predictor.enmap,
        priors=predictor.priors,
        taxonomy=predictor.taxonomy,
        stats=predictor.stats,
    )
    by_id, preds, labels = {}, [], []
    for batch in predict_patches(predictor, dataset, decoding=decoding, batch_size=2):
        for i, patch_id in enumerate(batch["id"]):
            by_id[patch_id] = batch["pred"][i].numpy()
        preds.append(batch["pred"].numpy())
        labels.append(batch["label"].numpy())
    return by_id, np.concatenate(preds), np.concatenate(labels)


def sklearn_scores(truth: np.ndarray, pred: np.ndarray, background: bool) -> dict[str, float]:
    """One level's OA, mIoU and macro F1 from scikit-learn (the oracle; metrics.py's rules)."""
    if not background:  # pixels whose truth is background are not evaluated
        pred, truth = pred[truth > 0], truth[truth > 0]
    present = [int(k) for k in np.unique(truth) if background or k > 0]
    return {
        "oa": accuracy_score(truth, pred),
        "miou": jaccard_score(truth, pred, labels=present, average="macro", zero_division=0),
        "macro_f1": f1_score(truth, pred, labels=present, average="macro", zero_division=0),
    }


def test_train_writes_the_run_folder(data, trained):
    for name in ("config.yaml", "last.ckpt", "best.ckpt", "metrics.csv"):
        assert (trained / name).is_file(), name
    assert len(column(trained, "train/loss_step")) == 3
    for name in ("val/macro_f1", "val/macro_f1_l4", "val/nobg_macro_f1", "val/valid_paths"):
        values = column(trained, name)
        assert len(values) == 1 and 0 <= values[0] <= 1, name
    checkpoint = torch.load(trained / "best.ckpt", weights_only=True)  # plain data only
    header = checkpoint["sdrl"]
    assert header["kind"] == "crop" and header["model"] == "crop-dual-stream"
    assert header["bands"] == S2 and len(header["mean"]) == 10
    assert header["model_options"]["months"] == MONTHS and header["model_options"]["size"] == "tiny"
    assert header["months"] == MONTHS and len(header["enmap_mean"]) == 218  # flat extra
    assert checkpoint["callbacks"]["RunCheckpoint"]["monitor"] == "val/macro_f1"
    predictor = load_crop_model(trained / "best.ckpt", device="cpu")
    assert predictor.enmap and not predictor.priors and predictor.taxonomy.num_classes == (
        4, 6, 9, 11,
    )  # fmt: skip
    # the saved config is a valid --config giving the same settings
    parser = build_parser()
    argv = ["crop", "train", "--config", str(trained / "config.yaml")]
    apply_config(parser, argv)
    again = config_from_args(parser.parse_args(argv), CropConfig)
    assert yaml.safe_load((trained / "config.yaml").read_text())["months"] == MONTHS
    assert again.size == "tiny" and again.months == MONTHS and again.max_steps == 3


def test_evaluate_matches_scikit_learn_and_saves_maps(data, trained, tmp_path):
    out, maps = tmp_path / "metrics.json", tmp_path / "maps"
    argv = ["crop", "evaluate", "--data", str(data), "--checkpoint", str(trained / "best.ckpt")]
    assert main([*argv, "--out", str(out), "--save-predictions", str(maps)]) == 0
    result = json.loads(out.read_text())
    assert result["evaluated"]["split"] == "test" and result["evaluated"]["patches"] == 3
    assert result["evaluated"]["decoding"] == "independent"
    by_id, pred, truth = predictions(trained / "best.ckpt", data, "independent")
    # the same inference path, counted again from scratch
    predictor = load_crop_model(trained / "best.ckpt", device="cpu")
    metrics = CropMetrics(predictor.taxonomy.num_classes)
    metrics.update(torch.from_numpy(pred), torch.from_numpy(truth))
    again = metrics.compute()
    for scheme in ("with_background", "without_background"):
        assert result[scheme]["mean"] == pytest.approx(again[scheme]["mean"])
        levels = result[scheme]["levels"]
        assert len(levels) == 4
        for level, scores in enumerate(levels):
            t, p = truth[:, level].ravel(), pred[:, level].ravel()
            oracle = sklearn_scores(t, p, background=scheme == "with_background")
            for name, value in oracle.items():
                assert scores[name] == pytest.approx(value, abs=1e-9), (scheme, level, name)
        mean = {m: np.mean([s[m] for s in levels]) for m in ("oa", "miou", "macro_f1")}
        assert result[scheme]["mean"] == pytest.approx(mean)
    # valid paths: ids across the levels form a row of the taxonomy (or all background)
    paths = {tuple(p) for p in predictor.taxonomy.paths} | {(0, 0, 0, 0)}
    pixels = pred.transpose(0, 2, 3, 1).reshape(-1, 4)
    share = np.mean([tuple(p) in paths for p in pixels.tolist()])
    assert result["valid_paths"] == pytest.approx(share)
    # --save-predictions: <id>.tif (one band of ids per level) and <id>.png per patch
    assert sorted(p.stem for p in maps.glob("*.tif")) == sorted(by_id)
    for patch_id, ids in by_id.items():
        assert np.array_equal(read_raster(maps / f"{patch_id}.tif").data, ids)
        assert (maps / f"{patch_id}.png").stat().st_size > 0


def test_consistent_decoding_and_predict(data, trained, tmp_path):
    out = tmp_path / "consistent.json"
    checkpoint = str(trained / "last.ckpt")
    argv = ["--data", str(data), "--checkpoint", checkpoint, "--decoding", "consistent"]
    assert main(["crop", "evaluate", *argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["valid_paths"] == 1.0 and result["evaluated"]["decoding"] == "consistent"
    maps = tmp_path / "predicted"
    assert main(["crop", "predict", *argv, "--out", str(maps)]) == 0
    by_id, _, _ = predictions(trained / "last.ckpt", data, "consistent")
    assert sorted(p.stem for p in maps.glob("*.tif")) == sorted(by_id)
    for patch_id, ids in by_id.items():
        raster = read_raster(maps / f"{patch_id}.tif")
        assert raster.data.shape == (4, 24, 24) and np.array_equal(raster.data, ids)
        assert (maps / f"{patch_id}.png").is_file()


def test_s2_only_with_priors(data, tmp_path):
    run = tmp_path / "run"
    assert main(train_argv(data, run, "--max-steps", "1", "--no-enmap", "--priors")) == 0
    predictor = load_crop_model(run / "last.ckpt", device="cpu")
    assert predictor.model.spectral is None and not predictor.enmap and predictor.priors
    state = read_checkpoint(run / "last.ckpt")["state_dict"]
    assert not any(k.startswith("model.spectral.") for k in state)
    assert predictor.header.extra["enmap_mean"] == [] and predictor.header.extra["priors"]
    out = tmp_path / "metrics.json"
    argv = ["--data", str(data), "--checkpoint", str(run / "last.ckpt"), "--out", str(out)]
    assert main(["crop", "evaluate", *argv]) == 0
    evaluated = json.loads(out.read_text())["evaluated"]
    assert evaluated["enmap"] is False and evaluated["priors"] is True


def test_temporal_init_sets_only_the_temporal_encoder(data, swin_export, tmp_path):
    info = crop_folder_info(data)
    config = CropConfig(str(data), "unused", size="tiny", months=MONTHS)
    taxonomy = resolve_taxonomy(config, info)
    reseed(0)
    random_state = build_model(config, info, taxonomy).state_dict()
    config.temporal_init = str(swin_export)
    reseed(0)
    state = build_model(config, info, taxonomy).state_dict()
    exported = load_file(swin_export / "weights.safetensors")
    assert {k.removeprefix("temporal.") for k in state if k.startswith("temporal.")} == set(
        exported
    )
    changed = 0
    for key, value in state.items():
        if key.startswith("temporal."):
            assert torch.equal(value, exported[key.removeprefix("temporal.")]), key
            changed += not torch.equal(value, random_state[key])
        else:
            assert torch.equal(value, random_state[key]), key
    assert changed > 0
    # through the command line: the header records it; one AdamW step moves weights by ~lr
    run = tmp_path / "run"
    argv = train_argv(data, run, "--max-steps", "1", "--val-split", "none")
    assert main([*argv, "--temporal-init", str(swin_export)]) == 0
    checkpoint = read_checkpoint(run / "last.ckpt")
    assert checkpoint["sdrl"]["temporal_init"] == str(swin_export)
    tuned = checkpoint["state_dict"]["model.temporal.patch_embed.proj.weight"]
    assert (tuned - exported["patch_embed.proj.weight"]).abs().max() < 0.01


def test_resume(data, tmp_path, monkeypatch, capsys):
    steps = ["--max-steps", "4", "--checkpoint-every", "1", "--val-every", "2", "--seed", "7"]
    reference = tmp_path / "reference"
    assert main(train_argv(data, reference, *steps)) == 0
    capsys.readouterr()
    assert main([*train_argv(data, reference, *steps), "--resume"]) == 0
    assert "already reached its limit (step 4" in capsys.readouterr().out
    run = tmp_path / "run"
    save_last = RunCheckpoint._save_last

    def crash_after_step_3(self, trainer):
        save_last(self, trainer)
        if trainer.global_step == 3:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(RunCheckpoint, "_save_last", crash_after_step_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(train_argv(data, run, *steps))
    monkeypatch.undo()
    assert read_checkpoint(run / "last.ckpt")["global_step"] == 3
    assert main([*train_argv(data, run, *steps), "--resume"]) == 0
    a, b = read_checkpoint(reference / "last.ckpt"), read_checkpoint(run / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 4
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["callbacks"] == b["callbacks"]  # best val macro F1 and its step
    # settings that define the model must match
    assert main([*train_argv(data, run, *steps), "--resume", "--no-enmap"]) == 2
    assert "enmap" in capsys.readouterr().err


def test_crop_size_is_a_multiple_of_three():
    assert CropConfig("d", "o", crop_size=48).crop_size == 48  # not a multiple of 32
    assert CropConfig("d", "o", crop_size=21).crop_size == 21
    with pytest.raises(ConfigError, match="multiple of 3"):
        CropConfig("d", "o", crop_size=32)


def test_bad_input_is_one_line(data, trained, swin_export, tmp_path, capsys):
    def error(*argv: str) -> str:
        capsys.readouterr()
        assert main(list(argv)) == 2
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sdrl:")]
        assert len(lines) == 1 and lines[0].startswith("sdrl: error: "), lines
        return lines[0]

    def broken_copy(name: str, part: str, change, index: int = 1) -> tuple[Path, Path]:
        """A copy of ``data`` whose training patch ``index`` has ``part`` changed."""
        copy = tmp_path / name
        shutil.copytree(data, copy)
        listed = (copy / "train.txt").read_text().split()[index]
        patch = copy / "h5_data" / f"{listed}.h5"
        with h5py.File(patch, "a") as file:
            values = change(file[part][()])
            del file[part]
            if values is not None:
                file.create_dataset(part, data=values)
        return copy, patch

    # the whole training split in one batch, so the broken patch is read in step 1
    one_batch = ["--max-steps", "1", "--batch-size", "14", "--val-split", "none"]
    missing, patch = broken_copy("missing", "EnMAP_data", lambda values: None)
    message = error(*train_argv(missing, tmp_path / "r1", *one_batch))
    assert str(patch) in message and "EnMAP_data" in message
    # the first patch (whose header describes the folder) is refused before training
    missing, patch = broken_copy("first", "priors", lambda values: None, index=0)
    message = error(*train_argv(missing, tmp_path / "r0", "--priors"))
    assert str(patch) in message and "priors" in message and "Drop --priors" in message

    def outside(labels: np.ndarray) -> np.ndarray:
        labels[1, 0, 0] = 77  # level 2 has ids 0..5
        return labels

    bad_labels, patch = broken_copy("labels", "label", outside)
    message = error(*train_argv(bad_labels, tmp_path / "r2", *one_batch))
    assert str(patch) in message and "level 2" in message and "77" in message

    message = error(*train_argv(data, tmp_path / "r3", "--months", "13"))
    assert "--months 13" in message and "patch_000000.h5 has 12" in message

    rows = (data / "taxonomy.csv").read_text().splitlines()
    other = next(i for i, row in enumerate(rows[1:], 1) if row.split(",")[0] != "1")
    cells = rows[other].split(",")
    cells[2:4] = rows[1].split(",")[2:4]  # a level-2 class under two level-1 parents
    rows[other] = ",".join(cells)
    not_a_tree = tmp_path / "not_a_tree.csv"
    not_a_tree.write_text("\n".join(rows) + "\n")
    message = error(*train_argv(data, tmp_path / "r4", "--taxonomy", str(not_a_tree)))
    assert str(not_a_tree) in message and "tree" in message

    fake_checkpoint(tmp_path / "resnet.ckpt", "resnet_tiny", S2)
    resnet = export_backbone(tmp_path / "resnet.ckpt", tmp_path / "resnet").out
    message = error(*train_argv(data, tmp_path / "r5", "--temporal-init", str(resnet)))
    assert str(resnet) in message and "resnet_tiny export cannot initialise" in message

    argv = train_argv(data, tmp_path / "r6", "--spectral-init", str(swin_export))
    message = error(*argv, "--spectral-encoder", "transformer")
    assert "--spectral-init" in message and "--spectral-encoder" in message

    assert "--crop-size 20" in error(*train_argv(data, tmp_path / "r7", "--crop-size", "20"))
    for name in ("r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"):
        assert not (tmp_path / name / "last.ckpt").exists()

    change = tmp_path / "change.ckpt"
    fake_checkpoint(change, "resnet_tiny", ["red", "green", "blue"], kind="change")
    argv = ["crop", "evaluate", "--data", str(data), "--checkpoint", str(change)]
    message = error(*argv, "--out", str(tmp_path / "m.json"))
    assert str(change) in message and "crop" in message and "change" in message
    argv = ["crop", "predict", "--data", str(data), "--checkpoint", str(change)]
    assert str(change) in error(*argv, "--out", str(tmp_path / "maps"))


def test_a_broken_patch_read_by_a_loader_process_is_one_line(data, tmp_path, capsys):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    listed = (copy / "train.txt").read_text().split()[1]
    with h5py.File(copy / "h5_data" / f"{listed}.h5", "a") as file:
        del file["EnMAP_data"]
    argv = train_argv(copy, tmp_path / "run", "--max-steps", "1", "--batch-size", "14")
    assert main([*argv, "--val-split", "none", "--num-workers", "1"]) == 2
    assert f"{listed}.h5: expected a dataset EnMAP" in capsys.readouterr().err


def test_non_finite_crop_batches_are_named():
    from sdrl.tasks.base import nonfinite_tiles

    s2, enmap = torch.zeros(2, 3, 4, 6, 6), torch.zeros(2, 5, 2, 2)
    s2[1, 2, 0, 0, 0] = float("nan")
    enmap[0, 0, 0, 0] = float("inf")
    found = nonfinite_tiles({"s2": s2, "enmap": enmap, "id": ["a", "b"]})
    assert found == {"a": ["EnMAP"], "b": ["S2"]}
