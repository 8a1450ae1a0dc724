"""experiments/compare.py: a tiny end-to-end run, its resume, its flags and the shipped configs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from sdrl.errors import ConfigError
from tests.experiments_scripts import load_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "experiments" / "configs").glob("*.yaml"))
PROTOCOLS = {"oscd_dev"}  # configs of experiments/oscd_folds.py, which supplies the data flags
DATASET_CONFIGS = [c for c in CONFIGS if c.stem not in PROTOCOLS]

# Two initialisations, one fraction and seed, two steps each, the tiny settings of tests/runs.py.
TINY = [
    "--inits", "random,sdrl", "--fractions", "1.0", "--seeds", "0",
    "--pretrain-steps", "2", "--finetune-steps", "2", "--backbone", "resnet_tiny",
    "--batch-size", "2", "--pretrain-batch-size", "2", "--num-workers", "0",
    "--model-option", "decoder_channels=16", "--pretrain-option", "probe=none",
    "--synth-num", "12", "--synth-size", "32",
]  # fmt: skip


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    """experiments/compare.py as a module."""
    return load_experiment("compare")


def _count_calls(compare: ModuleType, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the calls of the training, evaluation and data functions (they still run)."""
    calls = dict.fromkeys(("generate_dataset", "pretrain", "finetune", "evaluate"), 0)
    for name in calls:
        original = getattr(compare, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(compare, name, counted)
    return calls


def _first_conv(checkpoint: Path) -> torch.Tensor:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return next(v for k, v in state.items() if k.endswith("encoder.conv1.weight"))


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_tiny_comparison_then_resume(compare, tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    argv = ["--out", str(out), *TINY]
    calls = _count_calls(compare, monkeypatch)
    assert compare.main(argv) == 0
    assert calls == {"generate_dataset": 2, "pretrain": 1, "finetune": 2, "evaluate": 2}
    for name in ("results.csv", "results.md", "f1_vs_fraction.png"):
        assert (out / name).is_file(), name
    assert (out / "f1_vs_fraction.png").read_bytes()[:4] == b"\x89PNG"
    rows = _rows(out)
    assert [(r["init"], r["head"], r["fraction"], r["seed"]) for r in rows] == [
        ("random", "fpn", "1", "0"),
        ("sdrl", "fpn", "1", "0"),
    ]
    for row in rows:
        assert 0.0 <= float(row["f1"]) <= 1.0
        assert 0.0 <= float(row["iou"]) <= 1.0
        assert row["steps"] == "2"
        metrics = json.loads(Path(row["metrics"]).read_text())
        assert metrics["f1"] == pytest.approx(float(row["f1"]), abs=1e-6)
        assert Path(row["checkpoint"]).is_file()
    random, pretrained = rows
    assert random["pretrain_checkpoint"] == ""
    assert Path(pretrained["pretrain_checkpoint"]).name == "last.ckpt"
    assert pretrained["pretrain_steps"] == "2"
    # The sdrl cell starts from the pretrained encoder, the random cell (same seed) does not.
    first = [_first_conv(Path(r["checkpoint"]).with_name("last.ckpt")) for r in rows]
    assert not torch.equal(*first)
    report = (out / "results.md").read_text()
    assert "| random | fpn | " in report and "| sdrl | fpn | " in report
    assert "2 steps × batch 2 per method" in report and "machine:" in report

    # The same command again: every cell and the pretraining are finished, nothing runs.
    stamp = (out / "results.csv").stat().st_mtime_ns
    calls.update(dict.fromkeys(calls, 0))
    assert compare.main(argv) == 0
    assert calls == dict.fromkeys(calls, 0)
    assert (out / "results.csv").stat().st_mtime_ns == stamp

    # One more seed: only its cells run, and they reuse the shared pretraining.
    argv[argv.index("--seeds") + 1] = "0,1"
    assert compare.main(argv) == 0
    assert calls == {"generate_dataset": 0, "pretrain": 0, "finetune": 2, "evaluate": 2}
    assert len(_rows(out)) == 4
    assert " ± " in (out / "results.md").read_text()

    # Another budget in the same --out is refused before anything runs.
    argv[argv.index("--finetune-steps") + 1] = "3"
    with pytest.raises(ConfigError, match="finetune_steps"):
        compare.run_comparison(compare.parse_settings(argv))


@pytest.mark.parametrize("config", DATASET_CONFIGS, ids=[c.stem for c in DATASET_CONFIGS])
def test_shipped_configs_parse(compare, config, tmp_path):
    settings = compare.parse_settings(["--config", str(config), "--out", str(tmp_path)])
    assert settings.data is not None and settings.pretrain_data is not None
    assert settings.fractions == [0.05, 0.1, 0.2, 1.0]
    assert {"random", "sdrl", "detcon"} <= set(settings.inits)


def test_shipped_configs_exist():
    assert {c.stem for c in CONFIGS} >= {"oscd", "levir", "whu", "oscd_dev"}


def test_protocol_config_parses_with_the_data_flags(compare, tmp_path):
    config = ROOT / "experiments" / "configs" / "oscd_dev.yaml"
    data = ["--data", "d", "--eval-data", "e", "--pretrain-data", "p"]
    settings = compare.parse_settings(["--config", str(config), "--out", str(tmp_path), *data])
    assert settings.finetune_options == {"val_split": "none"}
    assert {"random", "sdrl", "detcon"} <= set(settings.inits)


@pytest.mark.slow
def test_pretraining_shared_between_comparisons_and_checked(compare, tmp_path, monkeypatch):
    from sdrl.data.synth import generate_dataset

    for kind in ("change", "pretrain"):
        generate_dataset(tmp_path / kind, kind=kind, num=12, size=32, bands=4, seed=0)
    shared = tmp_path / "pretrain_runs"
    base = [*TINY, "--inits", "sdrl", "--pretrain-dir", str(shared)]
    base += ["--data", str(tmp_path / "change"), "--pretrain-data", str(tmp_path / "pretrain")]
    calls = _count_calls(compare, monkeypatch)
    assert compare.main(["--out", str(tmp_path / "a"), *base]) == 0
    assert calls["pretrain"] == 1 and (shared / "sdrl_s0.compare_done.json").is_file()
    assert not (tmp_path / "a" / "pretrain").exists()
    # another comparison (another finetuning budget) reuses the pretraining
    calls.update(dict.fromkeys(calls, 0))
    assert compare.main(["--out", str(tmp_path / "b"), *base, "--finetune-steps", "3"]) == 0
    assert calls["pretrain"] == 0 and calls["finetune"] == 1
    assert "sdrl" in (tmp_path / "b" / "results.md").read_text()
    # other pretraining settings in the same --pretrain-dir: refused, naming the setting
    changed = compare.parse_settings(["--out", str(tmp_path / "c"), *base, "--pretrain-steps", "3"])
    with pytest.raises(ConfigError, match="steps: 2 → 3"):
        compare.run_comparison(changed)


def test_defaults_and_flags(compare, tmp_path):
    settings = compare.parse_settings(["--out", str(tmp_path), "--fractions", "0.1, 1"])
    assert settings.inits == ["random", "supervised", "simclr", "moco", "byol", "detcon", "sdrl"]
    assert settings.fractions == [0.1, 1.0] and settings.seeds == [0, 1]
    weights = ["--imagenet-weights", "w.pth", "--finetune-option", "lr=0.01"]
    settings = compare.parse_settings(["--out", str(tmp_path), *weights])
    assert "imagenet" in settings.inits and settings.finetune_options == {"lr": 0.01}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--inits", "random,supervised", "--method-option", "supervise:level=c5"], "METHOD:KEY"),
        (["--inits", "imagenet"], "--imagenet-weights"),
        (["--inits", "sdrll"], "expected some of"),
        (["--finetune-option", "label_fraction=0.5"], "set by the comparison"),
        (["--pretrain-option", "nope=1"], "not a field of PretrainConfig"),
        (["--method-option", "decouple_weight=1"], "METHOD:KEY=VALUE"),
    ],
)
def test_bad_flags_are_refused(compare, tmp_path, flags, message):
    with pytest.raises(ConfigError, match=message):
        compare.parse_settings(["--out", str(tmp_path), *flags])
