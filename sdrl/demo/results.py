"""What the demo produced: its runs, scores, files and times."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from sdrl.demo.settings import INITS, DemoSettings

__all__ = ["SCORES", "DemoResult", "FinetuneRun", "PretrainRun", "mean_std"]

SCORES = ("f1", "iou", "precision", "recall")
"""The test scores the demo reports (change class, from each run's ``metrics.json``)."""


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class PretrainRun:
    """One pretraining run of the demo.

    Attributes:
        method: ``sdrl`` or the baseline's name.
        run_dir: Its run folder (``metrics.csv``, ``last.ckpt``...).
        checkpoint: The checkpoint the change models start from (``last.ckpt``: every
            method gets exactly its steps).
        steps: Optimiser steps done.
        seconds: Wall time.
        final_loss: Last logged training loss (``None`` when none was logged).
        probe_acc: Region k-NN probe accuracy on the validation split at the end, if scored.
    """

    method: str
    run_dir: Path
    checkpoint: Path
    steps: int
    seconds: float
    final_loss: float | None = None
    probe_acc: float | None = None


@dataclass
class FinetuneRun:
    """One finetuning run and its test evaluation.

    Attributes:
        init: ``random``, the baseline's name or ``sdrl``.
        seed: Finetuning seed (label subset, new layers, data order, augmentation).
        run_dir: Its run folder.
        metrics_path: Its ``metrics.json`` (test split).
        scores: :data:`SCORES` read from it.
        steps: Optimiser steps done.
        seconds: Wall time of finetuning and evaluation.
        predictions: Folder of its saved test predictions, if saved.
    """

    init: str
    seed: int
    run_dir: Path
    metrics_path: Path
    scores: dict[str, float]
    steps: int
    seconds: float
    predictions: Path | None = None


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes:
        out: The demo folder.
        settings: The options it ran with.
        datasets: Name → dataset folder.
        previews: Preview PNGs written.
        pretrain_runs: Method → its pretraining run.
        runs: Every finetuning run, by initialisation then seed.
        export: The exported sdrl backbone folder.
        change_map: The predicted change map GeoTIFF.
        report: ``report.md``.
        figures: The figures of the report.
        verdict: The report's answer, computed from the scores.
        seconds: Wall time per stage.
        load: The machine's 1-minute load average at the start (``None`` where unknown).
    """

    out: Path
    settings: DemoSettings
    datasets: dict[str, Path] = field(default_factory=dict)
    previews: list[Path] = field(default_factory=list)
    pretrain_runs: dict[str, PretrainRun] = field(default_factory=dict)
    runs: list[FinetuneRun] = field(default_factory=list)
    export: Path | None = None
    change_map: Path | None = None
    report: Path | None = None
    figures: list[Path] = field(default_factory=list)
    verdict: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    load: float | None = None

    def scores(self, name: str = "f1") -> dict[str, list[float]]:
        """Initialisation → the score ``name`` of its runs, in seed order."""
        table: dict[str, list[float]] = {init: [] for init in INITS}
        for run in sorted(self.runs, key=lambda r: r.seed):
            table.setdefault(run.init, []).append(run.scores[name])
        return {init: values for init, values in table.items() if values}

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Initialisation → mean test score over seeds of each of :data:`SCORES`."""
        means: dict[str, dict[str, float]] = {}
        for name in SCORES:
            for init, values in self.scores(name).items():
                means.setdefault(init, {})[name] = mean_std(values)[0]
        return means
