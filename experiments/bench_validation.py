"""Benchmark of validation in ``sdrl pretrain``: its share of a default run's wall time.

A pretraining run validates with the validation loss and, at some validations, the region
probe (``--probe-every``: the first, every 5th and the last by default). This script runs short real
pretraining runs (``pretrain(config)``, defaults except the steps and ``--val-every``) on a
generated dataset of 13-band 128-px tiles and times, within each run:

* a training step: from one training batch's start to the next one's, at steps not followed
  by a validation (so it includes fetching the batch), median;
* a validation: from the end of the training batch it follows to the end of its
  ``on_validation_end`` (loader start-up, val loss, probe, the checkpoint written when the
  monitored metric improves), median over the validations with the probe and those without.

Each run is one ``--probe-tiles`` setting (the settings interleaved over ``--repeats``; 256
was the default before validation was made cheap, with the probe at every validation). A
validation is expressed in training steps of its own run (load on the machine hits both
alike); from the medians over the runs the script projects the share of validation in a
*default* run on that dataset: ``--batch-size`` 32, a validation at each epoch end (19 steps
for 630 training tiles), 100 epochs, the probe at every validation (the old default) or at
the first, every ``--probe-every``-th and the last. Run::

    python experiments/bench_validation.py [--steps 40 --val-every 4 --repeats 2]  # ~20 min

and paste the printed table into experiments/BENCHMARKS.md. The code from before (every
validation probes) is timed the same way from a checkout of it: ``PYTHONPATH=<checkout>
python experiments/bench_validation.py --probe-tiles 256 --repeats 1``.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

import sdrl.tasks.pretrain.run as pretrain_run
from sdrl.data.folder import META_FILE
from sdrl.data.synth import generate_dataset
from sdrl.tasks.pretrain.config import PretrainConfig


class ValidationTimer(pl.Callback):
    """Times training steps and validations (see the module doc)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.validated: set[int] = set()
        self.validations: list[tuple[int, bool, float]] = []  # (step, probe, seconds)
        self.probe = False
        self.wall = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.wall = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batch_end = time.perf_counter()

    def on_validation_batch_end(self, trainer, pl_module, *args: Any) -> None:
        self.probe = self.probe or bool(getattr(pl_module, "probe_now", True))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        seconds = time.perf_counter() - self.batch_end
        self.validations.append((trainer.global_step, self.probe, seconds))
        self.validated.add(len(self.starts) - 1)
        self.probe = False

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.wall = time.perf_counter() - self.wall

    def step_seconds(self) -> float:
        """Median training step (start to next start), steps without a validation after."""
        gaps = [
            b - a
            for i, (a, b) in enumerate(zip(self.starts, self.starts[1:], strict=False))
            if i not in self.validated
        ]
        return statistics.median(gaps)

    def validation_seconds(self, probe: bool) -> float | None:
        """Median validation with (``probe``) or without the probe; ``None`` if none ran."""
        times = [s for _, p, s in self.validations if p == probe]
        return statistics.median(times) if times else None


def timed_run(args: argparse.Namespace, probe_tiles: int) -> ValidationTimer:
    """One pretraining run with ``probe_tiles``, timed by a :class:`ValidationTimer`."""
    timer = ValidationTimer()
    fit_task = pretrain_run.fit_task
    pretrain_run.fit_task = functools.partial(fit_task, callbacks=[timer])  # type: ignore
    try:
        config = PretrainConfig(
            data=str(args.data),
            out=str(args.out / f"probe{probe_tiles}"),
            max_steps=args.steps,
            val_every=args.val_every,
            batch_size=args.batch_size,
            probe_tiles=probe_tiles,
            overwrite=True,
            progress_bar=False,
        )
        pretrain_run.pretrain(config)
    finally:
        pretrain_run.fit_task = fit_task
    return timer


def default_run_share(
    plain: float, probe: float, epoch_steps: int, epochs: int, every: int
) -> float:
    """Validation share of a run of ``epochs`` epochs validated at each epoch end.

    ``plain`` and ``probe`` are validations (without / with the probe) in training steps.
    """
    probes = sum(1 for e in range(1, epochs + 1) if e in (1, epochs) or e % every == 0)
    validation = probes * probe + ((epochs - probes) * plain if probes < epochs else 0.0)
    return validation / (epochs * epoch_steps + validation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/sdrl_bench_val700"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/sdrl_bench_validation"))
    parser.add_argument("--tiles", type=int, default=700, help="tiles generated into --data")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--val-every", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--probe-tiles", default="256,64", help="runs, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting, interleaved")
    parser.add_argument("--probe-every", type=int, default=5, help="for the projection")
    parser.add_argument("--epochs", type=int, default=100, help="for the projection")
    args = parser.parse_args()
    if not (args.data / META_FILE).is_file():
        generate_dataset(args.data, kind="pretrain", num=args.tiles, size=128, bands=13, seed=0)
    train_tiles = len((args.data / "list" / "train.txt").read_text().split())
    epoch_steps = train_tiles // args.batch_size
    settings = [int(t) for t in args.probe_tiles.split(",")]
    ratios: dict[int, list[tuple[float, float, float]]] = {t: [] for t in settings}
    for repeat in range(args.repeats):
        for tiles in settings:
            timer = timed_run(args, tiles)
            step = timer.step_seconds()
            plain, probe = timer.validation_seconds(False), timer.validation_seconds(True)
            assert probe is not None, "no validation scored the probe: raise --steps"
            measured = sum(s for _, _, s in timer.validations) / timer.wall
            plain_steps = plain / step if plain is not None else math.nan
            ratios[tiles].append((plain_steps, probe / step, measured))
            print(
                f"run {repeat + 1}, --probe-tiles {tiles}: step {step:.2f} s, validations "
                f"(step, probe, s) {[(v, p, round(s, 1)) for v, p, s in timer.validations]}",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"{args.data}: {train_tiles} training tiles (13 bands, 128 px), batch {args.batch_size}: "
        f"{epoch_steps} steps per epoch; {args.repeats} runs per setting of {args.steps} steps, "
        f"validation every {args.val_every}; torch threads {torch.get_num_threads()}; "
        f"medians over the runs"
    )
    print()
    print(
        "| --probe-tiles | val, no probe (steps) | val with probe (steps) | share, measured runs "
        f"| default run, probe every 1 | default run, probe every {args.probe_every} |"
    )
    print("|---|---|---|---|---|---|")
    for tiles in settings:
        plain, probe, measured = (statistics.median(c) for c in zip(*ratios[tiles], strict=True))
        shares = [
            default_run_share(plain, probe, epoch_steps, args.epochs, every)
            for every in (1, args.probe_every)
        ]
        print(
            f"| {tiles} | {plain:.2f} | {probe:.2f} | {measured:.1%} | {shares[0]:.1%} "
            f"| {shares[1]:.1%} |".replace("nan%", "–").replace("nan", "–")
        )


if __name__ == "__main__":
    main()
