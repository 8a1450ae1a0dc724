"""``report.md`` and its figures: what was run, on what, on which machine, and what came out.

Figures (``figures/``): ``pretrain_loss.png`` (each pretraining run's ``metrics.csv``),
``f1_per_init.png`` (test F1 per initialisation, mean ± std over seeds, each seed a dot) and
``predictions.png`` (before | after | truth | each initialisation's prediction, for the test
tiles with the most change).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import torch

from sdrl import __version__
from sdrl.data.datasets import ChangeDataset
from sdrl.data.io import read_raster
from sdrl.data.staging import write_atomic
from sdrl.demo.results import DemoResult, mean_std
from sdrl.demo.settings import BASELINE, INITS
from sdrl.demo.verdict import verdict
from sdrl.viz.change import OUTCOME_COLOURS, outcome_picture, truth_picture
from sdrl.viz.figures import loss_curves, picture_table, score_bars
from sdrl.viz.preview import to_rgb

__all__ = ["machine", "write_report"]

PANEL_TILES = 3
"""Test tiles shown in ``predictions.png``."""

LEGEND = {
    "unchanged": OUTCOME_COLOURS["tn"],
    "change (found)": OUTCOME_COLOURS["tp"],
    "false alarm": OUTCOME_COLOURS["fp"],
    "change missed": OUTCOME_COLOURS["fn"],
    "ignored": OUTCOME_COLOURS["ignore"],
}


def machine() -> str:
    """CPU, cores, threads, GPU and versions, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} CPU cores ({torch.get_num_threads()} torch threads), {gpu}; "
        f"{platform.system()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"sdrl {__version__}"
    )


def _figures(result: DemoResult) -> list[Path]:
    folder = result.out / "figures"
    steps = result.settings.pretrain_steps
    logs = {m: r.run_dir / "metrics.csv" for m, r in result.pretrain_runs.items()}
    title = f"Pretraining loss ({steps} steps, {result.settings.backbone}; each panel its own loss)"
    seeds = ", ".join(map(str, result.settings.seeds))
    return [
        loss_curves(logs, folder / "pretrain_loss.png", title=title),
        score_bars(
            result.scores("f1"),
            folder / "f1_per_init.png",
            label="test F1 (change class)",
            title=f"Finetuned on {result.settings.labelled_tiles} labelled tiles; seeds {seeds}",
        ),
        _prediction_panels(result, folder / "predictions.png"),
    ]


def _prediction_panels(result: DemoResult, path: Path) -> Path:
    """Before | after | truth | one prediction per initialisation, most-changed test tiles."""
    dataset = ChangeDataset(result.out / "change", "test", cache_stats=False)
    samples = [dataset[i] for i in range(len(dataset))]
    changed = [float((s["change"].numpy() == 1).mean()) for s in samples]
    order = sorted(range(len(samples)), key=lambda i: -changed[i])[:PANEL_TILES]
    runs = {r.init: r for r in result.runs if r.seed == result.settings.seed}
    bands = dataset.meta.bands
    rows, titles = [], []
    for i in order:
        sample = samples[i]
        truth = sample["change"].numpy()
        row = [
            to_rgb(sample["image_a"].numpy(), bands),
            to_rgb(sample["image_b"].numpy(), bands),
            truth_picture(truth),
        ]
        for init in INITS:
            row.append(outcome_picture(_prediction(runs[init].predictions, sample["id"]), truth))
        rows.append(row)
        titles.append(f"tile {sample['id']}")
    columns = ["before", "after", "truth", *(f"{init}" for init in INITS)]
    title = f"Test predictions of the seed-{result.settings.seed} models"
    return picture_table(rows, path, columns, titles, legend=LEGEND, title=title)


def _prediction(folder: Path | None, tile_id: str) -> np.ndarray:
    """A saved 0/1 prediction (``evaluate(save_predictions=...)``: ``.tif``, or ``.png`` 0/255)."""
    assert folder is not None, "the first seed's runs save their predictions"
    path = folder / f"{tile_id}.tif"
    if not path.is_file():
        path = folder / f"{tile_id}.png"
    return read_raster(path).data[0] > 0


def _tiles(count: int) -> str:
    return f"{count} tile{'s' if count != 1 else ''}"


def _fmt(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.3f} ± {std:.3f}" if len(values) > 1 else f"{mean:.3f}"


