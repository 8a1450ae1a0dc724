"""`sdrl finetune`: CLI, label fractions, initialisation, freezing, losses, resume, bad input."""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from sdrl.checkpoint import read_checkpoint
from sdrl.cli import build_parser, main
from sdrl.cli.config import apply_config
from sdrl.cli.options import config_from_args
from sdrl.data.datasets import ChangeDataset
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.synth import generate_dataset
from sdrl.predict.model import load_change_model
from sdrl.tasks.change.config import FinetuneConfig
from sdrl.tasks.change.loss import ChangeLoss, auto_change_weight, count_change_pixels
from sdrl.tasks.change.run import build_model, choose_tiles, model_options, resolve_config
from sdrl.tasks.checkpoints import RunCheckpoint
from sdrl.tasks.seeding import reseed
from tests.runs import finetune_argv, synth_data, tiny_pretrain

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """10 bitemporal 64-px change scenes, 4 bands: 8 train, 1 val, 1 test tile."""
    return synth_data(tmp_path_factory, "cd", "change", num=10, size=64, bands=4, seed=0)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """best.ckpt of a 2-step `sdrl pretrain` run (resnet_tiny, 4 bands)."""
    data = synth_data(tmp_path_factory, "pre", "pretrain", num=4, size=64, bands=4, seed=1)
    extra = ["--max-steps", "2", "--hidden-dim", "16", "--output-dim", "8", "--probe", "none"]
    return tiny_pretrain(data, data.parent / "run", *extra)


def column(run: Path, name: str) -> list[float]:
    with open(run / "metrics.csv", newline="") as file:
        return [float(r[name]) for r in csv.DictReader(file) if r.get(name) not in (None, "")]


def test_finetune_cli_writes_the_run_folder(data, tmp_path):
    run = tmp_path / "run"
    assert main(finetune_argv(data, run, "--max-steps", "3", "--log-every", "1")) == 0
    for name in ("config.yaml", "last.ckpt", "best.ckpt", "metrics.csv", "train_subset.json"):
        assert (run / name).is_file(), name
    assert len(column(run, "train/loss_step")) == 3 and len(column(run, "train/lr")) == 3
    for name in ("val/precision", "val/recall", "val/f1", "val/iou", "val/loss"):
        assert len(column(run, name)) == 1 and 0 <= column(run, name)[0] <= 10, name
    checkpoint = torch.load(run / "best.ckpt", weights_only=True)  # plain data only
    meta = checkpoint["sdrl"]
    assert meta["kind"] == "change" and meta["model"] == "siamese" and meta["in_channels"] == 4
    assert meta["backbone"] == "resnet_tiny" and meta["bands"] == ["red", "green", "blue", "nir"]
    assert len(meta["mean"]) == len(meta["std"]) == 4 and meta["ignore"] == IGNORE_INDEX
    assert meta["model_options"] == {
        "decoder_channels": 16,
        "out_channels": 2,
        "fusion": "absdiff",
        "head": "fpn",
    }
    assert meta["output"] == "softmax" and meta["tile_multiple"] == 32
    assert checkpoint["callbacks"]["RunCheckpoint"]["monitor"] == "val/f1"
    loaded = load_change_model(run / "best.ckpt")
    assert loaded.global_step == 3 and not loaded.model.training
    # change weight "auto": sqrt(unchanged / changed) of the training labels
    train = ChangeDataset(data, "train")
    assert meta["change_weight"] == pytest.approx(auto_change_weight(*count_change_pixels(train)))
    # the saved config is a valid --config that gives the same settings
    parser = build_parser()
    argv = ["finetune", "--config", str(run / "config.yaml")]
    apply_config(parser, argv)
    again = config_from_args(parser.parse_args(argv), FinetuneConfig)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model-option"] == ["decoder_channels=16"] and saved["backbone"] == "resnet_tiny"
    assert again.model_options == {"decoder_channels": 16} and again.max_steps == 3


