"""``sdrl synth``: write a dataset folder of procedurally generated bitemporal scenes."""

from __future__ import annotations

import argparse
import time

from sdrl.cli.types import non_negative_float, positive_float, positive_int
from sdrl.data.synth.spectra import CLASSES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl synth``."""
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic change or pretraining dataset (the built-in data engine)",
        description=(
            "Generate bitemporal scenes of any size and band count with semantic classes "
            f"({', '.join(CLASSES)}), real changes between the dates and nuisances that are not "
            "change (illumination, season, haze, noise, sun direction, misregistration). "
            "Deterministic for a seed: scene i depends only on (seed, i) and the parameters."
        ),
    )
    parser.add_argument(
        "--kind",
        required=True,
        choices=("change", "pretrain"),
        help="change: A/ B/ label/ (0/1 change); pretrain: A/ B/ label/ label_B/ (class masks)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output dataset folder")
    parser.add_argument(
        "--num", type=positive_int, default=64, help="number of scenes (default 64)"
    )
    parser.add_argument(
        "--size", type=positive_int, default=256, help="tile side in pixels (default 256)"
    )
    parser.add_argument(
        "--bands",
        type=positive_int,
        default=3,
        help="3 = RGB, 4 = RGB+NIR, 13 = Sentinel-2 B01..B12, other = 450-2300 nm (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--change-rate",
        type=non_negative_float,
        default=1.0,
        help="multiplier of the real-change probabilities; 0 = no real change (default 1)",
    )
    parser.add_argument(
        "--misregistration",
        type=non_negative_float,
        default=2.0,
        metavar="PX",
        help="largest shift of B against A in pixels, at least 1 px when > 0 (default 2)",
    )
    parser.add_argument(
        "--nuisance",
        type=non_negative_float,
        default=1.0,
        help="strength of illumination/season/haze/noise/sun differences; 0 = none (default 1)",
    )
    parser.add_argument(
        "--scale",
        type=positive_float,
        default=1.0,
        help="object size factor (default 1: parcels ~64 px)",
    )
    parser.add_argument(
        "--gsd",
        type=positive_float,
        default=None,
        metavar="M",
        help="pixel size in metres in the GeoTIFFs (default 1 for 3-4 bands, else 10)",
    )
    parser.add_argument("--crs", default="EPSG:32633", help="CRS of the GeoTIFFs")
    parser.add_argument("--workers", type=positive_int, default=1, help="generating processes")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print a one-line summary."""
    from sdrl.data.synth import generate_dataset, scene_splits  # lazy: `sdrl --help` stays fast

    start = time.perf_counter()
    meta = generate_dataset(
        args.out,
        kind=args.kind,
        num=args.num,
        size=args.size,
        bands=args.bands,
        seed=args.seed,
        change_rate=args.change_rate,
        misregistration=args.misregistration,
        nuisance=args.nuisance,
        scale=args.scale,
        gsd=args.gsd,
        crs=args.crs,
        overwrite=args.overwrite,
        workers=args.workers,
    )
    seconds = time.perf_counter() - start
    fractions = meta.provenance["pixel_fractions"]
    if args.kind == "change":
        detail = f"{100 * fractions['changed']:.1f}% changed pixels"
    else:
        detail = "classes " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in fractions["A"].items())
    splits = " / ".join(f"{k} {len(v)}" for k, v in scene_splits(args.num, args.kind).items())
    print(
        f"wrote {args.num} {args.kind} scenes ({args.size}x{args.size}, {len(meta.bands)} bands, "
        f"seed {args.seed}) to {args.out} in {seconds:.1f} s: {splits}; {detail}"
    )
    return 0
