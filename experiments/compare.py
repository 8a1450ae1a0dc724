"""The comparison of initialisations for change detection, on any change dataset, in one command.

::

    python experiments/compare.py --out runs/compare          # built-in data: minutes on a CPU
    python experiments/compare.py --config experiments/configs/levir.yaml --out runs/levir \\
        --accelerator gpu --imagenet-weights resnet18-imagenet.pth --linear-probe

The grid is initialisation × label fraction × seed (× head with ``--linear-probe``):

* initialisations: ``random``; ``imagenet`` (the torchvision state dict of
  ``--imagenet-weights``, adapted to the band count by ``sdrl finetune --init FILE``);
  ``supervised`` (in-domain supervised pretraining: semantic segmentation of the masks of
  ``--pretrain-data``), ``simclr``, ``moco``, ``byol``, ``detcon`` and ``sdrl``, each
  pretrained by ``sdrl pretrain --method M`` on ``--pretrain-data`` with the same budget
  (backbone, steps, batch, crop, data, seed).
* label fractions of the training split (``sdrl finetune --label-fraction``; the tile subset
  is drawn from the cell's seed), each run with the same finetuning budget (steps, batch).
* heads: ``fpn`` (the full siamese model) and, with ``--linear-probe``, ``linear`` (a frozen
  encoder and a linear head: ``sdrl finetune --head linear``).

Pretraining runs are shared: one per method (seed ``--pretrain-seed``) serves every fraction,
seed and head, or one per method × seed with ``--pretrain-per-seed``. Each initialises the
encoder from its ``last.ckpt``, so every method gets exactly ``--pretrain-steps``; finetuned
models are evaluated from ``best.ckpt`` (best validation F1; the last one without validation)
on ``--eval-split`` by ``sdrl evaluate``'s whole-image protocol unless ``--eval-option`` says
otherwise.

Outputs in ``--out``: ``results.csv`` (one row per cell), ``results.md`` (mean ± std over
seeds of F1 and IoU per initialisation × fraction, with the data, budgets, seeds and machine
at the top), ``f1_vs_fraction.png``; ``cells/<init>/<head>_f<fraction>_s<seed>/`` (the
finetuning run and ``metrics.json``) and ``pretrain/<method>_s<seed>/`` (pretraining runs).
It is resumable: a cell whose row is in ``results.csv`` and whose ``metrics.json`` exists is
not run again, a finished pretraining is not run again, and interrupted runs continue from
their ``last.ckpt``. ``compare.json`` records the budget; a later call into the same ``--out``
with another budget is refused (more inits, fractions or seeds are welcome).

Every flag is also a key of ``--config YAML`` (flag names, ``-`` or ``_``; lists as YAML lists
or comma-separated strings); the flags given on the command line win.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import io
import json
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sdrl import (
    FinetuneConfig,
    PretrainConfig,
    __version__,
    finetune,
    generate_dataset,
    pretrain,
)
from sdrl.cli.config import apply_config
from sdrl.data.staging import write_atomic, write_json_atomic
from sdrl.data.synth import SynthKind
from sdrl.demo.report import machine
from sdrl.errors import ConfigError, SdrlError
from sdrl.evaluation import evaluate
from sdrl.tasks.loggers import is_global_zero

log = logging.getLogger("compare")

PRETRAIN_METHODS = ("supervised", "simclr", "moco", "byol", "detcon", "sdrl")
INITS = ("random", "imagenet", *PRETRAIN_METHODS)
# Set by the grid for every run; the option flags may not change them.
GRID_FIELDS = {
    "data", "out", "seed", "max_steps", "max_epochs", "batch_size", "backbone", "method",
    "init", "label_fraction", "head", "resume", "overwrite", "accelerator", "devices",
    "num_workers", "method_options", "model_options",
}  # fmt: skip
EVAL_OPTIONS = ("protocol", "tile", "overlap", "stitch", "threshold", "batch_size")
# Settings that change what a cell measures: a later call into the same --out must agree.
BUDGET = (
    "data", "pretrain_data", "eval_data", "backbone", "pretrain_steps", "finetune_steps",
    "batch_size", "pretrain_batch_size", "crop_size", "pretrain_seed", "pretrain_per_seed",
    "imagenet_weights", "pretrain_options", "finetune_options", "method_options", "model_options",
    "validations", "eval_split", "eval_options", "synth_num", "synth_size", "synth_bands",
    "synth_seed",
)  # fmt: skip
COLUMNS = (
    "init", "head", "fraction", "seed", "f1", "iou", "precision", "recall", "steps", "seconds",
    "pretrain_steps", "pretrain_seconds", "pretrain_checkpoint", "checkpoint", "metrics",
)  # fmt: skip
DONE = "compare_done.json"


@dataclass
class Settings:
    """The resolved flags (see ``--help``)."""

    out: Path
    data: str | None = None
    pretrain_data: str | None = None
    pretrain_dir: str | None = None
    eval_data: str | None = None
    inits: list[str] = field(default_factory=list)
    fractions: list[float] = field(default_factory=lambda: [0.1, 1.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    pretrain_steps: int = 30
    finetune_steps: int = 20
    backbone: str = "resnet_tiny"
    batch_size: int = 4
    pretrain_batch_size: int = 8
    crop_size: int | None = None
    imagenet_weights: str | None = None
    linear_probe: bool = False
    pretrain_seed: int = 0
    pretrain_per_seed: bool = False
    validations: int = 5
    eval_split: str = "test"
    accelerator: str = "auto"
    devices: str = "auto"
    num_workers: int = 0
    pretrain_options: dict[str, Any] = field(default_factory=dict)
    finetune_options: dict[str, Any] = field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    eval_options: dict[str, Any] = field(default_factory=dict)
    synth_num: int = 100
    synth_size: int = 64
    synth_bands: int = 4
    synth_seed: int = 0

    @property
    def pretrain_root(self) -> Path:
        """Where the pretraining runs live (shared between comparisons with --pretrain-dir)."""
        return Path(self.pretrain_dir) if self.pretrain_dir else self.out / "pretrain"

    def pretrain_settings(self, method: str) -> dict[str, Any]:
        """What defines a pretraining run of ``method`` (JSON-ready): reused only if equal."""
        settings = {
            "data": str(self.pretrain_data or self.out / "data" / "pretrain"),
            "steps": self.pretrain_steps,
            "batch_size": self.pretrain_batch_size,
            "backbone": self.backbone,
            "crop_size": self.crop_size,
            "validations": self.validations,
            "options": self.pretrain_options,
            "method_options": self.method_options.get(method, {}),
        }
        if self.pretrain_data is None:
            settings["synth"] = [self.synth_num, self.synth_size, self.synth_bands, self.synth_seed]
        return json.loads(json.dumps(settings, default=str))

    @property
    def heads(self) -> list[str]:
        return ["fpn", "linear"] if self.linear_probe else ["fpn"]

    def budget(self) -> dict[str, Any]:
        """The settings that define what a cell measures (JSON-ready)."""
        return json.loads(json.dumps({k: getattr(self, k) for k in BUDGET}, default=str))


@dataclass(frozen=True)
class Cell:
    """One finetuning + evaluation: an initialisation, a head, a label fraction, a seed."""

    init: str
    head: str
    fraction: float
    seed: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.init, self.head, f"{self.fraction:g}", str(self.seed))

    def folder(self, out: Path) -> Path:
        return out / "cells" / self.init / f"{self.head}_f{self.fraction:g}_s{self.seed}"


# ---------------------------------------------------------------- flags and configs


def _split_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def _numbers(kind: type) -> Any:
    """An argparse ``type``: ``"0.1,1"`` → ``[0.1, 1.0]`` (a YAML list arrives comma-joined)."""

    def parse(text: str) -> list:
        try:
            return [kind(v) for v in _split_list(text)]
        except ValueError:
            found = f"expected comma-separated numbers, found {text!r}"
            raise argparse.ArgumentTypeError(found) from None

    parse.__name__ = f"{kind.__name__} list"
    return parse


def _key_values(items: Sequence[Any] | None, flag: str) -> dict[str, Any]:
    """``["lr=0.01", ...]`` → ``{"lr": 0.01}``, values read as YAML."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag}: expected KEY=VALUE, found {item!r}")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compare.py",
        description="Initialisations × label fractions × seeds for change detection: "
        "results.csv, results.md, f1_vs_fraction.png (module docstring for the details).",
    )
    d = Settings(out=Path())
    add = parser.add_argument
    add("--config", metavar="YAML", help="YAML file of flag: value defaults")
    add("--debug", action="store_true", help="show tracebacks")
    add("--out", required=True, help="output folder (resumable)")
    add("--data", help="change dataset folder (default: generated into OUT/data/change)")
    add("--pretrain-data", help="pretraining dataset folder (default: OUT/data/pretrain)")
    add("--pretrain-dir", metavar="DIR", help="pretraining runs, shared between comparisons "
        "(e.g. folds of one dataset; default OUT/pretrain); a finished run with other "
        "pretraining settings is refused")  # fmt: skip
    add("--eval-data", help="change dataset folder evaluated (default --data), e.g. whole images")
    add("--inits", type=_split_list, help=f"initialisations, of {','.join(INITS)} (default: "
        "all; imagenet with --imagenet-weights)")  # fmt: skip
    add("--fractions", type=_numbers(float), default=d.fractions, help="label fractions "
        "(default 0.1,1.0)")  # fmt: skip
    add("--seeds", type=_numbers(int), default=d.seeds, help="finetuning seeds (default 0,1)")
    add("--pretrain-steps", type=int, default=d.pretrain_steps, help="steps per pretraining")
    add("--finetune-steps", type=int, default=d.finetune_steps, help="steps per finetuning")
    add("--backbone", default=d.backbone, help="backbone of every run (default resnet_tiny)")
    add("--batch-size", type=int, default=d.batch_size, help="finetuning batch per process")
    add("--pretrain-batch-size", type=int, default=d.pretrain_batch_size)
    add("--crop-size", type=int, help="random crops for pretraining and finetuning")
    add("--imagenet-weights", metavar="FILE", help="torchvision state dict: the imagenet row")
    add("--linear-probe", action="store_true", help="add frozen-encoder linear-probe rows")
    add("--pretrain-seed", type=int, default=d.pretrain_seed, help="seed of shared pretraining")
    add("--pretrain-per-seed", action="store_true", help="one pretraining per method × seed")
    add("--validations", type=int, default=d.validations, help="validations per training run, "
        "evenly spaced in steps whatever the fraction (default 5)")  # fmt: skip
    add("--eval-split", default=d.eval_split, help="split evaluated (default test)")
    add("--accelerator", default=d.accelerator, help="auto, cpu, gpu... (every run)")
    add("--devices", default=d.devices, help="auto, a count or ids (every training run)")
    add("--num-workers", type=int, default=d.num_workers, help="loader processes per run")
    for flag, what in (
        ("--pretrain-option", "a PretrainConfig field, e.g. probe=none"),
        ("--finetune-option", "a FinetuneConfig field, e.g. val_split=none"),
        ("--method-option", "METHOD:KEY=VALUE, a method option, e.g. sdrl:decouple_weight=0.5"),
        ("--model-option", "a change-model option, e.g. decoder_channels=16"),
        ("--eval-option", f"an evaluate() argument: {', '.join(EVAL_OPTIONS)}"),
    ):
        add(flag, action="append", metavar="KEY=VALUE", help=f"{what} (repeatable)")
    for name in ("num", "size", "bands", "seed"):
        default = getattr(d, f"synth_{name}")
        add(f"--synth-{name}", type=int, default=default, help=f"built-in data: {name}")
    return parser


