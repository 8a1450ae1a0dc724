"""``sdrl prep levir|whu|oscd``: public change-detection datasets from their raw layouts."""

from __future__ import annotations

import argparse

from sdrl.cli.types import non_negative_int, positive_int, probability
from sdrl.errors import ConfigError


def _common(parser: argparse.ArgumentParser, tile: int | None, default: str | None = None) -> None:
    parser.add_argument("--src", required=True, metavar="RAW", help="the extracted raw dataset")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    default = default or (f"(default {tile})" if tile else "(default: whole images)")
    parser.add_argument(
        "--tile", type=positive_int, default=tile, help=f"tile size in pixels {default}"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def _split_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split",
        metavar="NAME",
        help="for RAW/{A,B,label}/ without split folders: put every tile in this split",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``levir``, ``whu`` and ``oscd`` recipes on ``sdrl prep``."""
    levir = subparsers.add_parser(
        "levir",
        help="LEVIR-CD 1024-px release → 256-px tiles with the official splits",
        description="Cut RAW/{train,val,test}/{A,B,label}/*.png into 256-pixel tiles "
        "<name>_<row>_<col>.png with list/{train,val,test}.txt and dataset.json.",
    )
    _common(levir, 256)
    _split_flag(levir)
    levir.set_defaults(func=run_levir)

    whu = subparsers.add_parser(
        "whu",
        help="WHU-CD (split folders or the whole-image release) → 256-px tiles",
        description="Split-folder layout as for levir; or the whole-image release "
        "(before/before.tif, after/after.tif, 'change label/change_label.tif'), cut into "
        "non-overlapping tiles with a spatially blocked train/val/test split (not official; "
        "about 80/10/10 by tiles in blocks of 8x8 tiles).",
    )
    _common(whu, 256)
    _split_flag(whu)
    for name, default in (
        ("before", "before/before.tif"),
        ("after", "after/after.tif"),
        ("label", "change label/change_label.tif"),
    ):
        whu.add_argument(
            f"--{name}", metavar="PATH", help=f"whole image: {name} raster in RAW ({default})"
        )
    whu.add_argument(
        "--val-fraction",
        type=probability,
        default=0.1,
        help="whole image: share of val tiles (0.1)",
    )
    whu.add_argument(
        "--test-fraction",
        type=probability,
        default=0.1,
        help="whole image: share of test tiles (0.1)",
    )
    whu.add_argument(
        "--split-block",
        "--block",
        type=positive_int,
        default=8,
        help="whole image: split block side in tiles (8)",
    )
    whu.add_argument("--ratios", nargs=3, help=argparse.SUPPRESS)  # replaced; see run_whu
    whu.add_argument("--seed", type=int, default=0, help="whole image: seed of the split")
    whu.add_argument(
        "--format", choices=("png", "tif"), default="png", help="tile format (png, as distributed)"
    )
    whu.set_defaults(func=run_whu)

    oscd = subparsers.add_parser(
        "oscd",
        help="OSCD Sentinel-2 release → 13-band change set, or (--pretrain) pretraining set",
        description="Stack OSCD's per-band GeoTIFFs (B01..B12, B8A) onto the 10 m grid; "
        "labels 1/2 become 0/1; list/train.txt and test.txt from the official city lists. "
        "With --pretrain, write instead the pretraining set of all cities into its own "
        "folder: tiles <city>_<row>_<col>, semantic masks of both dates from --masks, one "
        "spatially blocked train/val split over all cities. OSCD pretraining is two "
        "commands: `sdrl prep oscd --src RAW --out data/oscd` and `sdrl prep oscd --src RAW "
        "--out data/oscd_pretrain --pretrain`.",
    )
    _common(oscd, None, "(default: whole images; 128 with --pretrain)")
    oscd.add_argument("--images", metavar="PATH", help="images folder in RAW (auto-detected)")
    oscd.add_argument("--train-labels", metavar="PATH", help="train labels folder in RAW")
    oscd.add_argument("--test-labels", metavar="PATH", help="test labels folder in RAW")
    pre = oscd.add_argument_group("pretraining set (--pretrain)")
    pre.add_argument(
        "--pretrain",
        action="store_true",
        help="write the pretraining set of all cities (semantic masks, no change labels)",
    )
    pre.add_argument(
        "--masks",
        metavar="SOURCE",
        help="kmeans:K (default kmeans:16: spectral regions, one model per city unless "
        "--kmeans-fit joint; the better pretraining on OSCD) or indices (vegetation/water/"
        "built-up, the same ids in every city)",
    )
    pre.add_argument("--stride", type=positive_int, help="step between tiles (default: --tile)")
    pre.add_argument(
        "--without-test-cities",
        action="store_true",
        default=None,
        help="leave out the cities of test.txt (default: every city's images are used)",
    )
    pre.add_argument("--val-fraction", type=probability, help="share of val tiles (0.1)")
    pre.add_argument("--test-fraction", type=probability, help="share of test tiles (0)")
    pre.add_argument("--split-block", type=positive_int, help="split block side in tiles (4)")
    pre.add_argument("--seed", type=int, help="seed of the split and of k-means (0)")
    pre.add_argument(
        "--kmeans-fit",
        choices=("scene", "joint"),
        help="one model per city (scene, default) or one for all",
    )
    pre.add_argument("--kmeans-sample", type=positive_int, help="pixels to fit k-means (100000)")
    pre.add_argument(
        "--workers",
        type=non_negative_int,
        help="processes, one city each, 0 = one per core (1); the output is the same for any N",
    )
    oscd.set_defaults(func=run_oscd)


def run_levir(args: argparse.Namespace) -> int:
    """Run ``sdrl prep levir``."""
    from sdrl.data.prep.levir import prepare_levir  # imported here: `sdrl --help` stays fast

    print(prepare_levir(args.src, args.out, args.tile, args.overwrite, args.split))
    return 0


def run_whu(args: argparse.Namespace) -> int:
    """Run ``sdrl prep whu``."""
    from sdrl.data.prep.whu import prepare_whu  # imported here: `sdrl --help` stays fast

    if args.ratios is not None:
        raise ConfigError(
            "--ratios TRAIN VAL TEST: replaced by --val-fraction VAL --test-fraction TEST "
            "(shares of the tiles; train gets the rest)"
        )
    result = prepare_whu(
        args.src,
        args.out,
        tile=args.tile,
        overwrite=args.overwrite,
        split=args.split,
        before=args.before,
        after=args.after,
        label=args.label,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        split_block=args.split_block,
        seed=args.seed,
        image_format=args.format,
    )
    print(result)
    return 0


_PRETRAIN_ONLY = [
    "masks",
    "stride",
    "without_test_cities",
    "val_fraction",
    "test_fraction",
    "split_block",
    "seed",
    "kmeans_fit",
    "kmeans_sample",
    "workers",
]


def run_oscd(args: argparse.Namespace) -> int:
    """Run ``sdrl prep oscd`` (the change set, or the pretraining set with ``--pretrain``)."""
    given = {key: getattr(args, key) for key in _PRETRAIN_ONLY if getattr(args, key) is not None}
    if args.pretrain:
        from sdrl.data.prep.oscd_pretrain import prepare_oscd_pretrain

        result = prepare_oscd_pretrain(
            args.src,
            args.out,
            tile=args.tile or 128,
            images=args.images,
            train_labels=args.train_labels,
            test_labels=args.test_labels,
            overwrite=args.overwrite,
            **given,
        )
        print(result)
        return 0
    if given:
        flags = ", ".join(f"--{key.replace('_', '-')}" for key in given)
        raise ConfigError(f"{flags}: options of the pretraining set; add --pretrain")
    from sdrl.data.prep.oscd import prepare_oscd  # imported here: `sdrl --help` stays fast

    result = prepare_oscd(
        args.src,
        args.out,
        images=args.images,
        train_labels=args.train_labels,
        test_labels=args.test_labels,
        tile=args.tile,
        overwrite=args.overwrite,
    )
    print(result)
    return 0
