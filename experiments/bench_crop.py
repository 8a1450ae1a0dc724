"""Benchmark of the hierarchical crop classifier on generated crop data, at a fixed CPU budget.

Two parts, both written into ``--out``:

1. **Grid** (``--parts grid``): per-level macro F1 of {S2 only, S2 + EnMAP} × {random,
   sdrl-initialised encoders} × seeds, every cell with the same model size, steps, batch and
   data, trained by :func:`~sdrl.tasks.crop.run.train_crop` and its ``best.ckpt`` (best val
   mean macro F1) evaluated on the test split by :func:`~sdrl.tasks.crop.outputs.evaluate_crop`.
   The EnMAP stream is a 2D sdrl backbone (``--spectral-encoder``, resnet18) in both arms, so
   that the initialisation is the only difference. "sdrl-init" means:

   * EnMAP stream: ``--spectral-init`` from an ``sdrl export`` of ``sdrl pretrain
     --backbone <spectral encoder>`` on generated 13-band Sentinel-2-like scenes (the first
     layer is re-mapped by wavelength to EnMAP's 218 bands);
   * temporal stream: ``--temporal-init`` from ``sdrl export --bands sentinel2-10 --temporal T``
     of an ``sdrl pretrain`` of the Swin whose shape the size's video Swin has, when sdrl has
     one (``tiny`` ↔ the test-size ``swin_tiny_test``, ``default`` ↔ ``swin_t``; for a size
     without one the temporal stream is not initialised and results.md says so).
     ``--temporal-export`` / ``--spectral-export`` take ready exports instead (e.g. a
     ``swin_t`` pretrained on a GPU, for ``--model-size default``).

2. **Sizes** (``--parts sizes``): parameter count with and without EnMAP of the tiny, default
   and paper presets (H2Crop's class counts 7/37/83/102 by default), and the median time of a
   forward + backward + AdamW step on random inputs (``--size-batch`` patches of
   ``--size-patch`` px, ``--size-months`` months) for the sizes of ``--time-sizes`` (paper is
   counted on the meta device and timed only when listed there).

Outputs: ``results.csv`` (one row per cell), ``sizes.csv``, ``results.md`` (mean ± std over
seeds per level, H2Crop's scheme, plus valid paths; then the sizes), ``cells/<streams>_<init>
_s<seed>/`` (run + ``metrics.json``; a finished cell keeps only ``best.ckpt``: with the
resnet18 EnMAP stream a checkpoint holds ~150 MB), ``pretrain/`` and ``exports/``, ``data/``.
Resumable: finished cells and sizes are skipped, interrupted runs continue from ``last.ckpt``;
``bench.json`` records the budget and another budget into the same ``--out`` is refused.

Smoke test (about 1.5 min on 2 shared CPU cores)::

    python experiments/bench_crop.py --out /tmp/bench_crop_smoke --steps 2 --num 24 --seeds 0 \\
        --pretrain-steps 2 --pretrain-num 12 --size-steps 1

The full benchmark (run it when the CPU is free)::

    python experiments/bench_crop.py --out runs/bench_crop --num 200 --patch-size 48 \\
        --seeds 0,1,2 --steps 300 --batch-size 4 --pretrain-steps 300 --pretrain-num 128 \\
        --sizes tiny,default,paper --time-sizes tiny,default

Estimated runtime, from the smoke timings on 2 CPU cores: about 40 min when the cores are
free (tiny steps of batch 4 at 48 px and 12 months: ~0.3 s S2 only, ~0.7 s with the resnet18
EnMAP stream; ~2 s per resnet18 pretraining step; 6-8 s per default-size timed step), i.e.
3 × 300 S2-only steps + 6 × 300 S2 + EnMAP steps + 300 pretraining steps + validation and
evaluation; 1.5-2 h when the cores are shared with another job, as during the smoke test.
With ``--model-size default`` (which also pretrains a swin_t for the temporal stream) every
step costs 6-10 s on a CPU: use a GPU (``--accelerator gpu``). Then paste ``results.md``
into experiments/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from sdrl import PretrainConfig, export_backbone, generate_dataset, pretrain
from sdrl.data.crop.synth_folder import generate_crop_dataset
from sdrl.data.staging import write_atomic, write_json_atomic
from sdrl.demo.report import machine
from sdrl.errors import ConfigError, SdrlError
from sdrl.export.torchvision_models import architecture_config
from sdrl.models import build_backbone
from sdrl.models.crop import (
    PRESETS,
    CropModelConfig,
    build_crop_model,
    count_parameters,
    hierarchical_loss,
)
from sdrl.tasks.crop import CropConfig
from sdrl.tasks.crop.config import ModelSize, SpectralEncoder
from sdrl.tasks.crop.outputs import evaluate_crop
from sdrl.tasks.crop.run import train_crop

log = logging.getLogger("bench_crop")

STREAMS = {"s2": "S2 only", "s2_enmap": "S2 + EnMAP"}
INITS = {"random": "random", "sdrl": "sdrl-init"}
SIZES = tuple(PRESETS)
TEMPORAL_CANDIDATES = ("swin_tiny_test", "swin_t")
"""``sdrl pretrain`` backbones whose inflation may fit a preset's temporal Swin."""
PRETRAIN_BANDS = 13  # Sentinel-2 B01..B12: names and wavelengths known, a superset of S2-10
LEVELS = 4
WARMUP = 2
"""Untimed steps before the timed ones (the first steps allocate and pick kernels)."""
COLUMNS = (
    "streams", "init", "seed",
    *(f"macro_f1_l{i + 1}" for i in range(LEVELS)),
    "macro_f1", "miou", "oa", "nobg_macro_f1", "valid_paths",
    "steps", "seconds", "temporal_init", "spectral_init", "checkpoint", "metrics",
)  # fmt: skip
SIZE_COLUMNS = ("size", "params_s2_enmap", "params_s2", "step_s_s2_enmap", "step_s_s2")
# Settings that change what the grid measures: a later call into the same --out must agree.
BUDGET = (
    "data", "num", "patch_size", "synth_seed", "model_size", "months", "steps", "batch_size",
    "spectral_encoder", "lr", "pretrain_steps", "pretrain_num", "pretrain_size",
    "pretrain_batch_size", "temporal_export", "spectral_export",
)  # fmt: skip


