"""The stages of ``sdrl demo``, one progress line each (Lightning's bar on a terminal)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sdrl.data.outputs import check_output
from sdrl.data.staging import atomic_copy
from sdrl.data.summary import summarize
from sdrl.data.synth import SynthKind, generate_dataset
from sdrl.demo.previews import write_previews
from sdrl.demo.report import write_report
from sdrl.demo.results import SCORES, DemoResult, FinetuneRun, PretrainRun
from sdrl.demo.settings import BANDS, BASELINE, INITS, PRETRAIN_METHODS, DemoSettings
from sdrl.errors import DataError
from sdrl.evaluation import evaluate
from sdrl.export import export_backbone
from sdrl.predict.from_checkpoint import predict_from_checkpoint
from sdrl.tasks.change.config import FinetuneConfig
from sdrl.tasks.change.run import finetune
from sdrl.tasks.pretrain.config import MethodName, PretrainConfig
from sdrl.tasks.pretrain.run import pretrain
from sdrl.viz.figures import read_loss_log

__all__ = ["OUTPUTS", "run_demo"]

log = logging.getLogger(__name__)

OUTPUTS = (
    "pretrain",
    "change",
    "runs",
    "scene",
    "export_sdrl",
    "figures",
    "report.md",
    "preview_change.png",
    "preview_pretrain.png",
    "metrics_random.json",
    f"metrics_{BASELINE}.json",
    "metrics_sdrl.json",
    "metrics_pretrained.json",
    "change_map.tif",
)
"""What the demo writes into its folder (an earlier demo is replaced only with overwrite)."""


class _Progress:
    """Numbered stage lines ``[k/N] ...`` with the wall time of each stage."""

    def __init__(self, total: int, seconds: dict[str, float]) -> None:
        self.total, self.done, self.seconds = total, 0, seconds

    @contextmanager
    def stage(self, key: str, text: str) -> Iterator[None]:
        self.done += 1
        log.info("[%d/%d] %s", self.done, self.total, text)
        start = time.perf_counter()
        yield
        self.seconds[key] = round(time.perf_counter() - start, 2)


def run_demo(
    out: str | Path,
    num: int = DemoSettings.num,
    size: int = DemoSettings.size,
    seed: int = DemoSettings.seed,
    overwrite: bool = False,
    backbone: str = DemoSettings.backbone,
    pretrain_steps: int = DemoSettings.pretrain_steps,
    finetune_steps: int = DemoSettings.finetune_steps,
    batch_size: int = DemoSettings.batch_size,
    label_fraction: float = DemoSettings.label_fraction,
    finetune_seeds: int = DemoSettings.finetune_seeds,
) -> DemoResult:
    """Run the demo into ``out``: does sdrl pretraining help change detection here?

    Stages: the data engine writes a pretraining and a change dataset (4 bands, different
    scenes); one augmented batch of each is previewed; ``sdrl`` and the DetCon baseline
    pretrain for the same steps and batch on the pretraining set; the sdrl backbone is
    exported (``export_sdrl/``); change models are finetuned from random, DetCon and sdrl
    weights with the same budget on ``label_fraction`` of the change training tiles, once per
    finetuning seed, and evaluated on the test split; the first sdrl model predicts a change
    map of a larger generated pair; ``report.md`` gathers the data, budget, seeds, machine,
    a table of F1/IoU per initialisation, figures and an answer computed from the scores.

    The defaults fit in 10 minutes on two CPU cores: a smoke-test budget, which the report
    says, not the budget of a real comparison (``experiments/compare.py``).

    The defaults are those of :class:`~sdrl.demo.settings.DemoSettings` (and of the flags).

    Args:
        out: Demo folder.
        num: Scenes per dataset.
        size: Scene size in pixels (a multiple of 32).
        seed: Seed of the data engine, the pretraining and the first finetuning seed.
        overwrite: Replace an earlier demo in ``out``.
        backbone: Backbone of every run.
        pretrain_steps: Optimiser steps of each pretraining (sdrl and DetCon).
        finetune_steps: Optimiser steps of each finetuning run.
        batch_size: Batch size of pretraining and (at most the labelled tiles) finetuning.
        label_fraction: Share of the change training tiles used for finetuning.
        finetune_seeds: Finetuning runs per initialisation (seeds ``seed``, ``seed + 1``...).

    Returns:
        A :class:`~sdrl.demo.results.DemoResult`.

    Raises:
        ConfigError: An option out of range or inconsistent with another (named by the demo's
            own flags), checked before anything is written.
        DataError: ``out`` cannot hold the demo, or holds an earlier demo and ``overwrite`` is
            false (checked before anything is written).
    """
    settings = DemoSettings(
        num=num,
        size=size,
        seed=seed,
        backbone=backbone,
        pretrain_steps=pretrain_steps,
        finetune_steps=finetune_steps,
        batch_size=batch_size,
        label_fraction=label_fraction,
        finetune_seeds=finetune_seeds,
    )
    settings.check()
    out = Path(out)
    check_output(out, folder=True)
    earlier = [out / name for name in OUTPUTS if (out / name).exists()]
    if earlier and not overwrite:
        found = f"an earlier demo's {earlier[0].name}"
        raise DataError(out, "a folder without an earlier demo", found, "Pass --overwrite")
    result = DemoResult(out, settings, load=_load())
    total = 7 + len(INITS) * len(settings.seeds)  # + data, previews, 2 × pretrain...
    progress = _Progress(total, result.seconds)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with progress.stage("data", f"data engine: {num} pretraining + {num} change scenes"):
        _synthesise(out, result, overwrite)
    with progress.stage("previews", "previews of augmented batches"):
        result.previews = write_previews(out, seed)
    for method in PRETRAIN_METHODS:
        text = f"pretraining {method}: {pretrain_steps} steps × batch {batch_size}, {backbone}"
        with progress.stage(f"pretrain {method}", text):
            result.pretrain_runs[method] = _pretrain(out, settings, method, overwrite)
    sdrl_checkpoint = result.pretrain_runs["sdrl"].checkpoint
    with progress.stage("export", "exporting the sdrl backbone (torchvision weights)"):
        result.export = export_backbone(sdrl_checkpoint, out / "export_sdrl", overwrite=True).out
    labels = f"{settings.labelled_tiles} of {settings.change_tiles['train']} training tiles"
    for init in INITS:
        for number, run_seed in enumerate(settings.seeds):
            text = f"finetuning from {init} weights, seed {run_seed} ({labels}), test scores"
            with progress.stage(f"finetune {init} seed {run_seed}", text):
                run = _finetune(out, result, init, run_seed, overwrite, predictions=number == 0)
            result.runs.append(run)
            log.info("  test %s", ", ".join(f"{k} {run.scores[k]:.3f}" for k in SCORES))
    _copy_metrics(out, result)
    with progress.stage("change map", f"change map of a {4 * size} px pair (sdrl, first seed)"):
        _change_map(out, result)
    with progress.stage("report", "report.md and figures"):
        result.seconds["total"] = round(time.perf_counter() - start, 2)  # for the report
        write_report(result)
    del result.seconds["total"]  # last in the dict
    result.seconds["total"] = round(time.perf_counter() - start, 2)
    log.info("%s", result.verdict.replace("**", ""))
    log.info("report: %s (%.0f s in all)", result.report, time.perf_counter() - start)
    return result


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return None


def _synthesise(out: Path, result: DemoResult, overwrite: bool) -> None:
    """Write the pretraining and change datasets (different scenes, same bands)."""
    s = result.settings
    plan: dict[str, tuple[SynthKind, int]] = {
        "pretrain": ("pretrain", s.seed),
        "change": ("change", s.seed + 1),
    }
    for name, (kind, scene_seed) in plan.items():
        generate_dataset(
            out / name,
            kind=kind,
            num=s.num,
            size=s.size,
            bands=BANDS,
            seed=scene_seed,
            overwrite=overwrite,
        )
        result.datasets[name] = out / name
        log.info("%s\n", summarize(str(out / name)))


def _common(s: DemoSettings, steps: int, overwrite: bool) -> dict[str, Any]:
    """The settings every training run of the demo shares."""
    return {
        "backbone": s.backbone,
        "max_steps": steps,
        "num_workers": 0,
        "overwrite": overwrite,
        "val_every": s.val_every(steps),
        "log_every": s.log_every(steps),
    }


def _pretrain(out: Path, s: DemoSettings, method: MethodName, overwrite: bool) -> PretrainRun:
    start = time.perf_counter()
    run = pretrain(
        PretrainConfig(
            data=str(out / "pretrain"),
            out=str(out / "runs" / f"pretrain_{method}"),
            method=method,
            batch_size=s.batch_size,
            seed=s.seed,
            **_common(s, s.pretrain_steps, overwrite),
        )
    )
    losses = read_loss_log(run.run_dir / "metrics.csv")["train/loss_step"][1]
    probe = run.metrics.get("val/probe_acc")
    return PretrainRun(
        method=method,
        run_dir=run.run_dir,
        checkpoint=run.last_checkpoint,
        steps=run.global_step,
        seconds=time.perf_counter() - start,
        final_loss=losses[-1] if losses else None,
        probe_acc=None if probe is None else float(probe),
    )


def _finetune(
    out: Path, result: DemoResult, init: str, seed: int, overwrite: bool, predictions: bool
) -> FinetuneRun:
    s = result.settings
    start = time.perf_counter()
    run_dir = out / "runs" / f"finetune_{init}_seed{seed}"
    source = "random" if init == "random" else str(result.pretrain_runs[init].checkpoint)
    run = finetune(
        FinetuneConfig(
            data=str(out / "change"),
            out=str(run_dir),
            init=source,
            label_fraction=s.label_fraction,
            batch_size=s.finetune_batch,
            seed=seed,
            **_common(s, s.finetune_steps, overwrite),
        )
    )
    saved = run_dir / "predictions" if predictions else None
    metrics = evaluate(
        out / "change", run.best_checkpoint, run_dir / "metrics.json", save_predictions=saved
    )
    if run.last_checkpoint != run.best_checkpoint:  # ~150 MB each with a ResNet-18
        run.last_checkpoint.unlink(missing_ok=True)  # best.ckpt is the model evaluated
    return FinetuneRun(
        init=init,
        seed=seed,
        run_dir=run_dir,
        metrics_path=run_dir / "metrics.json",
        scores={k: float(metrics[k]) for k in SCORES},
        steps=run.global_step,
        seconds=time.perf_counter() - start,
        predictions=saved,
    )


def _first(result: DemoResult, init: str) -> FinetuneRun:
    """The run of ``init`` with the first finetuning seed."""
    return next(r for r in result.runs if r.init == init and r.seed == result.settings.seed)


def _copy_metrics(out: Path, result: DemoResult) -> None:
    """``metrics_<init>.json``: the first seed's test metrics (``pretrained``: sdrl's again)."""
    for init in INITS:
        atomic_copy(_first(result, init).metrics_path, out / f"metrics_{init}.json")
    atomic_copy(_first(result, "sdrl").metrics_path, out / "metrics_pretrained.json")


def _change_map(out: Path, result: DemoResult) -> None:
    size = result.settings.size
    scene = out / "scene"
    generate_dataset(
        scene,
        "change",
        num=1,
        size=4 * size,
        bands=BANDS,
        seed=result.settings.seed + 7,
        overwrite=True,
    )
    predicted = predict_from_checkpoint(
        _first(result, "sdrl").run_dir / "best.ckpt",
        scene / "A" / "000000.tif",
        scene / "B" / "000000.tif",
        out / "change_map.tif",
        tile=2 * size,
        overlap=size // 4,
        progress=False,
    )
    result.change_map = predicted.out
