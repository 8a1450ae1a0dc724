"""``sdrl prep pairs``: a tiled dataset folder from one before/after raster pair."""

from __future__ import annotations

import argparse

from sdrl.errors import ConfigError


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, found '{text}'")
    return names


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, found '{text}'"
        ) from error


def _optional_number(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a number or none, found '{text}'") from error


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl prep pairs`` on the ``prep`` recipes."""
    parser = subparsers.add_parser(
        "pairs",
        help="tile a before/after raster pair with labels or computed masks",
        description=(
            "Tile a before/after raster pair into a dataset folder with train/val lists. Masks "
            "come from --labels (raster or GeoJSON) or are computed with --masks: indices "
            "(0 other, 1 vegetation, 2 water, 3 built_up from NDVI/NDWI/NDBI) or kmeans:K "
            "(clusters fitted on both dates, ordered dark to bright). Splits are spatial blocks "
            "of tiles; tiles overlapping another split are dropped."
        ),
    )
    io = parser.add_argument_group("inputs and output")
    io.add_argument("--before", required=True, metavar="A.tif", help="image at time 1")
    io.add_argument("--after", required=True, metavar="B.tif", help="image at time 2")
    io.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    io.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    io.add_argument(
        "--align", action="store_true", help="reproject --after onto --before's grid (bilinear)"
    )
    io.add_argument("--band-names", type=_names, metavar="B02,B03,...", help="name the bands")
    io.add_argument("--nodata", type=float, help="image nodata value (default: the files')")
    io.add_argument("--name", help="tile id prefix (default: --before's file stem)")
    masks = parser.add_argument_group("masks")
    masks.add_argument("--labels", metavar="FILE", help="label raster or GeoJSON of A (or change)")
    masks.add_argument("--labels-after", metavar="FILE", help="label raster or GeoJSON of B")
    masks.add_argument("--masks", metavar="SOURCE", help="indices, kmeans or kmeans:K")
    masks.add_argument(
        "--kind",
        choices=("pretrain", "change"),
        default="pretrain",
        help="pretrain: semantic masks; change: --labels are change labels (default pretrain)",
    )
    masks.add_argument("--classes", type=_names, metavar="N0,N1,...", help="label class names")
    masks.add_argument(
        "--label-values", type=_ints, metavar="V0,V1,...", help="raw values of the classes"
    )
    masks.add_argument(
        "--ignore-value",
        type=_optional_number,
        default=255,
        help="raw label value meaning unlabelled, or none (default 255)",
    )
    masks.add_argument("--class-property", help="GeoJSON property holding the class")
    masks.add_argument(
        "--all-touched", action="store_true", help="burn every pixel a polygon touches"
    )
    masks.add_argument("--kmeans-sample", type=int, default=100_000, help="pixels to fit k-means")
    masks.add_argument("--ndvi-threshold", type=float, default=0.3, help="vegetation above")
    masks.add_argument("--ndwi-threshold", type=float, default=0.0, help="water above")
    masks.add_argument("--ndbi-threshold", type=float, default=0.0, help="built-up above")
    tiles = parser.add_argument_group("tiles and splits")
    tiles.add_argument("--tile", type=int, default=256, help="tile size in pixels (256)")
    tiles.add_argument("--stride", type=int, help="step between tiles (default: --tile)")
    tiles.add_argument("--val-fraction", type=float, default=0.1, help="share of val tiles")
    tiles.add_argument("--test-fraction", type=float, default=0.0, help="share of test tiles")
    tiles.add_argument(
        "--split-block", type=int, default=4, help="split block side in tile steps (4)"
    )
    tiles.add_argument("--seed", type=int, default=0, help="seed of the split and of k-means")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the folder and print what was written."""
    from sdrl.data.prep.pairs import prepare_pairs

    if args.tile <= 0 or (args.stride is not None and args.stride <= 0):
        raise ConfigError("--tile and --stride: expected positive pixel counts")
    result = prepare_pairs(
        args.before,
        args.after,
        args.out,
        labels=args.labels,
        labels_after=args.labels_after,
        masks=args.masks,
        kind=args.kind,
        tile=args.tile,
        stride=args.stride,
        align=args.align,
        classes=args.classes,
        label_values=args.label_values,
        ignore_value=args.ignore_value,
        class_property=args.class_property,
        all_touched=args.all_touched,
        band_names=args.band_names,
        nodata=args.nodata,
        name=args.name,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        split_block=args.split_block,
        seed=args.seed,
        kmeans_sample=args.kmeans_sample,
        ndvi_threshold=args.ndvi_threshold,
        ndwi_threshold=args.ndwi_threshold,
        ndbi_threshold=args.ndbi_threshold,
        overwrite=args.overwrite,
    )
    print(result)
    return 0