@dataclass
class Settings:
    """The resolved flags (see ``--help``)."""

    out: Path
    data: str | None = None
    num: int = 200
    patch_size: int = 48
    synth_seed: int = 0
    model_size: str = "tiny"
    months: int = 12
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 300
    batch_size: int = 4
    lr: float | None = None
    spectral_encoder: str = "resnet18"
    pretrain_steps: int = 300
    pretrain_num: int = 128
    pretrain_size: int = 64
    pretrain_batch_size: int = 8
    temporal_export: str | None = None
    spectral_export: str | None = None
    parts: list[str] = field(default_factory=lambda: ["grid", "sizes"])
    sizes: list[str] = field(default_factory=lambda: list(SIZES))
    time_sizes: list[str] = field(default_factory=lambda: ["tiny", "default"])
    size_patch: int = 48
    size_months: int = 12
    size_batch: int = 2
    size_steps: int = 5
    size_classes: list[int] = field(default_factory=lambda: [7, 37, 83, 102])
    num_workers: int = 0
    accelerator: str = "cpu"

    @property
    def crop_data(self) -> Path:
        """The crop folder of the grid."""
        return Path(self.data) if self.data else self.out / "data" / "crop"

    def budget(self) -> dict[str, Any]:
        """The settings every cell shares (:data:`BUDGET`)."""
        values = asdict(self)
        return {k: values[k] for k in BUDGET}


@dataclass
class Exports:
    """The encoders' sdrl initialisation, and what could not be initialised and why."""

    temporal: str | None = None
    spectral: str | None = None
    notes: list[str] = field(default_factory=list)
    pretraining: list[dict[str, Any]] = field(default_factory=list)


