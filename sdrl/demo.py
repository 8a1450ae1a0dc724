"""The whole story on built-in data: ``sdrl demo``.

Data engine → dataset folders → augmentation previews → ``sdrl`` pretraining → change-detection
finetuning from random and from pretrained weights → evaluation → a georeferenced change map.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from sdrl.data.augment import BitemporalAugment
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.io import write_raster
from sdrl.data.samples import collate
from sdrl.data.summary import summarize
from sdrl.data.synth import SynthKind, generate_dataset
from sdrl.evaluate import evaluate
from sdrl.predict.from_checkpoint import predict_from_checkpoint
from sdrl.tasks.change.config import FinetuneConfig
from sdrl.tasks.change.run import finetune
from sdrl.tasks.pretrain.config import PretrainConfig
from sdrl.tasks.pretrain.run import pretrain
from sdrl.viz import colorize, image_grid, to_rgb

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes:
        out: The demo folder.
        datasets: Name → dataset folder.
        previews: Preview PNGs written.
        metrics: Test metrics of the change models, by initialisation.
        change_map: The predicted change map GeoTIFF.
        seconds: Wall time per step.
    """

    out: Path
    datasets: dict[str, Path] = field(default_factory=dict)
    previews: list[Path] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    change_map: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _change_preview(batch: dict, band_names: list[str], rows: int) -> list[list]:
    pictures = []
    for i in range(min(rows, len(batch["id"]))):
        change = batch["change"][i].numpy()
        pictures.append(
            [
                to_rgb(batch["image_a"][i].numpy(), band_names),
                to_rgb(batch["image_b"][i].numpy(), band_names),
                colorize(np.where(change == 1, 5, change)),  # changed in red, ignore black
            ]
        )
    return pictures


def _pretrain_preview(batch: dict, band_names: list[str], rows: int) -> list[list]:
    return [
        [
            to_rgb(batch["image_a"][i].numpy(), band_names),
            to_rgb(batch["image_b"][i].numpy(), band_names),
            colorize(batch["mask_a"][i].numpy()),
            colorize(batch["mask_b"][i].numpy()),
        ]
        for i in range(min(rows, len(batch["id"])))
    ]


def run_demo(
    out: str | Path,
    num: int = 60,
    size: int = 96,
    seed: int = 0,
    overwrite: bool = False,
    backbone: str = "resnet18",
    pretrain_steps: int = 30,
    finetune_steps: int = 30,
    batch_size: int = 8,
    label_fraction: float = 0.5,
) -> DemoResult:
    """Run the demo into ``out``.

    Steps: the data engine writes a pretraining and a change dataset (4 bands, RGB + NIR);
    one augmented batch of each is previewed; ``sdrl`` pretraining runs on the pretraining
    set; two change models are finetuned on ``label_fraction`` of the change training tiles,
    one from random weights and one from the pretrained backbone; both are evaluated on the
    test split; the pretrained one predicts a change map for a larger generated pair.

    The default budget is minutes on a laptop CPU: it shows the pipeline working end to end,
    not the accuracy a real pretraining run reaches.

    Args:
        out: Demo folder.
        num: Scenes per dataset.
        size: Scene size in pixels (a multiple of 32).
        seed: Seed of the data engine, the augmentation and the training runs.
        overwrite: Replace an earlier demo in ``out``.
        backbone: Backbone name for pretraining and finetuning.
        pretrain_steps: Pretraining optimiser steps.
        finetune_steps: Finetuning optimiser steps per model.
        batch_size: Batch size of both trainings.
        label_fraction: Share of the change training tiles used for finetuning.

    Returns:
        A :class:`DemoResult`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out)
    _synthesise(out, result, num, size, seed, overwrite)
    _preview(out, result, seed)

    start = time.perf_counter()
    pre = pretrain(
        PretrainConfig(
            data=str(out / "pretrain"),
            out=str(out / "runs" / "pretrain"),
            method="sdrl",
            max_steps=pretrain_steps,
            backbone=backbone,
            batch_size=batch_size,
            seed=seed,
            num_workers=0,
            overwrite=overwrite,
        )
    )
    result.seconds["pretrain"] = time.perf_counter() - start
    log.info("pretrained sdrl for %d steps: %s", pre.global_step, pre.best_checkpoint)

    for init in ("random", "pretrained"):
        start = time.perf_counter()
        run = finetune(
            FinetuneConfig(
                data=str(out / "change"),
                out=str(out / "runs" / f"finetune_{init}"),
                init="random" if init == "random" else str(pre.best_checkpoint),
                max_steps=finetune_steps,
                label_fraction=label_fraction,
                backbone=backbone,
                batch_size=batch_size,
                seed=seed,
                num_workers=0,
                overwrite=overwrite,
            )
        )
        metrics = evaluate(out / "change", run.best_checkpoint, out / f"metrics_{init}.json")
        result.metrics[init] = {k: metrics[k] for k in ("f1", "iou", "precision", "recall")}
        result.seconds[f"finetune+evaluate {init}"] = time.perf_counter() - start
        log.info("finetuned from %s weights: test %s", init, _scores(result.metrics[init]))

    start = time.perf_counter()
    scene = out / "scene"
    generate_dataset(scene, "change", num=1, size=4 * size, bands=4, seed=seed + 7, overwrite=True)
    predicted = predict_from_checkpoint(
        out / "runs" / "finetune_pretrained" / "best.ckpt",
        scene / "A" / "000000.tif",
        scene / "B" / "000000.tif",
        out / "change_map.tif",
        tile=2 * size,
        overlap=size // 4,
        progress=False,
    )
    result.seconds["predict"] = time.perf_counter() - start
    result.change_map = predicted.out
    log.info("change map of a %dx%d px pair: %s", 4 * size, 4 * size, predicted.out)
    return result


def _scores(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())


def _synthesise(
    out: Path, result: DemoResult, num: int, size: int, seed: int, overwrite: bool
) -> None:
    """Write the pretraining and change datasets (different scenes, same 4 bands)."""
    plan: dict[str, tuple[SynthKind, int]] = {
        "pretrain": ("pretrain", seed),
        "change": ("change", seed + 1),
    }
    for name, (kind, scene_seed) in plan.items():
        start = time.perf_counter()
        generate_dataset(
            out / name, kind=kind, num=num, size=size, bands=4, seed=scene_seed, overwrite=overwrite
        )
        result.seconds[f"synth {name}"] = time.perf_counter() - start
        result.datasets[name] = out / name
        log.info("%s\n", summarize(str(out / name)))


def _preview(out: Path, result: DemoResult, seed: int) -> None:
    """One augmented training batch of each dataset, before and after augmentation."""
    torch.manual_seed(seed)
    augment = BitemporalAugment()
    for name, dataset_cls, preview in (
        ("change", ChangeDataset, _change_preview),
        ("pretrain", PretrainPairDataset, _pretrain_preview),
    ):
        dataset = dataset_cls(out / name, "train")
        batch = next(iter(DataLoader(dataset, batch_size=4, shuffle=True, collate_fn=collate)))
        augmented = augment(batch)
        rows = preview(batch, dataset.meta.bands, 4) + preview(augmented, dataset.meta.bands, 4)
        path = write_raster(out / f"preview_{name}.png", image_grid(rows))
        result.previews.append(path)
