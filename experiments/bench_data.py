"""Benchmark of the training data path and of the data engine.

Measures, in one process on this machine:

1. samples/s of the data path — tile read (rasterio) + normalisation + collate through a
   ``DataLoader`` — for 256×256 tiles with 3 bands (PNG, like LEVIR-CD) and 13 bands (uint16
   GeoTIFF, like Sentinel-2), with 0, 1 and 2 workers;
2. samples/s that one ResNet-18 training step consumes (forward + backward + SGD step on both
   dates of each sample, i.e. 2·B images of 256×256), the rate the data path must beat;
3. scenes/s of ``sdrl synth`` for 3 and 13 bands.

Each figure is the median over ``--repeats`` runs; the ratio data/model is the headline
(target ≥ 5). Run::

    python experiments/bench_data.py --out /tmp/sdrl_bench [--repeats 3]

and paste the printed table into experiments/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader

from sdrl.data.datasets import ChangeDataset
from sdrl.data.io import read_raster, write_raster
from sdrl.data.samples import collate
from sdrl.data.synth import generate_dataset


def median_rate(fn, items: int, repeats: int) -> float:
    """Median of ``items / seconds`` over ``repeats`` calls of ``fn``."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def make_png_copy(src: Path, dst: Path) -> Path:
    """Rewrite a 3-band synth folder as uint8 PNGs (the LEVIR-CD distribution format)."""
    import shutil

    shutil.copytree(src, dst)
    for part in ("A", "B", "label"):
        for tif in sorted((dst / part).glob("*.tif")):
            data = read_raster(tif).data
            if part != "label":
                data = np.clip(data / 3000.0 * 255.0, 0, 255).astype(np.uint8)
            write_raster(tif.with_suffix(".png"), data.astype(np.uint8))
            tif.unlink()
    (dst / "dataset.json").unlink()  # statistics recomputed for the PNG values
    return dst


def bench_loader(root: Path, workers: int, batch: int, repeats: int) -> float:
    dataset = ChangeDataset(root, "all")
    loader = DataLoader(
        dataset,
        batch_size=batch,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=workers > 0,
        shuffle=True,
    )
    list(loader)  # warm-up: page cache, worker start-up

    def epoch() -> None:
        for _ in loader:
            pass

    return median_rate(epoch, len(dataset), repeats)


def bench_resnet18(bands: int, batch: int, repeats: int) -> float:
    model = torchvision.models.resnet18(num_classes=128)
    model.conv1 = torch.nn.Conv2d(bands, 64, 7, 2, 3, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randn(2 * batch, bands, 256, 256)

    def step() -> None:
        optimizer.zero_grad()
        model(images).square().mean().backward()
        optimizer.step()

    step()
    return median_rate(step, batch, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (temp if omitted)")
    parser.add_argument("--tiles", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scratch = args.out or Path(tempfile.mkdtemp(prefix="sdrl_bench_"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"torch threads: {torch.get_num_threads()}, scratch: {scratch}")

    rows = []
    synth_rates = {}
    folders = {}
    for bands in (3, 13):
        out = scratch / f"synth_{bands}"
        start = time.perf_counter()
        generate_dataset(
            out, kind="change", num=args.tiles, size=256, bands=bands, seed=0, overwrite=True
        )
        synth_rates[bands] = args.tiles / (time.perf_counter() - start)
        folders[bands] = out
    png = scratch / "png_3"
    if png.exists():
        import shutil

        shutil.rmtree(png)
    folders[3] = make_png_copy(folders[3], png)

    for bands, label in ((3, "3-band uint8 PNG"), (13, "13-band uint16 GeoTIFF")):
        model_rate = bench_resnet18(bands, args.batch, args.repeats)
        for workers in (0, 1, 2):
            rate = bench_loader(folders[bands], workers, args.batch, args.repeats)
            rows.append((label, workers, rate, model_rate, rate / model_rate))

    print()
    print(
        f"| tiles (256×256, batch {args.batch}) | workers | data path samples/s "
        "| ResNet-18 step samples/s | ratio |"
    )
    print("|---|---|---|---|---|")
    for label, workers, rate, model_rate, ratio in rows:
        print(f"| {label} | {workers} | {rate:.1f} | {model_rate:.2f} | {ratio:.0f}× |")
    print()
    print("| sdrl synth --kind change --size 256 | scenes/s |")
    print("|---|---|")
    for bands, rate in synth_rates.items():
        print(f"| --bands {bands} | {rate:.1f} |")


if __name__ == "__main__":
    main()