def _csv_list(text: str, kind: type = str) -> list[Any]:
    return [kind(x.strip()) for x in text.split(",") if x.strip()]


def parse_settings(argv: Sequence[str]) -> Settings:
    """Settings from the command line (``--help`` lists them)."""
    d = Settings(out=Path("."))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--data", help="a crop folder (default: generate one into OUT/data/crop)")
    p.add_argument("--num", type=int, default=d.num, help="generated patches")
    p.add_argument("--patch-size", type=int, default=d.patch_size, help="generated patch px")
    p.add_argument("--synth-seed", type=int, default=d.synth_seed, help="seed of generated data")
    p.add_argument("--model-size", choices=SIZES, default=d.model_size, help="grid's preset")
    p.add_argument("--months", type=int, default=d.months, help="months T of every cell")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the grid, comma-separated")
    p.add_argument("--steps", type=int, default=d.steps, help="optimiser steps of every cell")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="patches per step")
    p.add_argument("--lr", type=float, help="peak lr of every cell (default AdamW's)")
    p.add_argument("--spectral-encoder", choices=("resnet18", "swin_t"), default="resnet18")
    p.add_argument("--pretrain-steps", type=int, default=d.pretrain_steps)
    p.add_argument("--pretrain-num", type=int, default=d.pretrain_num, help="pretrain scenes")
    p.add_argument("--pretrain-size", type=int, default=d.pretrain_size, help="scene px")
    p.add_argument("--pretrain-batch-size", type=int, default=d.pretrain_batch_size)
    p.add_argument("--temporal-export", help="ready `sdrl export --temporal` for sdrl-init")
    p.add_argument("--spectral-export", help="ready 2D `sdrl export` for sdrl-init")
    p.add_argument("--parts", default="grid,sizes", help="grid, sizes or both")
    p.add_argument("--sizes", default=",".join(SIZES), help="presets whose parameters count")
    p.add_argument("--time-sizes", default="tiny,default", help="presets whose step is timed")
    p.add_argument("--size-patch", type=int, default=d.size_patch, help="timed patch px")
    p.add_argument("--size-months", type=int, default=d.size_months, help="timed months")
    p.add_argument("--size-batch", type=int, default=d.size_batch, help="timed batch")
    p.add_argument("--size-steps", type=int, default=d.size_steps, help="timed steps (median)")
    p.add_argument("--size-classes", default="7,37,83,102", help="classes per level (+ bg)")
    p.add_argument("--num-workers", type=int, default=d.num_workers)
    p.add_argument("--accelerator", default=d.accelerator, help="cpu (default), gpu, auto")
    a = p.parse_args(argv)
    s = Settings(
        out=a.out, data=a.data, num=a.num, patch_size=a.patch_size, synth_seed=a.synth_seed,
        model_size=a.model_size, months=a.months, seeds=_csv_list(a.seeds, int),
        steps=a.steps, batch_size=a.batch_size, lr=a.lr, spectral_encoder=a.spectral_encoder,
        pretrain_steps=a.pretrain_steps, pretrain_num=a.pretrain_num,
        pretrain_size=a.pretrain_size, pretrain_batch_size=a.pretrain_batch_size,
        temporal_export=a.temporal_export, spectral_export=a.spectral_export,
        parts=_csv_list(a.parts), sizes=_csv_list(a.sizes), time_sizes=_csv_list(a.time_sizes),
        size_patch=a.size_patch, size_months=a.size_months, size_batch=a.size_batch,
        size_steps=a.size_steps, size_classes=_csv_list(a.size_classes, int),
        num_workers=a.num_workers, accelerator=a.accelerator,
    )  # fmt: skip
    unknown = sorted(set(s.parts) - {"grid", "sizes"}) + sorted(
        set(s.sizes + s.time_sizes) - set(SIZES)
    )
    if unknown:
        raise ConfigError(f"unknown part or size {', '.join(unknown)}")
    if s.patch_size % 3 or s.size_patch % 3:
        raise ConfigError("--patch-size and --size-patch: multiples of 3 (EnMAP's grid)")
    return s


