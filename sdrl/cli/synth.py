"""``sdrl synth``: write a dataset folder of procedurally generated scenes or crop patches."""

from __future__ import annotations

import argparse
import time

from sdrl.cli.types import non_negative_float, positive_float, positive_int
from sdrl.data.synth.spectra import CLASSES
from sdrl.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl synth``."""
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic change, pretraining or crop dataset (the built-in data engine)",
        description=(
            "Generate bitemporal scenes of any size and band count with semantic classes "
            f"({', '.join(CLASSES)}), real changes between the dates and nuisances that are not "
            "change (illumination, season, haze, noise, sun direction, misregistration); or, "
            "with --kind crop, H2Crop-style patches: 12 monthly Sentinel-2 composites (10 "
            "bands, 10 m, some months cloudy), an EnMAP cube (218 bands, 30 m), hierarchical "
            "labels and last year's labels, for a taxonomy whose sibling leaf classes only "
            "EnMAP can tell apart. Deterministic for a seed: scene i depends only on (seed, i) "
            "and the parameters."
        ),
    )
    parser.add_argument(
        "--kind",
        required=True,
        choices=("change", "pretrain", "crop"),
        help="change: A/ B/ label/ (0/1 change); pretrain: A/ B/ label/ label_B/ (class "
        "masks); crop: h5_data/*.h5 in H2Crop's format, train/val/test.txt, taxonomy.csv",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output dataset folder")
    parser.add_argument(
        "--num", type=positive_int, default=64, help="number of scenes (default 64)"
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=None,
        help="tile side in pixels (default 256; crop: default 96, must be a multiple of 3, "
        "as EnMAP's 30 m grid is 3x coarser than Sentinel-2's 10 m)",
    )
    parser.add_argument(
        "--bands",
        type=positive_int,
        default=None,
        help="3 = RGB, 4 = RGB+NIR, 13 = Sentinel-2 B01..B12, other = 450-2300 nm (default 3); "
        "not for crop, which always has 10 Sentinel-2 and 218 EnMAP bands",
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--taxonomy",
        metavar="CSV",
        default=None,
        help="crop only: taxonomy CSV in H2Crop's cascade_labels.csv format (level1_id, "
        "level1_name, ... levelL_name); default: a built-in one of 3/5/8/10 classes",
    )
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
    if args.kind == "crop":
        return _run_crop(args)
    if args.taxonomy is not None:
        raise ConfigError(f"--taxonomy: only for --kind crop, not {args.kind}")
    from sdrl.data.synth import generate_dataset, scene_splits  # lazy: `sdrl --help` stays fast

    size = 256 if args.size is None else args.size
    bands = 3 if args.bands is None else args.bands
    start = time.perf_counter()
    meta = generate_dataset(
        args.out,
        kind=args.kind,
        num=args.num,
        size=size,
        bands=bands,
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
        f"wrote {args.num} {args.kind} scenes ({size}x{size}, {len(meta.bands)} bands, "
        f"seed {args.seed}) to {args.out} in {seconds:.1f} s: {splits}; {detail}"
    )
    return 0


def _run_crop(args: argparse.Namespace) -> int:
    """``sdrl synth --kind crop``: H2Crop-style patches (:mod:`sdrl.data.crop.synth_folder`)."""
    from sdrl.data.crop.synth_folder import crop_splits, generate_crop_dataset
    from sdrl.data.crop.taxonomy import builtin_taxonomy, load_taxonomy

    if args.bands is not None and args.bands != 10:
        raise ConfigError(
            f"--bands: crop data always has 10 Sentinel-2 and 218 EnMAP bands, found "
            f"{args.bands}; leave --bands out"
        )
    taxonomy = load_taxonomy(args.taxonomy) if args.taxonomy else builtin_taxonomy()
    size = 96 if args.size is None else args.size
    start = time.perf_counter()
    meta = generate_crop_dataset(
        args.out,
        num=args.num,
        size=size,
        seed=args.seed,
        taxonomy=taxonomy,
        overwrite=args.overwrite,
        workers=args.workers,
    )
    seconds = time.perf_counter() - start
    splits = " / ".join(f"{k} {len(v)}" for k, v in crop_splits(args.num).items())
    classes = "/".join(str(k - 1) for k in taxonomy.num_classes)
    background = 100 * meta["provenance"]["pixel_fractions"]["background"]
    print(
        f"wrote {args.num} crop patches ({size}x{size}, 12 months, 10 Sentinel-2 + 218 EnMAP "
        f"bands, {classes} classes, seed {args.seed}) to {args.out} in {seconds:.1f} s: "
        f"{splits}; {background:.0f}% background"
    )
    return 0