def parse_settings(argv: Sequence[str]) -> Settings:
    """Flags (over ``--config``) → checked :class:`Settings`.

    Raises:
        ConfigError: An unknown initialisation or option, a bad list, a run setting that the
            grid controls passed as an option.
    """
    parser = build_parser()
    apply_config(parser, argv)
    a = parser.parse_args(argv)
    fractions, seeds = list(a.fractions), list(a.seeds)
    default_inits = [i for i in INITS if i != "imagenet" or a.imagenet_weights]
    inits = list(a.inits) if a.inits else default_inits
    for init in inits:
        if init not in INITS:
            raise ConfigError(f"--inits: expected some of {','.join(INITS)}, found {init!r}")
    if "imagenet" in inits and not a.imagenet_weights:
        raise ConfigError(
            "--inits imagenet needs --imagenet-weights FILE (a torchvision state dict)"
        )
    method_options: dict[str, dict[str, Any]] = {}
    for key, value in _key_values(a.method_option, "--method-option").items():
        method, sep, name = key.partition(":")
        if not sep or method not in PRETRAIN_METHODS:
            raise ConfigError(f"--method-option: expected METHOD:KEY=VALUE, found {key!r}")
        method_options.setdefault(method, {})[name] = value
    given = {f.name: getattr(a, f.name) for f in dataclasses.fields(Settings) if f.name in a}
    settings = Settings(
        **{
            **given,
            "out": Path(a.out),
            "inits": list(dict.fromkeys(inits)),
            "fractions": list(dict.fromkeys(fractions)),
            "seeds": list(dict.fromkeys(seeds)),
            "devices": str(a.devices),
            "pretrain_options": _key_values(a.pretrain_option, "--pretrain-option"),
            "finetune_options": _key_values(a.finetune_option, "--finetune-option"),
            "method_options": method_options,
            "model_options": _key_values(a.model_option, "--model-option"),
            "eval_options": _key_values(a.eval_option, "--eval-option"),
        }
    )
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    """Fail before any training: option names, the configs of the runs, matplotlib."""
    for flag, options, cls in (
        ("--pretrain-option", s.pretrain_options, PretrainConfig),
        ("--finetune-option", s.finetune_options, FinetuneConfig),
    ):
        names = {f.name for f in dataclasses.fields(cls)}
        for key in options:
            if key in GRID_FIELDS:
                raise ConfigError(f"{flag} {key}: set by the comparison; use its own flag")
            if key not in names:
                raise ConfigError(f"{flag} {key}: not a field of {cls.__name__}")
    for key in s.eval_options:
        if key not in EVAL_OPTIONS:
            raise ConfigError(f"--eval-option {key}: expected one of {', '.join(EVAL_OPTIONS)}")
    if not s.inits or not s.fractions or not s.seeds:
        raise ConfigError("--inits, --fractions and --seeds need one value each at least")
    for method in s.method_options:
        if method not in s.inits:
            log.warning("--method-option %s:...: %s is not among --inits", method, method)
    for method in (i for i in s.inits if i in PRETRAIN_METHODS):
        _pretrain_config(s, method, s.pretrain_seed, Path("unused"))
    for init in s.inits:
        for head in s.heads:
            _finetune_config(s, Cell(init, head, min(s.fractions), s.seeds[0]), "unused")
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(
            "f1_vs_fraction.png needs matplotlib, which is not installed: pip install matplotlib"
        )


