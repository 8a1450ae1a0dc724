"""`sdrl demo` runs end to end on the data engine and answers "does sdrl pretraining help?"."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from sdrl.cli import main
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.io import read_raster
from sdrl.demo.verdict import compare, verdict
from sdrl.viz import colorize, image_grid, read_loss_log, to_rgb

PNG = b"\x89PNG\r\n\x1a\n"


def _table(report: str) -> dict[str, list[str]]:
    """The score table of report.md: first cell → the row's cells."""
    section = report.split("## Test scores per initialisation", 1)[1]
    rows = section.split("\n|", 1)[1].split("\n\n", 1)[0].splitlines()  # the first table
    rows = ["|" + rows[0], *(ln for ln in rows[1:] if not ln.startswith("|---"))]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    table = {"header": header}
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        table[cells[0]] = cells
    return table


def test_demo_cli_runs_the_whole_story(tmp_path, capsys, caplog):
    torch.set_num_threads(1)
    caplog.set_level(logging.INFO, logger="sdrl.demo")  # a line per stage
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--num", "10", "--size", "64", "--backbone", "resnet_tiny",
            "--pretrain-steps", "2", "--finetune-steps", "2", "--batch-size", "4"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "preview:" in printed and "from pretrained" in printed
    assert len(ChangeDataset(out / "change", "train")) == 8
    assert PretrainPairDataset(out / "pretrain", "train").num_bands == 4
    preview = read_raster(out / "preview_pretrain.png").data
    # 8 rows (4 scenes, then augmented) of 4 pictures of 64 px with 4 px gaps
    assert preview.shape == (3, 8 * 68 - 4, 4 * 68 - 4)
    for init in ("random", "pretrained"):
        metrics = json.loads((out / f"metrics_{init}.json").read_text())
        assert 0.0 <= metrics["f1"] <= 1.0 and metrics["split"] == "test"
    change_map = read_raster(out / "change_map.tif")
    assert change_map.data.shape[1:] == (256, 256) and change_map.crs is not None

    # the report: a row per initialisation, each seed's F1 that of its run's metrics.json
    report = (out / "report.md").read_text()
    table = _table(report)
    assert table["header"][1:3] == ["F1 seed 0", "F1 seed 1"]
    scores = {}
    for init in ("random", "detcon", "sdrl"):
        f1 = []
        for column, seed in ((1, 0), (2, 1)):
            metrics = json.loads((out / "runs" / f"finetune_{init}_seed{seed}" / "metrics.json")
                                 .read_text())  # fmt: skip
            assert metrics["split"] == "test" and 0.0 <= metrics["f1"] <= 1.0
            assert float(table[init][column]) == pytest.approx(metrics["f1"], abs=5e-4)
            f1.append(metrics["f1"])
        mean = float(table[init][3].split("±")[0])
        assert mean == pytest.approx(np.mean(f1), abs=5e-4) and 0.0 <= mean <= 1.0
        scores[init] = f1
    assert verdict(scores) in report  # the answer is the one the numbers give
    assert "smoke test" in report and "seed" in report and "CPU cores" in report
    assert (out / "metrics_sdrl.json").read_bytes() == (
        out / "metrics_pretrained.json"
    ).read_bytes()
    for name in ("pretrain_loss", "f1_per_init", "predictions"):
        path = out / "figures" / f"{name}.png"
        assert path.read_bytes()[:8] == PNG and f"figures/{name}.png" in report
        assert read_raster(path).data.shape[0] in (3, 4)  # decodes
    assert {p.name for p in (out / "export_sdrl").iterdir()} == {"weights.safetensors", "meta.json"}
    assert json.loads((out / "export_sdrl" / "meta.json").read_text())["in_channels"] == 4
    assert "[1/13] data engine" in caplog.text and "[13/13] report.md" in caplog.text
    assert main(argv) == 2  # an earlier demo is not overwritten without --overwrite


def test_verdict_says_what_the_numbers_say():
    worse = {"random": [0.50, 0.52], "detcon": [0.45, 0.47], "sdrl": [0.40, 0.43]}
    assert compare(worse["sdrl"], worse["random"]) == -1
    assert verdict(worse).startswith("**No, not at this budget**")
    assert "worse than random initialisation in every seed" in verdict(worse)
    better = {"random": [0.40, 0.42], "detcon": [0.41, 0.47], "sdrl": [0.50, 0.52]}
    assert compare(better["sdrl"], better["random"]) == 1
    assert verdict(better).startswith("**Yes")
    assert "not clearly different from DetCon" not in verdict(better)
    mixed = {"random": [0.40, 0.50], "detcon": [0.45, 0.45], "sdrl": [0.45, 0.46]}
    assert compare(mixed["sdrl"], mixed["random"]) == 0  # one seed up, one down
    assert verdict(mixed).startswith("**Not shown")
    tiny = {"random": [0.40, 0.40], "detcon": [0.40, 0.40], "sdrl": [0.405, 0.405]}
    assert compare(tiny["sdrl"], tiny["random"]) == 0  # under the tie threshold
    single = {"random": [0.30], "detcon": [0.35], "sdrl": [0.60]}
    assert compare(single["sdrl"], single["random"]) == 0  # one seed: no spread, no claim
    assert verdict(single).startswith("**Not shown") and "single run" in verdict(single)
    assert "sdrl 0.600, detcon 0.350, random 0.300" in verdict(single)


def test_read_loss_log_keeps_the_last_value_of_a_step(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,train/loss_step,val/loss\n0,0,2.0,\n0,1,1.5,\n0,1,1.4,\n1.0,2,,1.1\n"
    )
    curves = read_loss_log(path)
    assert curves["train/loss_step"] == ([0, 1], [2.0, 1.4])
    assert curves["val/loss"] == ([2], [1.1])


def test_previews():
    image = np.stack([np.full((4, 4), v, np.float32) for v in (1.0, 2.0, 3.0, 4.0)])
    image[:, 0, 0] = 0
    rgb = to_rgb(image, ["blue", "green", "red", "nir"])
    assert rgb.shape == (3, 4, 4) and rgb.dtype == np.uint8
    mask = np.array([[0, 1], [255, 5]])
    colours = colorize(mask)
    assert colours.shape == (3, 2, 2)
    assert (colours[:, 1, 0] == 0).all()  # ignore is black
    assert not (colours[:, 0, 0] == colours[:, 0, 1]).all()
    grid = image_grid([[rgb, rgb], [rgb]], pad=2)
    assert grid.shape == (3, 10, 10)
    assert (grid[:, 6:, 6:] == 255).all()  # the missing picture stays blank


def test_flag_defaults_are_the_settings_defaults():
    import dataclasses

    from sdrl.cli import build_parser
    from sdrl.demo import DemoSettings

    args = vars(build_parser().parse_args(["demo"]))
    for field in dataclasses.fields(DemoSettings):
        assert args[field.name] == getattr(DemoSettings(), field.name), field.name