def test_label_fraction_is_a_deterministic_subset(data, tmp_path):
    same = choose_tiles(100, 0.1, seed=3)
    assert len(same) == 10 and np.array_equal(same, choose_tiles(100, 0.1, seed=3))
    assert not np.array_equal(same, choose_tiles(100, 0.1, seed=4))
    assert set(choose_tiles(100, 0.05, seed=3)) <= set(same)  # nested for one seed
    assert np.array_equal(choose_tiles(100, 1.0, seed=3), np.arange(100))
    assert len(choose_tiles(100, 0.001, seed=3)) == 1  # at least one tile
    run = tmp_path / "run"
    argv = finetune_argv(data, run, "--max-steps", "1", "--label-fraction", "0.5", "--seed", "5")
    assert main(argv) == 0
    subset = json.loads((run / "train_subset.json").read_text())
    ids = ChangeDataset(data, "train").ids.tolist()
    expected = [ids[i] for i in choose_tiles(len(ids), 0.5, seed=5)]
    assert subset["ids"] == expected and subset["count"] == 4 and subset["total"] == 8
    assert subset["label_fraction"] == 0.5 and subset["label_seed"] == 5
    meta = read_checkpoint(run / "last.ckpt")["sdrl"]
    assert meta["train_tiles"] == 4 and meta["train_tiles_total"] == 8


def test_init_from_a_pretraining_checkpoint_changes_only_the_encoder(data, pretrained):
    pre = read_checkpoint(pretrained)["state_dict"]
    backbone = {
        k.removeprefix("method.backbone."): v
        for k, v in pre.items()
        if k.startswith("method.backbone.")
    }
    config = resolve_config(FinetuneConfig(str(data), "unused", init=str(pretrained)))
    assert config.backbone == "resnet_tiny"  # taken from the checkpoint
    options = model_options(config)
    reseed(0)
    random_model = build_model(FinetuneConfig(str(data), "x", backbone="resnet_tiny"), 4, options)
    reseed(0)
    model = build_model(config, 4, options)
    changed = 0
    for key, value in model.state_dict().items():
        if key.startswith("encoder."):
            assert torch.equal(value, backbone[key.removeprefix("encoder.")]), key
            changed += not torch.equal(value, random_model.state_dict()[key])
        else:
            assert torch.equal(value, random_model.state_dict()[key]), key
    assert changed > 0


def test_frozen_encoder_and_linear_probe_keep_the_pretrained_encoder(data, pretrained, tmp_path):
    pre = read_checkpoint(pretrained)["state_dict"]

    def encoder_unchanged(run: Path) -> bool:
        state = read_checkpoint(run / "last.ckpt")["state_dict"]
        keys = [k for k in state if k.startswith("model.encoder.")]
        return bool(keys) and all(
            torch.equal(state[k], pre[k.replace("model.encoder.", "method.backbone.")])
            for k in keys
        )

    base = ["--init", str(pretrained), "--val-split", "none", "--log-every", "1"]
    frozen = tmp_path / "frozen"
    argv = finetune_argv(data, frozen, *base, "--max-epochs", "1", "--freeze-encoder-epochs", "1")
    assert main(argv) == 0
    assert encoder_unchanged(frozen)  # parameters and BatchNorm statistics
    thawed = tmp_path / "thawed"
    argv = finetune_argv(data, thawed, *base, "--max-epochs", "2", "--freeze-encoder-epochs", "1")
    assert main(argv) == 0
    assert not encoder_unchanged(thawed)
    probe = tmp_path / "probe"
    assert main(finetune_argv(data, probe, *base, "--max-steps", "2", "--head", "linear")) == 0
    assert encoder_unchanged(probe)
    assert load_change_model(probe / "last.ckpt").meta["model_options"]["head"] == "linear"


def test_unet_with_bce_dice_trains_and_reloads(data, tmp_path):
    run = tmp_path / "run"
    argv = [
        "finetune",
        "--data",
        str(data),
        "--out",
        str(run),
        "--model",
        "unet",
        "--loss",
        "bce-dice",
        "--batch-size",
        "2",
        "--num-workers",
        "0",
        "--max-steps",
        "2",
        "--model-option",
        "base_width=4",
        "--model-option",
        "depth=2",
        "--change-weight",
        "3",
        "--early-stopping-patience",
        "2",
    ]
    assert main(argv) == 0
    loaded = load_change_model(run / "best.ckpt")
    meta = loaded.meta
    assert meta["model"] == "unet" and meta["backbone"] is None and meta["output"] == "sigmoid"
    assert meta["change_weight"] == 3.0 and meta["tile_multiple"] == 4
    assert loaded.model.out_channels == 1