# ---------------------------------------------------------------- initialisation


def temporal_backbone(size: str) -> str | None:
    """The ``sdrl pretrain`` backbone whose video inflation is the temporal Swin of ``size``."""
    preset = PRESETS[size]
    for name in TEMPORAL_CANDIDATES:
        with torch.device("meta"):
            config = architecture_config(build_backbone(name, 10))
        if (
            config.get("embed_dim") == preset.embed_dim
            and list(config.get("depths") or []) == list(preset.depths)
            and list(config.get("num_heads") or []) == list(preset.num_heads)
            and list(config.get("window_size") or []) == list(preset.window[1:])
        ):
            return name
    return None


def _pretrained_export(s: Settings, backbone: str, temporal: int | None) -> tuple[str, dict]:
    """Pretrain ``backbone`` (or resume) on generated 13-band scenes, then export it."""
    kind = "temporal" if temporal else "spectral"
    out = s.out / "exports" / kind
    done = out.parent / f"{kind}.json"
    if done.is_file() and (out / "meta.json").is_file():
        return str(out), json.loads(done.read_text())
    data = s.out / "data" / "pretrain"
    if not (data / "dataset.json").is_file():
        log.info("generating %d pretraining scenes in %s", s.pretrain_num, data)
        generate_dataset(
            data, kind="pretrain", num=s.pretrain_num, size=s.pretrain_size,
            bands=PRETRAIN_BANDS, seed=s.synth_seed, overwrite=True,
        )  # fmt: skip
    run = s.out / "pretrain" / backbone
    log.info("pretraining %s (%d steps) in %s", backbone, s.pretrain_steps, run)
    start = time.perf_counter()
    result = pretrain(
        PretrainConfig(
            str(data), str(run), backbone=backbone, max_steps=s.pretrain_steps,
            batch_size=s.pretrain_batch_size, probe="none", val_split=None, resume=True,
            num_workers=s.num_workers, accelerator=s.accelerator, progress_bar=False,
            log_every=max(1, min(50, s.pretrain_steps)),
        )
    )  # fmt: skip
    bands = "sentinel2-10" if temporal else None
    export_backbone(result.last_checkpoint, out, bands=bands, temporal=temporal, overwrite=True)
    record = {
        "stream": kind, "backbone": backbone, "steps": result.global_step,
        "seconds": round(time.perf_counter() - start, 1), "export": str(out),
    }  # fmt: skip
    write_json_atomic(done, record)
    return str(out), record


def prepare_exports(s: Settings) -> Exports:
    """The exports of the sdrl-init arm: given, or pretrained here when an architecture fits."""
    exports = Exports(temporal=s.temporal_export, spectral=s.spectral_export)
    if exports.temporal is None:
        backbone = temporal_backbone(s.model_size)
        if backbone is None:
            preset = PRESETS[s.model_size]
            exports.notes.append(
                f"temporal stream not initialised: the {s.model_size} preset's video Swin "
                f"(embed {preset.embed_dim}, depths {list(preset.depths)}) matches no `sdrl "
                f"pretrain` backbone ({', '.join(TEMPORAL_CANDIDATES)}); pass "
                "--temporal-export or --model-size default"
            )
        else:
            exports.temporal, record = _pretrained_export(s, backbone, s.months + s.months % 2)
            exports.pretraining.append(record)
    if exports.spectral is None:
        exports.spectral, record = _pretrained_export(s, s.spectral_encoder, None)
        exports.pretraining.append(record)
    return exports


# ---------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    streams: str
    init: str
    seed: int

    @property
    def key(self) -> tuple[str, str, str]:
        """Its key in results.csv."""
        return self.streams, self.init, str(self.seed)

    def folder(self, out: Path) -> Path:
        """``cells/<streams>_<init>_s<seed>``."""
        return out / "cells" / f"{self.streams}_{self.init}_s{self.seed}"