def _score_table(result: DemoResult) -> list[str]:
    seeds = result.settings.seeds
    f1, iou = result.scores("f1"), result.scores("iou")
    precision, recall = result.scores("precision"), result.scores("recall")
    head = ["initialisation", *(f"F1 seed {s}" for s in seeds), "F1 mean ± std"]
    head += ["IoU mean ± std", "precision", "recall"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for init in INITS:
        cells = [init, *(f"{v:.3f}" for v in f1[init]), _fmt(f1[init]), _fmt(iou[init])]
        cells += [_fmt(precision[init]), _fmt(recall[init])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pretrain_table(result: DemoResult) -> list[str]:
    lines = [
        "| method | steps | seconds | last training loss | region k-NN probe accuracy (val) |",
        "|---|---|---|---|---|",
    ]
    for method, run in result.pretrain_runs.items():
        loss = "–" if run.final_loss is None else f"{run.final_loss:.3f}"
        probe = "–" if run.probe_acc is None else f"{run.probe_acc:.3f}"
        lines.append(f"| {method} | {run.steps} | {run.seconds:.0f} | {loss} | {probe} |")
    return lines


def _setup(result: DemoResult) -> list[str]:
    s = result.settings
    tiles = s.change_tiles
    pre_val = s.num - s.pretrain_tiles
    splits = ", ".join(f"{n} {name}" for name, n in tiles.items())
    times = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items() if k != "total")
    load = "unknown" if result.load is None else f"{result.load:.1f}"
    total = result.seconds.get("total", 0.0)
    bands = ChangeDataset(result.out / "change", "test", cache_stats=False).meta.bands
    return [
        f"- **Data**: the built-in data engine (`sdrl synth`), {s.size} × {s.size} px scenes, "
        f"{len(bands)} bands ({', '.join(bands)}). Pretraining set `pretrain/`: "
        f"{s.num} scenes ({s.pretrain_tiles} train, {pre_val} val) with semantic masks of both "
        f"dates, data seed {s.seed}. Change set `change/`: {s.num} other scenes ({splits}), "
        f"data seed {s.seed + 1}. Finetuning sees the labels of {s.labelled_tiles} of the "
        f"{tiles['train']} training tiles (label fraction {s.label_fraction:g}; each finetuning "
        "seed draws its own tiles, the same for the three initialisations). Scores are of the "
        f"change class on the {_tiles(tiles['test'])} of the test split, whole images "
        "(`sdrl evaluate`).",
        f"- **Budget**: backbone `{s.backbone}`. Pretraining: sdrl and {BASELINE}, "
        f"{s.pretrain_steps} steps × batch {s.batch_size} each on the same data and seed; the "
        "change models start from each run's `last.ckpt` (exactly those steps). Finetuning: "
        f"{s.finetune_steps} steps × batch {s.finetune_batch} per run, the same for every "
        f"initialisation (siamese model, FPN decoder), validated every "
        f"{s.val_every(s.finetune_steps)} steps; the best by validation F1 (`best.ckpt`) is "
        "evaluated.",
        f"- **Seeds**: data engine {s.seed} (pretraining set) and {s.seed + 1} (change set); "
        f"pretraining {s.seed}; finetuning {', '.join(map(str, s.seeds))} (labelled tiles, new "
        "layers, data order, augmentation).",
        f"- **Machine**: {machine()}; load average {load} at the start.",
        f"- **Wall time**: {total / 60:.1f} min in all ({times}).",
    ]


def write_report(result: DemoResult) -> Path:
    """Draw the figures and write ``report.md`` into the demo folder.

    Sets ``result.verdict``, ``result.figures`` and ``result.report``.

    Args:
        result: The demo's runs and scores (every initialisation × seed evaluated).

    Returns:
        The path of ``report.md``.
    """
    s = result.settings
    result.verdict = verdict(result.scores("f1"), BASELINE)
    result.figures = _figures(result)
    rel = [p.relative_to(result.out).as_posix() for p in result.figures]
    lines = [
        "# sdrl demo: does sdrl pretraining help change detection?",
        "",
        result.verdict,
        "",
        f"> **A smoke test, not a benchmark.** {s.pretrain_steps} pretraining and "
        f"{s.finetune_steps} finetuning steps on {s.num} generated scenes, "
        f"{len(s.seeds)} finetuning seed{'s' if len(s.seeds) > 1 else ''}: a budget chosen to "
        "finish in minutes on a laptop CPU. It shows how the question is asked and answered, "
        "not how the methods compare at a real budget. For that, run "
        "`experiments/compare.py` on real data with more steps and seeds (or this demo with "
        "larger `--pretrain-steps`, `--finetune-steps`, `--num`, `--size`).",
        "",
        "## Test scores per initialisation",
        "",
        "Change detection finetuned from random weights (`random`), from DetCon pretraining "
        f"(`{BASELINE}`, the baseline) and from sdrl pretraining (`sdrl`). Change class, test "
        "split; precision and recall are means over seeds.",
        "",
        *_score_table(result),
        "",
        f"![test F1 per initialisation]({rel[1]})",
        "",
        "## What was run",
        "",
        *_setup(result),
        "",
        "## Pretraining",
        "",
        *_pretrain_table(result),
        "",
        f"![pretraining loss curves]({rel[0]})",
        "",
        "The two objectives are different functions: compare the shape of each curve, not the "
        "values across panels. The probe is a k-NN classifier of region embeddings on the "
        "validation split (the last validation).",
        "",
        "## Predictions",
        "",
        f"![before, after, truth and predictions]({rel[2]})",
        "",
        "Truth: change white, unchanged black. Predictions: change found white, unchanged "
        "black, false alarm red, change missed blue; ignored pixels grey.",
        "",
        "## Files",
        "",
        "- `runs/pretrain_<method>/`: pretraining runs (`config.yaml`, `metrics.csv`, "
        "`last.ckpt`, `best.ckpt`)",
        "- `runs/finetune_<init>_seed<k>/`: finetuning runs: `config.yaml`, `metrics.csv`, "
        f"`best.ckpt` (the model evaluated; `last.ckpt` is removed to save disk space), the "
        f"test `metrics.json` and, for seed {s.seed}, `predictions/`",
        f"- `metrics_<init>.json`: seed {s.seed}'s test metrics (`metrics_pretrained.json` is "
        "`metrics_sdrl.json`, under the name of earlier demos)",
        "- `export_sdrl/`: the sdrl backbone as torchvision weights (`weights.safetensors`, "
        '`meta.json`; `sdrl.load_torchvision("export_sdrl")` for the torchvision backbones)',
        f"- `change_map.tif`: the seed-{s.seed} sdrl model's change map of a larger generated "
        "pair (`scene/`)",
        "- `preview_change.png`, `preview_pretrain.png`: training tiles before and after "
        "augmentation",
        "",
    ]
    path = result.out / "report.md"
    write_atomic(path, lambda file: file.write("\n".join(lines).encode()))
    result.report = path
    return path