def test_losses_weight_change_and_skip_ignore():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, generator=gen)
    target = torch.randint(0, 2, (2, 8, 8), generator=gen)
    target[0, :2] = IGNORE_INDEX
    weight = torch.tensor([1.0, 3.0])
    expected = F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE_INDEX)
    assert torch.allclose(ChangeLoss("ce", 3.0)(logits, target)["loss"], expected)
    terms = ChangeLoss("bce-dice", 2.0)(logits[:, :1], target)
    assert set(terms) == {"loss", "bce", "dice"} and torch.isfinite(terms["loss"])
    everything_ignored = torch.full_like(target, IGNORE_INDEX)
    for kind, k in (("ce", 2), ("bce-dice", 1)):
        assert float(ChangeLoss(kind)(logits[:, :k], everything_ignored)["loss"]) == 0.0
    assert auto_change_weight(900, 100) == pytest.approx(3.0)
    assert auto_change_weight(10, 0) == 1.0 and auto_change_weight(1, 10) == 1.0
    assert math.isclose(auto_change_weight(10**9, 1), 100.0)


def test_early_stopping_on_val_f1(data, tmp_path):
    run = tmp_path / "run"
    argv = finetune_argv(
        data,
        run,
        "--max-steps",
        "12",
        "--val-every",
        "1",
        "--lr",
        "1e-12",
        "--early-stopping-patience",
        "1",
    )
    assert main(argv) == 0  # f1 barely moves with lr 1e-12: it stops long before step 12
    checkpoint = read_checkpoint(run / "last.ckpt")
    assert checkpoint["global_step"] < 12
    stopper = next(v for k, v in checkpoint["callbacks"].items() if k.startswith("EarlyStopping"))
    assert stopper["wait_count"] >= 1