def inits_of(cell: Cell, exports: Exports) -> tuple[str | None, str | None]:
    """``(temporal_init, spectral_init)`` of a cell; both ``None`` for the random arm."""
    if cell.init == "random":
        return None, None
    return exports.temporal, exports.spectral if cell.streams == "s2_enmap" else None


def run_cell(s: Settings, cell: Cell, exports: Exports) -> dict[str, Any]:
    """Train (or resume) and evaluate one cell; returns its results.csv row."""
    temporal, spectral = inits_of(cell, exports)
    folder = cell.folder(s.out)
    start = time.perf_counter()
    config = CropConfig(
        str(s.crop_data), str(folder / "run"), size=cast(ModelSize, s.model_size),
        months=s.months, enmap=cell.streams == "s2_enmap",
        spectral_encoder=cast(SpectralEncoder, s.spectral_encoder),
        temporal_init=temporal, spectral_init=spectral, max_steps=s.steps,
        batch_size=s.batch_size, lr=s.lr, seed=cell.seed, resume=True,
        num_workers=s.num_workers, accelerator=s.accelerator, progress_bar=False,
        log_every=max(1, min(50, s.steps)), checkpoint_every=max(1, min(100, s.steps)),
    )  # fmt: skip
    run = train_crop(config)
    device = "cuda" if s.accelerator in ("gpu", "cuda") else "cpu"
    metrics = evaluate_crop(
        s.crop_data, run.best_checkpoint, folder / "metrics.json", split="test",
        device=device, num_workers=s.num_workers, batch_size=s.batch_size,
    )  # fmt: skip
    ours = metrics["with_background"]
    levels = ours["levels"]
    return {
        "streams": cell.streams,
        "init": cell.init,
        "seed": cell.seed,
        **{f"macro_f1_l{i + 1}": f"{levels[i]['macro_f1']:.6f}" for i in range(len(levels))},
        **{k: f"{ours['mean'][k]:.6f}" for k in ("macro_f1", "miou", "oa")},
        "nobg_macro_f1": f"{metrics['without_background']['mean']['macro_f1']:.6f}",
        "valid_paths": f"{metrics['valid_paths']:.6f}",
        "steps": run.global_step,
        "seconds": f"{time.perf_counter() - start:.1f}",
        "temporal_init": temporal or "",
        "spectral_init": spectral or "",
        "checkpoint": str(run.best_checkpoint),
        "metrics": str(folder / "metrics.json"),
    }


