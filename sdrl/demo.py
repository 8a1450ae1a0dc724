"""The whole story on built-in data: ``sdrl demo``.

Today: the data engine writes a change dataset and a pretraining dataset, the data layer loads
them (statistics, splits, class shares), one batch goes through the augmentation, and preview
pictures are written. Later stages (pretraining, finetuning, evaluation) join as they land.
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
        seconds: Wall time per step.
    """

    out: Path
    datasets: dict[str, Path] = field(default_factory=dict)
    previews: list[Path] = field(default_factory=list)
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
    num: int = 40,
    size: int = 128,
    seed: int = 0,
    overwrite: bool = False,
) -> DemoResult:
    """Run the demo into ``out``.

    Args:
        out: Demo folder (``change/``, ``pretrain/`` datasets and ``preview_*.png``).
        num: Scenes per dataset.
        size: Scene size in pixels.
        seed: Seed of the data engine and the augmentation.
        overwrite: Replace existing demo datasets.

    Returns:
        A :class:`DemoResult`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out)
    plan: dict[str, tuple[SynthKind, int]] = {"change": ("change", 3), "pretrain": ("pretrain", 13)}
    for name, (kind, bands) in plan.items():
        start = time.perf_counter()
        generate_dataset(
            out / name, kind=kind, num=num, size=size, bands=bands, seed=seed, overwrite=overwrite
        )
        result.seconds[f"synth {name}"] = time.perf_counter() - start
        result.datasets[name] = out / name
        log.info("wrote %s dataset: %d scenes of %dx%d px, %d bands", name, num, size, size, bands)
        log.info("%s\n", summarize(str(out / name)))

    torch.manual_seed(seed)
    augment = BitemporalAugment()
    for name, dataset_cls, preview in (
        ("change", ChangeDataset, _change_preview),
        ("pretrain", PretrainPairDataset, _pretrain_preview),
    ):
        dataset = dataset_cls(out / name, "train")
        loader = DataLoader(dataset, batch_size=8, shuffle=True, collate_fn=collate)
        start = time.perf_counter()
        batch = next(iter(loader))
        augmented = augment(batch)
        result.seconds[f"load+augment {name}"] = time.perf_counter() - start
        shapes = {k: tuple(v.shape) for k, v in augmented.items() if isinstance(v, torch.Tensor)}
        log.info("%s batch after augmentation: %s", name, shapes)
        rows = preview(batch, dataset.meta.bands, 4) + preview(augmented, dataset.meta.bands, 4)
        path = write_raster(out / f"preview_{name}.png", image_grid(rows))
        result.previews.append(path)
        log.info("preview (4 scenes, then the same 4 augmented): %s", path)
    return result
