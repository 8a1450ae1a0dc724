"""`sdrl pretrain`: every method through the CLI, config files, views, schedules, bad input."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sdrl.checkpoint import read_checkpoint
from sdrl.cli import build_parser, main
from sdrl.cli.config import apply_config
from sdrl.cli.options import config_from_args
from sdrl.data.augment import BitemporalAugment
from sdrl.data.datasets import PretrainPairDataset
from sdrl.data.io import open_raster, write_raster
from sdrl.data.samples import IGNORE_INDEX
from sdrl.data.synth import generate_dataset
from sdrl.errors import ConfigError
from sdrl.models import build_backbone
from sdrl.ssl.methods import method_names, method_options
from sdrl.tasks.base import TrainingError
from sdrl.tasks.loading import EpochSampler, ShardSampler
from sdrl.tasks.optim import WarmupDecay, param_groups
from sdrl.tasks.pretrain.config import METHOD_NAMES, PretrainConfig
from sdrl.tasks.pretrain.module import PretrainModule
from sdrl.tasks.pretrain.probe import RegionProbe
from sdrl.tasks.pretrain.run import pretrain
from sdrl.tasks.pretrain.views import ViewMaker
from tests.runs import pretrain_argv, synth_data, tiny_pretrain

pytestmark = pytest.mark.usefixtures("one_thread")

# Small heads keep every method to a fraction of a second per step on a CPU.
HEADS = ["--hidden-dim", "32", "--output-dim", "16"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """8 bitemporal 64-px scenes, 4 bands, 6 classes: 7 train tiles, 1 val tile."""
    return synth_data(tmp_path_factory, "pre", "pretrain", num=8, size=64, bands=4, seed=0)


def copy_dataset(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def column(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(r[name]) for r in rows if r.get(name) not in (None, "")]


def test_method_names_match_the_registry():
    assert tuple(method_names()) == METHOD_NAMES


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_each_method_runs_through_the_cli(data, tmp_path, method):
    run = tmp_path / "run"
    heads = HEADS if "hidden_dim" in method_options(method) else []  # supervised: no SSL head
    tiny_pretrain(data, run, "--method", method, *heads, "--max-steps", "2", "--log-every", "1")
    for name in ("config.yaml", "last.ckpt", "best.ckpt", "metrics.csv"):
        assert (run / name).is_file(), name
    rows = read_metrics(run)
    for name in ("train/loss_step", "train/lr", "train/embedding_std", "train/samples_per_s"):
        assert len(column(rows, name)) == 2, name
    assert column(rows, "train/skipped_total") == [0.0, 0.0]
    assert len(column(rows, "val/loss")) == 1  # validation at the final step
    assert 0.0 <= column(rows, "val/probe_acc")[0] <= 1.0
    if method == "sdrl":
        assert len(column(rows, "train/contrast")) == 2 and column(rows, "train/decouple")
    checkpoint = torch.load(run / "last.ckpt", weights_only=True)  # plain data only
    assert checkpoint["global_step"] == 2
    assert checkpoint["sdrl"]["method"] == method and checkpoint["sdrl"]["in_channels"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())


def test_yaml_config_and_flag_overrides_are_saved_resolved(data, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"data": str(data), "method": "sdrl", "batch-size": 4, "max-steps": 9,
             "temperature": 0.2, "decouple-weight": 0.5, "backbone": "resnet_tiny",
             "num-workers": 0, "optimizer": "sgd", "schedule": "poly"}
        )
    )  # fmt: skip
    run = tmp_path / "run"
    argv = ["pretrain", "--config", str(config), "--out", str(run), "--max-steps", "1"]
    assert main([*argv, "--temperature", "0.3", *HEADS, "--level", "c5"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["max-steps"] == 1 and saved["batch-size"] == 4 and saved["optimizer"] == "sgd"
    assert saved["temperature"] == 0.3 and saved["decouple-weight"] == 0.5
    assert saved["level"] == "c5" and saved["lr"] is None and saved["schedule"] == "poly"
    assert read_checkpoint(run / "last.ckpt")["sdrl"]["method_options"]["temperature"] == 0.3
    # The saved file is itself a valid --config that gives the same settings.
    parser = build_parser()
    argv = ["pretrain", "--config", str(run / "config.yaml")]
    apply_config(parser, argv)
    again = config_from_args(parser.parse_args(argv), PretrainConfig)
    first = config_from_args(
        _parse(["pretrain", "--config", str(config), "--out", str(run), "--max-steps", "1",
                "--temperature", "0.3", *HEADS, "--level", "c5", "--no-progress-bar"]),
        PretrainConfig,
    )  # fmt: skip
    assert again == first


def _parse(argv):
    parser = build_parser()
    apply_config(parser, argv)
    return parser.parse_args(argv)


def test_method_option_flag_and_unknown_options(data, tmp_path, capsys):
    args = _parse(["pretrain", "--data", "d", "--out", "o", "--method-option", "min_area=2"])
    assert config_from_args(args, PretrainConfig).method_options == {"min_area": 2}
    argv = pretrain_argv(data, tmp_path / "r", "--method", "simclr")
    assert main([*argv, "--decouple-weight", "1", "--max-steps", "1"]) == 2
    assert "simclr' has no option decouple_weight" in capsys.readouterr().err


def test_views_come_from_two_dates_or_one(data):
    b, c = 2, 4
    batch = {
        "image_a": torch.randn(b, c, 32, 32),
        "image_b": torch.randn(b, c, 32, 32),
        "mask_a": torch.randint(0, 3, (b, 32, 32)),
        "mask_b": torch.randint(0, 3, (b, 32, 32)),
    }
    identity = BitemporalAugment.identity()
    views = ViewMaker(identity, "dates", bitemporal=True)(batch)
    assert torch.equal(views.view1, batch["image_a"]) and torch.equal(views.view2, batch["image_b"])
    assert torch.equal(views.mask2, batch["mask_b"])
    for maker in (ViewMaker(identity, "single"), ViewMaker(identity, "dates", bitemporal=False)):
        views = maker(batch)
        assert torch.equal(views.view2, batch["image_a"])
        assert torch.equal(views.mask2, batch["mask_a"])
    # Each view draws its own geometry: two augmentations of one image differ, masks follow.
    geometric = BitemporalAugment(photometric=False, p_affine=1.0, p_rot90=0.0)
    torch.manual_seed(0)
    views = ViewMaker(geometric, "single")(batch)
    assert not torch.equal(views.mask1, views.mask2)
    assert views.view1.shape == views.view2.shape == batch["image_a"].shape


def test_schedule_and_parameter_groups():
    cosine = WarmupDecay(total=100, warmup=10, kind="cosine", min_ratio=0.1)
    assert cosine(0) == pytest.approx(0.1) and cosine(9) == pytest.approx(1.0)
    assert cosine(10) == pytest.approx(1.0) and cosine(100) == pytest.approx(0.1)
    assert cosine(55) == pytest.approx(0.55)
    poly = WarmupDecay(total=20, warmup=0, kind="poly", power=1.0)
    assert [poly(s) for s in (0, 10, 20)] == pytest.approx([1.0, 0.5, 0.0])
    assert WarmupDecay(total=5, warmup=0, kind="constant")(4) == 1.0
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    decay, no_decay = param_groups([net, frozen, net], 0.05)
    assert [p.ndim for p in decay["params"]] == [4] and len(no_decay["params"]) == 3
    assert no_decay["weight_decay"] == 0.0


def test_samplers_are_seeded_sharded_and_skip():
    first = list(EpochSampler(10, 2, seed=3))
    assert first == list(EpochSampler(10, 2, seed=3)) and len(first) == 10
    sampler = EpochSampler(10, 2, seed=3)
    sampler.set_epoch(1)
    assert [i for i, _ in sampler] != [i for i, _ in first]
    ranks = [list(EpochSampler(11, 2, seed=3, rank=r, world=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 4
    assert not {i for i, _ in ranks[0]} & {i for i, _ in ranks[1]}
    sampler = EpochSampler(10, 2, seed=3)
    sampler.start_batch = 2
    assert list(sampler) == first[4:]
    shards = [list(ShardSampler(range(5), r, 2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 3


def test_region_probe_scores_separable_regions():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=gen) * 5

    def regions(n):
        z = centres.expand(n, 3, 8) + 0.1 * torch.randn(n, 3, 8, generator=gen)
        valid = torch.ones(n, 3, dtype=torch.bool)
        valid[0, 1] = False
        return z, valid

    for kind in ("knn", "logreg"):
        probe = RegionProbe(kind)
        assert probe.score() is None
        probe.add("fit", *regions(6))
        probe.add("eval", *regions(4))
        assert probe.count("fit") == 17 and probe.score() == 1.0


def test_nan_pixels_are_nodata_in_training(data, tmp_path, capsys):
    # One policy (issue: non-finite pixels are nodata everywhere): zeroed and ignored in
    # the masks, so training runs; the base task's finite check stays as a guard.
    bad = copy_dataset(data, tmp_path / "bad")
    tile = bad / "A" / "000003.tif"
    with open_raster(tile) as src:
        pixels, crs, transform = src.read().astype(np.float32), src.crs, src.transform
    pixels[1, 5:9, 5:9] = np.nan
    write_raster(tile, pixels, crs=crs, transform=transform)
    split = next(n for n in ("train", "val") if "000003" in (bad / "list" / f"{n}.txt").read_text())
    dataset = PretrainPairDataset(bad, split)
    sample = dataset[list(dataset.ids).index("000003")]
    assert torch.isfinite(sample["image_a"]).all()
    assert (sample["mask_a"][5:9, 5:9] == IGNORE_INDEX).all()
    argv = pretrain_argv(bad, tmp_path / "r", "--method", "simclr")
    assert main([*argv, *HEADS, "--max-steps", "3"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_band_count_mismatch_with_weights_is_a_clear_error(data, tmp_path, capsys):
    weights = tmp_path / "five_bands.pt"
    torch.save(build_backbone("resnet_tiny", 5).state_dict(), weights)
    argv = pretrain_argv(data, tmp_path / "r")
    assert main([*argv, "--weights", str(weights), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "five_bands.pt" in err and "(4 bands)" in err and "found shape (8, 5, 7, 7)" in err
    assert "with 4 bands ['red', 'green', 'blue', 'nir']" in err
    # 3-band (RGB) weights are adapted to the 4 bands of the data.
    torch.save(build_backbone("resnet_tiny", 3).state_dict(), weights)
    argv = [*argv, "--weights", str(weights), "--max-steps", "1", *HEADS, "--overwrite"]
    assert main(argv) == 0


def _relabel(src: Path, dst: Path, value: int) -> Path:
    out = copy_dataset(src, dst)
    for part in ("label", "label_B"):
        for path in (out / part).glob("*.tif"):
            with open_raster(path) as raster:
                mask, crs, transform = raster.read(), raster.crs, raster.transform
            write_raster(path, np.full_like(mask, value), crs=crs, transform=transform)
    return out


def test_one_class_masks_warn_and_still_train(data, tmp_path, caplog):
    one = _relabel(data, tmp_path / "one", 1)
    config = PretrainConfig(
        data=str(one), out=str(tmp_path / "r"), backbone="resnet_tiny", batch_size=2,
        num_workers=0, max_steps=2, method_options={"hidden_dim": 32, "output_dim": 16},
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        result = pretrain(config)
    assert "hold one class only (vegetation)" in caplog.text
    assert "decoupling term" in caplog.text
    assert result.global_step == 2 and np.isfinite(result.metrics["train/loss_step"])


def test_batches_without_valid_regions_are_skipped_and_logged(data, tmp_path, caplog):
    empty = _relabel(data, tmp_path / "empty", 255)  # every pixel is "ignore"
    config = PretrainConfig(
        data=str(empty), out=str(tmp_path / "r"), backbone="resnet_tiny", batch_size=2,
        num_workers=0, max_steps=2, log_every=1,
        method_options={"hidden_dim": 32, "output_dim": 16},
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        result = pretrain(config)
    assert "batch skipped" in caplog.text
    assert column(read_metrics(tmp_path / "r"), "train/skipped_total") == [1.0, 2.0]
    assert result.metrics["train/loss_step"] == 0.0


def test_a_non_finite_loss_stops_training(data, tmp_path, monkeypatch):
    def nan_loss(self, views, batch):
        return {"loss": views.view1.sum() * float("nan")}

    monkeypatch.setattr(PretrainModule, "_forward", nan_loss)
    config = PretrainConfig(
        data=str(data), out=str(tmp_path / "r"), backbone="resnet_tiny", batch_size=2,
        num_workers=0, max_steps=2, method="simclr", method_options={"hidden_dim": 32},
    )  # fmt: skip
    with pytest.raises(TrainingError, match=r"loss is nan at step 0 \(tiles \['0"):
        pretrain(config)
    assert not (tmp_path / "r" / "last.ckpt").exists()


def test_run_folder_rules(data, tmp_path, capsys, caplog):
    run = tmp_path / "run"
    argv = pretrain_argv(data, run, *HEADS)
    # A requeued job passes --resume every time: the first start has nothing to resume.
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--max-steps", "1", "--resume", "--val-split", "none"]) == 0
    assert "no checkpoint yet, starting the run" in caplog.text
    # Resuming a run that reached its limit trains nothing and says so.
    assert main([*argv, "--max-steps", "1", "--resume", "--val-split", "none"]) == 0
    out = capsys.readouterr().out
    assert "had already reached its limit (step 1" in out and "None" not in out
    assert main([*argv, "--max-steps", "1", "--val-split", "none", "--overwrite"]) == 0
    assert column(read_metrics(run), "train/loss_epoch")  # best.ckpt by training loss
    assert (run / "best.ckpt").is_file()
    assert main([*argv, "--max-steps", "1"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*argv, "--max-steps", "1", "--method", "byol", "--resume"]) == 2
    assert "made with method 'sdrl', found 'byol'" in capsys.readouterr().err


def test_tiles_must_be_multiples_of_32(tmp_path, capsys):
    data = tmp_path / "d"
    generate_dataset(data, kind="pretrain", num=4, size=40, bands=3, seed=1)
    argv = pretrain_argv(data, tmp_path / "r")
    assert main([*argv, "--max-steps", "1"]) == 2
    assert "found 40x40 px; pass --crop-size 32" in capsys.readouterr().err


def test_single_date_folders_train_on_two_views_of_a(data, tmp_path, caplog):
    single = copy_dataset(data, tmp_path / "single")
    for part in ("B", "label_B"):
        for path in (single / part).iterdir():
            path.unlink()
        (single / part).rmdir()
    run = tmp_path / "run"
    argv = pretrain_argv(single, run, *HEADS)
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--max-steps", "2", "--optimizer", "lars"]) == 0
    assert "has no B/ images: the two views are augmentations of A" in caplog.text
    assert read_checkpoint(run / "last.ckpt")["global_step"] == 2


def test_wandb_logger_runs_offline_in_the_run_folder(data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    run = tmp_path / "run"
    argv = pretrain_argv(data, run, *HEADS)
    assert main([*argv, "--max-steps", "2", "--method", "simclr", "--logger", "wandb"]) == 0
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("run-*.wandb"))
    assert (run / "metrics.csv").is_file()  # CSV is always written too


def test_a_missing_validation_split_turns_validation_off(data, tmp_path, caplog):
    from sdrl.tasks.pretrain.data import PretrainDataModule

    folder = copy_dataset(data, tmp_path / "noval")
    (folder / "list" / "val.txt").unlink()
    with caplog.at_level(logging.WARNING):
        module = PretrainDataModule(str(folder), batch_size=2, seed=0)
    assert module.val_set is None and module.val_roles == []
    assert "has no split 'val' (splits: train, all): validation is off" in caplog.text


def _probe_flags(run: Path) -> list[bool]:
    """For each validation in order: whether it scored the probe."""
    return [bool(r["val/probe_acc"]) for r in read_metrics(run) if r.get("val/loss")]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # --val-every 1: validations 1..7, the probe at the 1st, 5th and last (--max-steps).
        (["--max-steps", "7", "--val-every", "1"], [True, False, False, False, True, False, True]),
        # Each epoch (3 steps): the 1st, 5th and the last epoch's end.
        (["--max-epochs", "6"], [True, False, False, False, True, True]),
        # Every 4 of 6 steps: one validation, the last (no room for another).
        (["--max-epochs", "2", "--val-every", "4"], [True]),
    ],
)
def test_probe_runs_at_the_first_every_fifth_and_last_validation(data, tmp_path, flags, expected):
    run = tmp_path / "run"
    tiny_pretrain(data, run, *HEADS, "--method", "simclr", *flags)
    assert _probe_flags(run) == expected
    best = read_checkpoint(run / "best.ckpt")["global_step"]
    probed = [
        int(float(r["step"])) for r in read_metrics(run) if r.get("val/probe_acc") not in (None, "")
    ]
    assert any(abs(best - step) <= 1 for step in probed)  # best.ckpt comes from a probe


def test_probe_fit_tiles_are_read_only_when_the_probe_runs(data, tmp_path, monkeypatch):
    from sdrl.tasks.pretrain.data import PretrainDataModule

    module = PretrainDataModule(str(data), batch_size=2, seed=0, probe_tiles=4)
    assert module.val_roles == ["val"] and module.probe_tiles == 4
    loader = module.probe_fit_dataloader()
    assert loader is not None and sum(len(b["id"]) for b in loader) == 4
    assert PretrainDataModule(str(data), 2, 0, probe_tiles=99).probe_tiles == 7  # all tiles
    assert PretrainDataModule(str(data), 2, 0, val_split=None).probe_fit_dataloader() is None
    calls = []
    make = PretrainDataModule.probe_fit_dataloader
    monkeypatch.setattr(
        PretrainDataModule, "probe_fit_dataloader", lambda self: calls.append(1) or make(self)
    )
    tiny_pretrain(data, tmp_path / "run", *HEADS, "--max-steps", "6", "--val-every", "1")
    assert len(calls) == 3  # validations 1, 5 and 6 of 6


def test_probe_flags_and_full_probe():
    args = _parse(["pretrain", "--data", "d", "--out", "o", "--probe-every", "3"])
    config = config_from_args(args, PretrainConfig)
    assert config.probe_every == 3 and config.probe_tiles == 64
    with pytest.raises(ConfigError, match="--probe-every: expected a number > 0, found 0"):
        PretrainConfig(data="d", out="o", probe_every=0)
    probe = RegionProbe(max_regions=5)
    probe.add("fit", torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.bool))
    assert probe.count("fit") == 5 and probe.full("fit") and not probe.full("eval")
