"""`sdrl demo` runs end to end on the data engine and writes loadable datasets and previews."""

from __future__ import annotations

import json

import numpy as np
import torch

from sdrl.cli import main
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.io import read_raster
from sdrl.viz import colorize, image_grid, to_rgb


def test_demo_cli_runs_the_whole_story(tmp_path, capsys):
    torch.set_num_threads(1)
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
    assert main(argv) == 2  # an earlier demo is not overwritten without --overwrite


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