# ---------------------------------------------------------------- runs


def _every(steps: int, validations: int) -> int:
    """Steps between validations: ``validations`` per run, not one per (tiny) epoch."""
    if validations < 1:
        raise ConfigError(f"--validations: expected a positive count, found {validations}")
    return max(1, steps // validations)


def _start(run: Path) -> dict[str, bool]:
    """Continue a run from its ``last.ckpt``, else start it afresh (over a start killed early).

    Not ``resume=True`` on a fresh run: ``finetune`` then skips ``--init`` (the weights are
    expected from ``last.ckpt``), so every cell would start from random weights.
    """
    resume = (run / "last.ckpt").is_file()
    return {"resume": resume, "overwrite": not resume}


def _pretrain_config(s: Settings, method: str, seed: int, run: Path) -> PretrainConfig:
    return PretrainConfig(
        **{
            "crop_size": s.crop_size,
            "val_every": _every(s.pretrain_steps, s.validations),
            **s.pretrain_options,
            "data": str(s.pretrain_data or s.out / "data" / "pretrain"),
            "out": str(run),
            "method": method,
            "backbone": s.backbone,
            "max_steps": s.pretrain_steps,
            "batch_size": s.pretrain_batch_size,
            "seed": seed,
            "accelerator": s.accelerator,
            "devices": s.devices,
            "num_workers": s.num_workers,
            "method_options": dict(s.method_options.get(method, {})),
            **_start(run),
        }
    )


def _finetune_config(s: Settings, cell: Cell, init: str) -> FinetuneConfig:
    return FinetuneConfig(
        **{
            "crop_size": s.crop_size,
            "val_every": _every(s.finetune_steps, s.validations),
            **s.finetune_options,
            "data": str(s.data or s.out / "data" / "change"),
            "out": str(cell.folder(s.out) / "run"),
            "init": init,
            "backbone": s.backbone,
            "head": cell.head,
            "label_fraction": cell.fraction,
            "max_steps": s.finetune_steps,
            "batch_size": s.batch_size,
            "seed": cell.seed,
            "accelerator": s.accelerator,
            "devices": s.devices,
            "num_workers": s.num_workers,
            "model_options": dict(s.model_options),
            **_start(cell.folder(s.out) / "run"),
        }
    )


def _generate_data(s: Settings) -> None:
    """The built-in data engine's datasets for whichever of --data / --pretrain-data is absent."""
    plan: tuple[tuple[str | None, SynthKind, int], ...] = (
        (s.pretrain_data, "pretrain", 0),
        (s.data, "change", 1),
    )
    for given, kind, seed in plan:
        folder = s.out / "data" / kind
        if given is None and not (folder / "dataset.json").is_file() and is_global_zero():
            log.info("generating the built-in %s dataset in %s", kind, folder)
            generate_dataset(
                folder, kind=kind, num=s.synth_num, size=s.synth_size, bands=s.synth_bands,
                seed=s.synth_seed + seed, overwrite=True,
            )  # fmt: skip


def _pretrained(s: Settings, method: str, seed: int) -> dict[str, Any]:
    """The shared pretraining of ``method`` (run unless finished): steps, seconds, checkpoint."""
    run = s.pretrain_root / f"{method}_s{seed}"
    done = run.parent / f"{run.name}.{DONE}"
    settings = s.pretrain_settings(method)
    if done.is_file():
        record = json.loads(done.read_text())
        earlier = record.get("settings", settings)
        if earlier != settings:
            changed = sorted(
                k for k in set(settings) | set(earlier) if settings.get(k) != earlier.get(k)
            )
            found = ", ".join(f"{k}: {earlier.get(k)!r} → {settings.get(k)!r}" for k in changed)
            raise ConfigError(
                f"{done}: this pretraining ran with other settings ({found}); use another "
                "--pretrain-dir"
            )
        if Path(record["checkpoint"]).is_file():
            return dict(record)
    log.info("pretraining %s (seed %d, %d steps) in %s", method, seed, s.pretrain_steps, run)
    start = time.perf_counter()
    result = pretrain(_pretrain_config(s, method, seed, run))
    record = {
        "method": method,
        "seed": seed,
        "steps": result.global_step,
        "seconds": round(time.perf_counter() - start, 2),
        "checkpoint": str(result.last_checkpoint),
        "settings": settings,
    }
    if is_global_zero():
        write_json_atomic(done, record)
    return record


def _run_cell(s: Settings, cell: Cell) -> dict[str, Any]:
    """Finetune (or resume) and evaluate one cell; returns its results.csv row."""
    pretrained: dict[str, Any] = {}
    if cell.init in PRETRAIN_METHODS:
        seed = cell.seed if s.pretrain_per_seed else s.pretrain_seed
        pretrained = _pretrained(s, cell.init, seed)
        init = pretrained["checkpoint"]
    else:
        init = s.imagenet_weights if cell.init == "imagenet" else "random"
    start = time.perf_counter()
    run = finetune(_finetune_config(s, cell, str(init)))
    metrics_path = cell.folder(s.out) / "metrics.json"
    metrics: dict[str, Any] = {}
    if is_global_zero():
        device = {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu"}.get(s.accelerator, "auto")
        options = {"split": s.eval_split, **s.eval_options}
        data = s.eval_data or s.data or s.out / "data" / "change"
        metrics = evaluate(
            data,
            run.best_checkpoint,
            metrics_path,
            device=device,
            num_workers=s.num_workers,
            **options,
        )
    return {
        "init": cell.init,
        "head": cell.head,
        "fraction": f"{cell.fraction:g}",
        "seed": cell.seed,
        **{k: f"{metrics.get(k, float('nan')):.6f}" for k in ("f1", "iou", "precision", "recall")},
        "steps": run.global_step,
        "seconds": f"{time.perf_counter() - start:.1f}",
        "pretrain_steps": pretrained.get("steps", ""),
        "pretrain_seconds": pretrained.get("seconds", ""),
        "pretrain_checkpoint": init if init != "random" else "",
        "checkpoint": str(run.best_checkpoint),
        "metrics": str(metrics_path),
    }


# ---------------------------------------------------------------- results


def read_results(path: Path) -> dict[tuple[str, str, str, str], dict[str, str]]:
    """The rows of ``results.csv`` by cell key (empty when there is none)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    return {(r["init"], r["head"], r["fraction"], r["seed"]): r for r in rows}


def _write_results(path: Path, rows: dict[tuple[str, str, str, str], dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    order = {init: i for i, init in enumerate(INITS)}
    for key in sorted(rows, key=lambda k: (order.get(k[0], 99), k[1], float(k[2]), int(k[3]))):
        writer.writerow({c: rows[key].get(c, "") for c in COLUMNS})
    write_atomic(path, lambda file: file.write(text.getvalue().encode()))


def _summary(rows: dict, metric: str) -> dict[tuple[str, str], dict[float, list[float]]]:
    """(init, head) → fraction → the metric over seeds."""
    table: dict[tuple[str, str], dict[float, list[float]]] = {}
    for r in rows.values():
        values = table.setdefault((r["init"], r["head"]), {}).setdefault(float(r["fraction"]), [])
        values.append(float(r[metric]))
    return table


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _machine(s: Settings) -> str:
    return f"{machine()} (--accelerator {s.accelerator}, --devices {s.devices})"


def write_report(s: Settings, rows: dict, pretrainings: list[dict[str, Any]]) -> None:
    """``results.md`` and ``f1_vs_fraction.png`` from the rows of ``results.csv``."""
    fractions = sorted({float(r["fraction"]) for r in rows.values()})
    seeds = sorted({int(r["seed"]) for r in rows.values()})
    change = s.data or f"{s.out / 'data' / 'change'} (built-in data engine)"
    pre = s.pretrain_data or f"{s.out / 'data' / 'pretrain'} (built-in data engine)"
    synth = (
        f"; generated with num {s.synth_num}, size {s.synth_size}, bands {s.synth_bands}, "
        f"seed {s.synth_seed}"
        if s.data is None or s.pretrain_data is None
        else ""
    )
    pre_seeds = "each finetuning seed" if s.pretrain_per_seed else f"seed {s.pretrain_seed}"
    lines = [
        "# Initialisations for change detection: label fraction × seed",
        "",
        f"- change data: `{change}`; evaluated on split `{s.eval_split}` of "
        f"`{s.eval_data or 'the same folder'}` "
        f"({json.dumps(s.eval_options) if s.eval_options else 'whole images'}){synth}",
        f"- pretraining data: `{pre}`",
        f"- pretraining: {s.pretrain_steps} steps × batch {s.pretrain_batch_size} per method, "
        f"backbone `{s.backbone}`, {pre_seeds}, encoder from `last.ckpt`; options "
        f"{json.dumps(s.pretrain_options)}, method options {json.dumps(s.method_options)}",
        f"- finetuning: {s.finetune_steps} steps × batch {s.batch_size} per run, whatever the "
        f"fraction; evaluated from `best.ckpt`; options {json.dumps(s.finetune_options)}, "
        f"model options {json.dumps(s.model_options)}",
        f"- seeds: {', '.join(map(str, seeds))} (label subset, initialisation of new layers, "
        "data order and augmentation)",
        f"- machine: {_machine(s)}",
        "",
    ]
    for metric, title in (("f1", "F1"), ("iou", "IoU")):
        table = _summary(rows, metric)
        lines += [
            f"## {title} (change class, mean ± std over seeds)",
            "",
            "| init | head | " + " | ".join(f"{100 * f:g} %" for f in fractions) + " |",
            "|---|---|" + "---|" * len(fractions),
        ]
        for (init, head), by_fraction in table.items():
            cells = []
            for f in fractions:
                values = by_fraction.get(f, [])
                mean, std = _mean_std(values) if values else (float("nan"), 0.0)
                text = f"{mean:.3f} ± {std:.3f}" if len(values) > 1 else f"{mean:.3f}"
                cells.append(text if values else "–")
            lines.append(f"| {init} | {head} | " + " | ".join(cells) + " |")
        lines.append("")
    if pretrainings:
        lines += [
            "## Pretraining runs",
            "",
            "| method | seed | steps | seconds |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {p['method']} | {p['seed']} | {p['steps']} | {p['seconds']} |" for p in pretrainings
        ]
        lines.append("")
    text = "\n".join(lines)
    write_atomic(s.out / "results.md", lambda file: file.write(text.encode()))
    _plot(s, rows, s.out / "f1_vs_fraction.png")


def _plot(s: Settings, rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    colours = {init: f"C{i}" for i, init in enumerate(INITS)}
    for (init, head), by_fraction in _summary(rows, "f1").items():
        fractions = sorted(by_fraction)
        stats = [_mean_std(by_fraction[f]) for f in fractions]
        linear = head == "linear"
        axes.errorbar(
            [100 * f for f in fractions], [m for m, _ in stats], yerr=[sd for _, sd in stats],
            marker="o", capsize=3, color=colours.get(init), linestyle="--" if linear else "-",
            label=f"{init} (linear probe)" if linear else init,
        )  # fmt: skip
    percent = sorted({100 * float(r["fraction"]) for r in rows.values()})
    axes.set_xscale("log")
    axes.set_xticks(percent, [f"{p:g}" for p in percent])
    axes.minorticks_off()
    axes.set(xlabel="labelled training tiles (%)", ylabel="F1 (change class)", ylim=(0, 1))
    axes.set_title(
        f"{s.backbone}: {s.pretrain_steps} pretraining / {s.finetune_steps} finetuning steps",
        fontsize=10,
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    write_atomic(path, lambda file: figure.savefig(file, format="png", dpi=120))
    plt.close(figure)


# ---------------------------------------------------------------- main


def _check_budget(s: Settings) -> None:
    """Record the budget in OUT/compare.json, or refuse a different one for the same --out."""
    path = s.out / "compare.json"
    budget = s.budget()
    if path.is_file():
        earlier = json.loads(path.read_text())["budget"]
        changed = sorted(k for k in set(budget) | set(earlier) if budget.get(k) != earlier.get(k))
        if changed:
            found = ", ".join(f"{k}: {earlier.get(k)!r} → {budget.get(k)!r}" for k in changed)
            raise ConfigError(
                f"{path}: this --out holds a comparison with another budget ({found}); "
                "use a new --out, or the earlier settings"
            )
    elif is_global_zero():
        s.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"budget": budget, "sdrl_version": __version__})


def run_comparison(s: Settings) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Run every unfinished cell of the grid, then write the results; returns the rows."""
    _check_budget(s)
    _generate_data(s)
    results = s.out / "results.csv"
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = dict(read_results(results))
    grid = [
        Cell(init, head, fraction, seed)
        for init in s.inits
        for head in s.heads
        for fraction in s.fractions
        for seed in s.seeds
    ]
    todo = [
        c for c in grid if c.key not in rows or not (c.folder(s.out) / "metrics.json").is_file()
    ]
    log.info("%d cells, %d finished, %d to run", len(grid), len(grid) - len(todo), len(todo))
    for number, cell in enumerate(todo, 1):
        row = _run_cell(s, cell)
        log.info(
            "[%d/%d] %s %s fraction %g seed %d: F1 %s, IoU %s (%s s)", number, len(todo),
            cell.init, cell.head, cell.fraction, cell.seed, row["f1"], row["iou"], row["seconds"],
        )  # fmt: skip
        if is_global_zero():
            rows[cell.key] = row
            _write_results(results, rows)
    if is_global_zero():
        methods = {i for i in s.inits if i in PRETRAIN_METHODS}
        done = sorted(
            p
            for p in s.pretrain_root.glob(f"*.{DONE}")
            if p.name.split(".")[0].rsplit("_s", 1)[0] in methods
        )
        write_report(s, rows, [json.loads(p.read_text()) for p in done])
        log.info("results: %s, %s, %s", results, s.out / "results.md", s.out / "f1_vs_fraction.png")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for name in ("lightning", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # banners, tips and model tables
    try:
        run_comparison(parse_settings(argv))
    except SdrlError as error:
        if "--debug" in argv:
            raise
        print(f"compare.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
