"""Benchmark of one pretraining step: sdrl against the floor and lightly-based baselines.

Same backbone, batch and image size for every row; each configuration runs in its own
subprocess so its peak resident memory can be read. Rows:

* ``floor``: backbone forward + backward on both views (sum of C5 as the loss), SGD step;
* ``sdrl-c5`` / ``sdrl-p2``: the sdrl method pooling at C5 / at FPN P2;
* ``detcon``: DetCon-S (lightly's DetConSLoss) with region pooling at C5;
* ``simclr``: SimCLR (lightly's head and NT-Xent).

It also times pooling + projection + loss alone (forward and backward, on detached features)
to give their share of the sdrl step. Run::

    python experiments/bench_pretrain.py [--backbone resnet18 --batch 16 --size 128 --repeats 5]

and paste the printed table into experiments/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from sdrl.models import build_backbone
from sdrl.ssl.methods import build_method
from sdrl.ssl.methods.heads import apply_to_valid
from sdrl.ssl.pooling import region_pool

K = 6


def batch(args: argparse.Namespace) -> tuple[torch.Tensor, ...]:
    """Two views and masks with blocky regions of K classes."""
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(args.batch, 3, args.size, args.size, generator=g) for _ in range(2)]
    coarse = [torch.randint(0, K, (args.batch, 8, 8), generator=g) for _ in range(2)]
    scale = args.size // 8
    masks = [m.repeat_interleave(scale, 1).repeat_interleave(scale, 2) for m in coarse]
    return views[0], views[1], masks[0], masks[1]


def build_step(config: str, args: argparse.Namespace, data: tuple[torch.Tensor, ...]):
    """A closure running one optimiser step of ``config``, and the model."""
    torch.manual_seed(0)
    v1, v2, m1, m2 = data
    backbone = build_backbone(args.backbone, 3)
    if config == "floor":
        model: torch.nn.Module = backbone

        def loss_fn() -> torch.Tensor:
            return backbone(torch.cat([v1, v2]))[-1].mean()

    else:
        method, _, level = config.partition("-")
        options = {"level": level} if method == "sdrl" else {}
        model = build_method(method, backbone, K, **options)

        def loss_fn() -> torch.Tensor:
            return model(v1, v2, m1, m2)["loss"]

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> None:
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()

    return step, model


def interleaved_medians(steps: dict, repeats: int) -> dict[str, float]:
    """Median seconds per step, timing the configurations in turn so machine load hits all alike."""
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory(args: argparse.Namespace) -> float:
    """Peak resident MB (VmHWM) of this process after building ``args.config`` and two steps.

    ``ru_maxrss`` is not used: Linux carries it over from the forking parent across exec.
    """
    step, _ = build_step(args.config, args, batch(args))
    step()
    step()
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def pool_and_loss_seconds(method, v1, v2, m1, m2, repeats: int, head: bool) -> float:
    """Region pooling (+ projection head) + loss, forward and backward, on detached features."""
    with torch.no_grad():
        features = method.backbone(torch.cat([v1, v2]))
        level = method.neck(features)[0] if method.neck is not None else features[-1]
    level = level.detach().requires_grad_(True)
    masks = torch.cat([m1, m2])
    b = v1.shape[0]

    def step() -> None:
        pooled, valid = region_pool(level, masks, K, rule=method.rule)
        z = apply_to_valid(method.projection, pooled, valid) if head else pooled
        z1, z2 = z.split(b)
        valid1, valid2 = valid.split(b)
        method.criterion(z1, z2, valid1, valid2)["loss"].backward()

    return interleaved_medians({"pool+loss": step}, repeats)["pool+loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config is not None:
        print(json.dumps({"peak_rss_mb": peak_memory(args)}))
        return
    configs = ["floor", "sdrl-c5", "sdrl-p2", "detcon", "simclr"]
    data = batch(args)
    built = {c: build_step(c, args, data) for c in configs}
    seconds = interleaved_medians({c: built[c][0] for c in configs}, args.repeats)
    shares = {
        c: tuple(
            pool_and_loss_seconds(built[c][1], *data, args.repeats, head) / seconds[c]
            for head in (False, True)
        )
        for c in ("sdrl-c5", "sdrl-p2")
    }
    memory = {}
    for config in configs:
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--config", config],
            check=True,
            capture_output=True,
            text=True,
        )
        memory[config] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    floor, detcon = seconds["floor"], seconds["detcon"]
    print(
        f"torch threads {torch.get_num_threads()}; {args.backbone}, batch {args.batch} x 2 views, "
        f"{args.size}x{args.size} px, K={K}, median of {args.repeats} interleaved repeats"
    )
    print()
    print(
        "| config | step s | × floor | × DetCon-S | pool+loss share | pool+head+loss share "
        "| peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for config in configs:
        share = " | ".join(f"{v:.1%}" for v in shares[config]) if config in shares else "– | –"
        print(
            f"| {config} | {seconds[config]:.3f} | {seconds[config] / floor:.2f} | "
            f"{seconds[config] / detcon:.2f} | {share} | {memory[config]:.0f} |"
        )


if __name__ == "__main__":
    main()
