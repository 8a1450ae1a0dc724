"""Benchmark of georeferenced prediction (``predict_change``) on large generated pairs.

For each size (2048², 4096², 8192² by default) a before/after pair is generated on disk with
windowed writes (tiled, deflate GeoTIFFs; kept between runs), then a subprocess runs
``predict_change`` on it and reports

* its peak resident memory (target: flat, within 10% from the smallest to the largest);
* raster pixels/s against the floor: the model's forward pass alone on the same number of
  tiles of the same size and batch, timed on a sample of batches (target: ratio >= 1/1.3).

The model is a small early-fusion conv net (3×3 convs, 16 channels): cheap, so the engine's
overhead (reading, normalising, stitching, writing) shows. Run::

    python experiments/bench_predict.py [--sizes 2048 4096 8192 --bands 3 --dtype uint8]

and paste the printed table into experiments/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window
from torch import nn

MEAN, STD = 100.0, 50.0
RESULT_KEYS = ("size", "tiles", "seconds", "floor_seconds", "peak_rss_mb", "ratio", "cpu_ratio")


class TinyChangeNet(nn.Module):
    """Early fusion: ``(B, 2C, T, T)`` → two 3×3 convs of 16 channels → ``(B, 2, T, T)``."""

    def __init__(self, bands: int, width: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(2 * bands, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2, 1),
        )

    def forward(self, image_a: torch.Tensor, image_b: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image_a, image_b], dim=1))


def generate(folder: Path, size: int, bands: int, dtype: str) -> tuple[Path, Path]:
    """Write a ``size²`` before/after pair strip by strip (never whole in memory)."""
    paths = folder / f"a_{size}_{bands}{dtype}.tif", folder / f"b_{size}_{bands}{dtype}.tif"
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": bands,
        "dtype": dtype,
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, 500000, 0, -10, 5000000),
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "zlevel": 1,
        "predictor": 2,
    }
    scale = 1 if dtype == "uint8" else 40
    strip = 512
    tmp = [p.with_suffix(".partial.tif") for p in paths]
    with (
        rasterio.open(tmp[0], "w", **profile) as dst_a,
        rasterio.open(tmp[1], "w", **profile) as dst_b,
    ):
        for row in range(0, size, strip):
            rng = np.random.default_rng(row)
            h = min(strip, size - row)
            yy, xx = np.mgrid[row : row + h, 0:size].astype(np.float32)
            base = 100 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
            a = base[None] + rng.normal(0, 12, (bands, h, size)).astype(np.float32)
            b = a + rng.normal(0, 6, a.shape).astype(np.float32)
            for _ in range(max(1, size // 256)):  # changed blocks
                r, c = rng.integers(0, h), rng.integers(0, size)
                b[:, r : r + 60, c : c + 80] += rng.uniform(-80, 80, (bands, 1, 1))
            window = Window(0, row, size, h)
            for dst, data in ((dst_a, a), (dst_b, b)):
                dst.write((np.clip(data, 1, 250) * scale).astype(dtype), window=window)
    for t, p in zip(tmp, paths, strict=True):
        t.rename(p)
    return paths


def child(args: argparse.Namespace) -> None:
    """Run one size in this (fresh) process; print a JSON line."""
    from sdrl.predict import TilePlan, predict_change

    torch.set_num_threads(args.threads)
    before, after = generate(Path(args.data), args.child, args.bands, args.dtype)
    model = TinyChangeNet(args.bands)
    scale = 1 if args.dtype == "uint8" else 40
    plan = TilePlan.build(args.child, args.child, args.tile, args.overlap)
    n_batches = -(-len(plan) // args.batch)
    x = torch.randn(args.batch, args.bands, args.tile, args.tile)
    y = x + 0.1 * torch.randn_like(x)

    def floor(batches: int) -> tuple[float, float]:
        """Wall and CPU seconds of the forward pass on ``batches`` batches."""
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for _ in range(batches):
                model(x, y)
        return time.perf_counter() - wall, time.process_time() - cpu

    floor(1)  # warm-up: the first forward pass is slow, a cost of the model, not the engine
    # the floor is timed on a sample of batches, half before and half after the prediction
    # (the machine's load drifts), and scaled to the plan's number of batches
    sample = max(2, min(n_batches, args.floor_batches))
    before_wall, before_cpu = floor(sample // 2)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = Path(args.data) / f"change_{args.child}.tif"
    cpu = time.process_time()
    result = predict_change(
        model,
        before,
        after,
        out,
        mean=[MEAN * scale] * args.bands,
        std=[STD * scale] * args.bands,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch,
        stitch=args.stitch,
        progress=False,
    )
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.unlink()
    after_wall, after_cpu = floor(sample - sample // 2)
    floor_wall = (before_wall + after_wall) / sample * n_batches
    floor_cpu = (before_cpu + after_cpu) / sample * n_batches
    print(
        json.dumps(
            {
                "size": args.child,
                "tiles": result.tiles,
                "seconds": result.seconds,
                "floor_seconds": floor_wall,
                "ratio": floor_wall / result.seconds,
                "cpu_ratio": floor_cpu / cpu,
                "rss_start_mb": rss_start,
                "peak_rss_mb": peak,
                "strip": result.strip_shape,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--bands", type=int, default=3)
    parser.add_argument("--dtype", default="uint8", choices=["uint8", "uint16"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--stitch", default="blend", choices=["blend", "centre"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--floor-batches", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default="/tmp/sdrl_bench_predict")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    for size in args.sizes:
        start = time.perf_counter()
        generate(Path(args.data), size, args.bands, args.dtype)
        print(f"{size}²: data ready in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    runs: dict[int, list[dict]] = {size: [] for size in args.sizes}
    for repeat in range(args.repeats):  # sizes interleaved, so the machine's load hits all alike
        for size in args.sizes:
            command = [sys.executable, __file__, *sys.argv[1:], "--child", str(size)]
            line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs[size].append(json.loads(line.strip().splitlines()[-1]))
            print(f"repeat {repeat}: {runs[size][-1]}", file=sys.stderr)
    rows = [
        {key: statistics.median(run[key] for run in runs[size]) for key in RESULT_KEYS}
        for size in args.sizes
    ]
    print(
        f"\n{args.bands}-band {args.dtype} GeoTIFF pairs, tile {args.tile}, "
        f"overlap {args.overlap}, batch {args.batch}, stitch {args.stitch}, "
        f"{args.threads} threads; medians of {args.repeats} runs\n"
    )
    print(
        "| size | tiles | peak RSS (MB) | vs smallest | Mpx/s | floor Mpx/s | ratio "
        "| CPU-time ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        pixels = row["size"] ** 2 / 1e6
        print(
            f"| {row['size']}² | {row['tiles']} | {row['peak_rss_mb']:.0f} | "
            f"{row['peak_rss_mb'] / rows[0]['peak_rss_mb'] - 1:+.1%} | "
            f"{pixels / row['seconds']:.2f} | {pixels / row['floor_seconds']:.2f} | "
            f"{row['ratio']:.2f} | {row['cpu_ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
