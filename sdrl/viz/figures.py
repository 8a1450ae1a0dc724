"""Figures for reports (matplotlib, PNG): loss curves, scores per group, tables of pictures.

Shape letters: ``H``/``W`` rows/columns; pictures are ``(3, H, W)`` uint8 (:mod:`sdrl.viz`).
Every function writes its PNG atomically and returns its path; matplotlib is imported on
first use with the non-interactive ``Agg`` backend, so ``import sdrl.viz`` stays light.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdrl.data.staging import write_atomic

__all__ = ["loss_curves", "picture_table", "read_loss_log", "score_bars"]

DPI = 110


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: str | Path, rect: tuple[float, ...] = (0, 0, 1, 1)) -> Path:
    plt = _pyplot()
    figure.tight_layout(rect=rect)
    write_atomic(path, lambda file: figure.savefig(file, format="png", dpi=DPI))
    plt.close(figure)
    return Path(path)


def read_loss_log(
    path: str | Path, columns: Sequence[str] = ("train/loss_step", "val/loss")
) -> dict[str, tuple[list[int], list[float]]]:
    """Steps and values of some columns of a run's ``metrics.csv`` (Lightning's CSV log).

    Rows without a value in a column are skipped for it; a step logged twice keeps its last
    value.

    Args:
        path: The ``metrics.csv`` file.
        columns: Column names to read.

    Returns:
        Column → (steps, values), sorted by step; a column absent from the file is empty.
    """
    found: dict[str, dict[int, float]] = {name: {} for name in columns}
    with Path(path).open(newline="") as file:
        for row in csv.DictReader(file):
            for name in columns:
                text = row.get(name) or ""
                if text.strip():
                    found[name][int(float(row["step"]))] = float(text)
    return {
        name: (sorted(values), [values[s] for s in sorted(values)])
        for name, values in found.items()
    }


def loss_curves(
    logs: Mapping[str, str | Path], out: str | Path, title: str = "Pretraining loss"
) -> Path:
    """One panel per run: training loss per logged step and validation loss, against steps.

    Each run's objective has its own scale (an sdrl loss and a DetCon loss are different
    functions), so the panels share no y axis: compare shapes, not values across panels.

    Args:
        logs: Panel title (e.g. the method) → the run's ``metrics.csv``.
        out: The PNG to write.
        title: Title of the figure.

    Returns:
        ``out``.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(logs), figsize=(4.2 * len(logs), 3.4), squeeze=False)
    for axis, (name, path) in zip(axes[0], logs.items(), strict=True):
        curves = read_loss_log(path)
        steps, values = curves["train/loss_step"]
        axis.plot(steps, values, color="C0", linewidth=1.2, label="training (batch)")
        steps, values = curves["val/loss"]
        axis.plot(steps, values, "o--", color="C3", markersize=5, label="validation")
        axis.set(title=name, xlabel="step", ylabel="loss")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    return _save(figure, out)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def score_bars(
    scores: Mapping[str, Sequence[float]],
    out: str | Path,
    label: str = "F1",
    title: str = "",
) -> Path:
    """Bars of the mean score per group, the standard deviation as error bar, each value a dot.

    Args:
        scores: Group (e.g. initialisation) → its scores (e.g. one per seed), in [0, 1].
        out: The PNG to write.
        label: Name of the score (y axis).
        title: Title of the figure.

    Returns:
        ``out``.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(1.6 * len(scores) + 2.2, 3.6))
    names = list(scores)
    stats = [_mean_std(scores[n]) for n in names]
    positions = np.arange(len(names))
    axis.bar(
        positions,
        [m for m, _ in stats],
        yerr=[s for _, s in stats],
        capsize=6,
        color=[f"C{i}" for i in range(len(names))],
        alpha=0.75,
        width=0.6,
    )
    for x, name in zip(positions, names, strict=True):
        values = list(scores[name])
        offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
        axis.plot(x + np.asarray(offsets), values, "ko", markersize=4, zorder=3)
    for x, (mean, std) in zip(positions, stats, strict=True):
        text = f"{mean:.3f} ± {std:.3f}" if std else f"{mean:.3f}"
        axis.annotate(
            text,
            (x, min(mean + std, 1.0)),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 3),
            textcoords="offset points",
        )
    top = max((m + s for m, s in stats), default=1.0)
    axis.set_ylim(0, min(1.0, max(0.1, top * 1.25)) if not math.isnan(top) else 1.0)
    axis.set_xticks(positions, names)
    axis.set_ylabel(label)
    axis.grid(axis="y", alpha=0.3)
    if title:
        axis.set_title(title, fontsize=10)
    return _save(figure, out)


def picture_table(
    pictures: Sequence[Sequence[np.ndarray]],
    out: str | Path,
    column_titles: Sequence[str] = (),
    row_titles: Sequence[str] = (),
    legend: Mapping[str, tuple[int, int, int]] | None = None,
    title: str = "",
) -> Path:
    """Pictures in rows and columns, with titles and an optional colour legend.

    Args:
        pictures: Rows of ``(3, H, W)`` uint8 pictures (rows may be shorter: blank cells).
        out: The PNG to write.
        column_titles: A title above each column.
        row_titles: A label left of each row.
        legend: Name → RGB colour, drawn as a legend below the table.
        title: Title of the figure.

    Returns:
        ``out``.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    rows, cols = len(pictures), max(len(r) for r in pictures)
    longest = max((len(n) for n in legend), default=1) if legend else 1
    per_row = max(1, min(len(legend or ()), int(1.9 * cols * 12 / (longest + 4))))
    legend_rows = -(-len(legend or ()) // per_row)
    extra = 0.25 * legend_rows + 0.25 if legend else 0.0
    figure, axes = plt.subplots(
        rows, cols, figsize=(1.9 * cols, 1.9 * rows + 0.4 + extra), squeeze=False
    )
    for i, axis_row in enumerate(axes):
        for j, axis in enumerate(axis_row):
            axis.set_xticks([])
            axis.set_yticks([])
            if j < len(pictures[i]):
                axis.imshow(np.moveaxis(pictures[i][j], 0, -1), interpolation="nearest")
            else:
                axis.axis("off")
            if i == 0 and j < len(column_titles):
                axis.set_title(column_titles[j], fontsize=9)
            if j == 0 and i < len(row_titles):
                axis.set_ylabel(row_titles[i], fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    if legend:
        handles = [
            Patch(facecolor=(c[0] / 255, c[1] / 255, c[2] / 255), edgecolor="0.5", label=n)
            for n, c in legend.items()
        ]
        figure.legend(handles=handles, loc="lower center", ncol=per_row, fontsize=8, frameon=False)
    height = 1.9 * rows + 0.4 + extra
    bottom = min(0.9, (extra + 0.05) / height) if legend else 0.0
    return _save(figure, out, rect=(0, bottom, 1, 1))