def test_resume_after_a_crash_ends_with_the_same_weights(data, tmp_path, monkeypatch):
    steps = ["--max-steps", "6", "--checkpoint-every", "1", "--val-every", "3", "--seed", "7"]
    reference = tmp_path / "reference"
    assert main(finetune_argv(data, reference, *steps)) == 0
    run = tmp_path / "run"
    save_last = RunCheckpoint._save_last

    def crash_after_step_5(self, trainer):
        save_last(self, trainer)
        if trainer.global_step == 5:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(RunCheckpoint, "_save_last", crash_after_step_5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(finetune_argv(data, run, *steps))
    monkeypatch.undo()
    assert read_checkpoint(run / "last.ckpt")["global_step"] == 5  # mid-epoch 2 (4 steps each)
    assert main([*finetune_argv(data, run, *steps), "--resume"]) == 0
    a, b = read_checkpoint(reference / "last.ckpt"), read_checkpoint(run / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 6
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["callbacks"] == b["callbacks"]  # best val F1 and its step


def test_bad_input_is_reported_without_traceback(data, pretrained, tmp_path, capsys):
    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    run = tmp_path / "run"
    assert "--label-fraction" in error(*finetune_argv(data, run, "--label-fraction", "0"))
    assert "Raise --label-fraction" in error(
        *finetune_argv(data, run, "--label-fraction", "0.1", "--max-steps", "1")
    )
    assert "has no backbone" in error(*finetune_argv(data, run, "--model", "unet"))
    assert "--change-weight" in error(*finetune_argv(data, run, "--change-weight", "-1"))
    pre_run = pretrained.parent  # a pretraining run folder resumed by finetune
    message = error(*finetune_argv(data, pre_run, "--resume", "--max-steps", "3"))
    assert "sdrl pretrain --resume" in message
    assert not (run / "last.ckpt").exists()
    three = tmp_path / "three"
    generate_dataset(three, kind="change", num=4, size=64, bands=3, seed=0)
    # Bands of unknown wavelength cannot be re-mapped from the checkpoint's 4 bands.
    meta = json.loads((three / "dataset.json").read_text())
    meta["bands"] = ["x1", "x2", "x3"]
    meta["provenance"].pop("wavelengths_nm", None)
    (three / "dataset.json").write_text(json.dumps(meta))
    message = error(
        *finetune_argv(
            three,
            tmp_path / "r3",
            "--init",
            str(pretrained.parent / "last.ckpt"),
            "--max-steps",
            "1",
        )
    )
    assert "band" in message
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert "run folder" in error(*finetune_argv(data, blocker / "run", "--max-steps", "1"))
    nolist = tmp_path / "nolist"
    shutil.copytree(data, nolist)
    (nolist / "list" / "train.txt").write_text("")
    assert "empty" in error(*finetune_argv(nolist, tmp_path / "r4", "--max-steps", "1"))


def test_init_reads_the_checkpoint_header(data, pretrained, tmp_path, capsys):
    # The header names the backbone: another one is refused before any training.
    argv = finetune_argv(data, tmp_path / "r", "--init", str(pretrained), "--max-steps", "1")
    assert main([*argv, "--backbone", "swin_tiny_test"]) == 2
    err = capsys.readouterr().err
    assert str(pretrained) in err and "a pretrain checkpoint of a resnet_tiny backbone" in err


def test_init_from_other_bands_is_remapped_by_wavelength(pretrained, tmp_path, caplog):
    rgb = tmp_path / "rgb"
    generate_dataset(rgb, kind="change", num=4, size=64, bands=3, seed=0)
    argv = finetune_argv(rgb, tmp_path / "r", "--init", str(pretrained), "--max-steps", "1")
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--val-split", "none"]) == 0
    assert "re-mapped by wavelength from 4 bands" in caplog.text


def test_resume_without_a_checkpoint_still_loads_init(data, pretrained, tmp_path):
    # A requeued job passes --resume from its first start: --init must still be loaded.
    run = tmp_path / "run"
    argv = finetune_argv(data, run, "--init", str(pretrained), "--max-steps", "1", "--resume")
    assert main([*argv, "--val-split", "none"]) == 0
    pre = read_checkpoint(pretrained)["state_dict"]
    tuned = read_checkpoint(run / "last.ckpt")["state_dict"]
    key = next(k for k in tuned if k.startswith("model.encoder.") and tuned[k].ndim == 4)
    source = pre[key.replace("model.encoder.", "method.backbone.")]
    # One AdamW step (lr 1e-3) moves each weight by about 1e-3; a fresh init would not match.
    assert (tuned[key] - source).abs().max() < 0.01


def test_encoder_lr_ratio_scales_only_the_encoder_updates(data, pretrained, tmp_path):
    """SGD without momentum or decay: one step moves each weight by lr × grad, so the
    encoder's update at ratio r is r × its update at ratio 1, and the decoder's is equal."""
    pre = read_checkpoint(pretrained)["state_dict"]
    steps = {}
    for ratio in ("1", "0.25"):
        run = tmp_path / f"r{ratio}"
        argv = finetune_argv(
            data, run, "--init", str(pretrained), "--val-split", "none", "--max-steps", "1",
            "--optimizer", "sgd", "--sgd-momentum", "0", "--weight-decay", "0", "--lr", "0.1",
            "--schedule", "constant", "--warmup-steps", "0", "--augment", "none",
            "--encoder-lr-ratio", ratio,
        )  # fmt: skip
        assert main(argv) == 0
        steps[ratio] = read_checkpoint(run / "last.ckpt")["state_dict"]
    enc = "model.encoder.conv1.weight"
    moved = {
        r: steps[r][enc] - pre[enc.replace("model.encoder.", "method.backbone.")] for r in steps
    }
    assert moved["1"].abs().max() > 0
    torch.testing.assert_close(moved["0.25"], 0.25 * moved["1"], rtol=1e-3, atol=1e-7)
    head = [k for k in steps["1"] if k.startswith("model.") and "encoder" not in k]
    head = [k for k in head if steps["1"][k].is_floating_point() and "running" not in k]
    assert head
    for key in head:
        torch.testing.assert_close(steps["0.25"][key], steps["1"][key], rtol=1e-4, atol=1e-6)