def read_rows(path: Path, key: Sequence[str]) -> dict[tuple[str, ...], dict[str, str]]:
    """The rows of a CSV by ``key`` columns (empty when there is none)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as file:
        return {tuple(r[k] for k in key): r for r in csv.DictReader(file)}


def write_rows(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Write a CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    write_atomic(path, lambda file: file.write(data))


def check_budget(s: Settings) -> None:
    """Record the budget in ``bench.json``; refuse another budget into the same ``--out``."""
    path = s.out / "bench.json"
    budget = s.budget()
    if path.is_file():
        earlier = json.loads(path.read_text())
        changed = sorted(k for k in budget if earlier.get(k) != budget[k])
        if changed:
            found = ", ".join(f"{k}: {earlier.get(k)!r} -> {budget[k]!r}" for k in changed)
            raise ConfigError(f"{path}: this --out was run with another budget ({found})")
    write_json_atomic(path, budget)


def run_grid(s: Settings) -> tuple[list[dict[str, Any]], Exports]:
    """Every cell not finished yet, then all rows."""
    check_budget(s)
    if not s.data and not (s.crop_data / "dataset.json").is_file():
        log.info("generating %d crop patches of %d px in %s", s.num, s.patch_size, s.crop_data)
        generate_crop_dataset(s.crop_data, s.num, s.patch_size, s.synth_seed, overwrite=True)
    exports = prepare_exports(s)
    cells = [Cell(st, init, seed) for st in STREAMS for init in INITS for seed in s.seeds]
    runnable = [c for c in cells if c.init == "random" or any(inits_of(c, exports))]
    for cell in sorted(set(cells) - set(runnable), key=lambda c: c.key):
        exports.notes.append(f"{cell.streams} {cell.init} s{cell.seed}: nothing to initialise")
    path = s.out / "results.csv"
    rows = read_rows(path, ("streams", "init", "seed"))
    for i, cell in enumerate(runnable, 1):
        if cell.key in rows and Path(rows[cell.key]["metrics"]).is_file():
            log.info("[%d/%d] %s %s seed %d: done", i, len(runnable), *cell.key[:2], cell.seed)
            continue
        log.info("[%d/%d] %s %s seed %d ...", i, len(runnable), *cell.key[:2], cell.seed)
        row = run_cell(s, cell, exports)
        rows[cell.key] = {k: str(v) for k, v in row.items()}
        write_rows(path, list(rows.values()), COLUMNS)
        Path(row["checkpoint"]).with_name("last.ckpt").unlink(missing_ok=True)  # done: best only
        levels = " ".join(row[f"macro_f1_l{j + 1}"][:5] for j in range(LEVELS))
        log.info(
            "[%d/%d] macro F1 per level %s, valid paths %s (%s s)",
            i, len(runnable), levels, row["valid_paths"][:5], row["seconds"],
        )  # fmt: skip
    keys = {c.key for c in runnable}
    return [r for k, r in rows.items() if k in keys], exports


# ---------------------------------------------------------------- sizes


def _step_seconds(config: CropModelConfig, s: Settings) -> float:
    """Median seconds of a forward + backward + AdamW step on random inputs."""
    torch.manual_seed(0)
    model = build_crop_model(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b, t, p = s.size_batch, s.size_months, s.size_patch
    s2 = torch.randn(b, t, 10, p, p)
    enmap = torch.randn(b, config.enmap_bands, p // 3, p // 3) if config.enmap_bands else None
    label = torch.stack([torch.randint(0, k, (b, p, p)) for k in config.num_classes], dim=1)
    times = []
    for _ in range(WARMUP + s.size_steps):
        start = time.perf_counter()
        loss, _ = hierarchical_loss(model(s2, enmap), label)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[WARMUP:])


def run_sizes(s: Settings) -> list[dict[str, Any]]:
    """Parameters (and step times) of each preset; finished rows are kept."""
    path = s.out / "sizes.csv"
    rows = read_rows(path, ("size",))
    settings = {
        k: getattr(s, f"size_{k}") for k in ("patch", "months", "batch", "steps", "classes")
    }
    record = s.out / "sizes.json"
    if record.is_file() and json.loads(record.read_text()) != settings:
        log.info("sizes: other settings than %s, measuring again", record)
        rows = {}
    write_json_atomic(record, settings)
    for size in s.sizes:
        timed = size in s.time_sizes
        row = rows.get((size,))
        if row is not None and (row.get("step_s_s2") or not timed):
            continue
        out: dict[str, Any] = {"size": size}
        for enmap, suffix in ((218, "s2_enmap"), (0, "s2")):
            config = CropModelConfig(
                tuple(s.size_classes), months=s.size_months, enmap_bands=enmap, size=size
            )
            with torch.device("meta"):
                out[f"params_{suffix}"] = count_parameters(build_crop_model(config))
            if timed:
                log.info("timing the %s preset (%s)", size, STREAMS[suffix])
                out[f"step_s_{suffix}"] = f"{_step_seconds(config, s):.3f}"
        log.info("%s: %s", size, out)
        rows[(size,)] = out
        write_rows(path, list(rows.values()), SIZE_COLUMNS)
    return [rows[(size,)] for size in s.sizes if (size,) in rows]


# ---------------------------------------------------------------- report


def _mean_std(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def write_report(
    s: Settings, rows: Sequence[dict[str, Any]], exports: Exports | None, sizes: Sequence[dict]
) -> Path:
    """``results.md``: the caveat, the budget, the grid's table and the sizes' table."""
    data = s.data or (
        f"{s.crop_data} ({s.num} generated patches of {s.patch_size} px, seed {s.synth_seed})"
    )
    lines = [
        "# Crop classifier on generated data: EnMAP and sdrl initialisation",
        "",
        "**Read this first.** The data are generated (`sdrl synth --kind crop`): sibling leaf "
        "classes differ only in narrow EnMAP absorption features, so any gain of EnMAP or of an "
        "initialisation here reflects the generator, not real fields. The H2Crop paper's +4.2 "
        "F1 of EnMAP was measured on the real H2Crop data; nothing here confirms or refutes it.",
        "",
        f"- machine: {machine()}",
    ]
    if exports is not None:  # the grid ran
        lines += [
            f"- data: {data}",
            f"- every cell: `--size {s.model_size}`, {s.months} months, {s.steps} steps of "
            f"batch {s.batch_size}, lr {s.lr or 'AdamW default'}, EnMAP encoder "
            f"{s.spectral_encoder}; best val mean macro F1 checkpoint evaluated on the test split",
            f"- seeds: {', '.join(map(str, s.seeds))}",
        ]
        lines.append(f"- sdrl-init temporal: {exports.temporal or 'none'}")
        lines.append(f"- sdrl-init EnMAP: {exports.spectral or 'none'}")
        for record in exports.pretraining:
            lines.append(
                f"- pretraining ({record['stream']}): `sdrl pretrain --backbone "
                f"{record['backbone']}`, {record['steps']} steps of batch "
                f"{s.pretrain_batch_size} on {s.pretrain_num} generated {PRETRAIN_BANDS}-band "
                f"{s.pretrain_size} px scenes, exported to {record['export']} "
                f"({record['seconds']} s)"
            )
        lines += [f"- note: {note}" for note in exports.notes]
    if rows:
        lines += [
            "",
            "## Macro F1 per level (H2Crop's scheme: background included), mean ± std over seeds",
            "",
            "| streams | init | L1 | L2 | L3 | L4 | mean | mean without bg | valid paths | n |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for streams, init in ((st, i) for st in STREAMS for i in INITS):
            group = [r for r in rows if r["streams"] == streams and r["init"] == init]
            if not group:
                blank = " | ".join(["n/a"] * (LEVELS + 3))
                lines.append(f"| {STREAMS[streams]} | {INITS[init]} | {blank} | 0 |")
                continue

            def cell(name: str, group: list[dict[str, Any]] = group) -> str:
                return _mean_std([float(r[name]) for r in group])

            levels = " | ".join(cell(f"macro_f1_l{i + 1}") for i in range(LEVELS))
            lines.append(
                f"| {STREAMS[streams]} | {INITS[init]} | {levels} | {cell('macro_f1')} | "
                f"{cell('nobg_macro_f1')} | {cell('valid_paths')} | {len(group)} |"
            )
    if sizes:
        lines += [
            "",
            f"## Model sizes ({', '.join(map(str, s.size_classes))} classes per level; step = "
            f"forward + backward + AdamW, batch {s.size_batch}, {s.size_patch} px, "
            f"{s.size_months} months, median of {s.size_steps})",
            "",
            "| size | parameters S2 + EnMAP | parameters S2 only | step S2 + EnMAP (s) | "
            "step S2 only (s) |",
            "|---|---|---|---|---|",
        ]
        for r in sizes:
            lines.append(
                f"| {r['size']} | {int(r['params_s2_enmap']):,} | {int(r['params_s2']):,} | "
                f"{r.get('step_s_s2_enmap') or 'not timed'} | {r.get('step_s_s2') or 'not timed'} |"
            )
    path = s.out / "results.md"
    text = "\n".join(lines) + "\n"
    write_atomic(path, lambda file: file.write(text.encode()))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the parts asked for; ``bench_crop.py: error: ...`` and 2 on bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for name in ("lightning", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        s = parse_settings(argv)
        s.out.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, Any]] = []
        exports = None
        if "grid" in s.parts:
            rows, exports = run_grid(s)
        sizes = run_sizes(s) if "sizes" in s.parts else []
        log.info("results: %s", write_report(s, rows, exports, sizes))
    except SdrlError as error:
        print(f"bench_crop.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
