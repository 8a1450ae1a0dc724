"""``sdrl prep pairs``: a tiled dataset folder from one before/after raster pair, or many."""

from __future__ import annotations

import argparse

from sdrl.cli.types import non_negative_int, positive_int, probability
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
        help="tile before/after raster pairs (one, or a collection) with labels or masks",
        description=(
            "Tile a before/after raster pair (--before/--after), or a collection of pairs "
            "(--pairs CSV and/or --before-dir/--after-dir), into one dataset folder with "
            "train/val lists; a collection's tile ids are <scene>_<row>_<col>. Masks come from "
            "labels (raster or GeoJSON) or are computed with --masks: indices (0 other, "
            "1 vegetation, 2 water, 3 built_up from NDVI/NDWI/NDBI) or kmeans:K (clusters "
            "fitted on both dates, ordered dark to bright). Splits are spatial blocks of tiles "
            "(never straddling two scenes); tiles overlapping another split are dropped."
        ),
    )
    io = parser.add_argument_group("inputs and output")
    io.add_argument("--before", metavar="A.tif", help="image at time 1 (one pair)")
    io.add_argument("--after", metavar="B.tif", help="image at time 2 (one pair)")
    io.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    io.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    io.add_argument(
        "--align", action="store_true", help="reproject --after onto --before's grid (bilinear)"
    )
    io.add_argument("--band-names", type=_names, metavar="B02,B03,...", help="name the bands")
    io.add_argument("--nodata", type=float, help="image nodata value (default: the files')")
    io.add_argument("--name", help="tile id prefix (default: --before's file stem)")
    many = parser.add_argument_group("collections of pairs (one dataset folder)")
    many.add_argument(
        "--pairs",
        metavar="FILE.csv",
        help="CSV of pairs: columns before,after[,labels[,labels_after]] (a header line may "
        "name them, and a name column the scenes); paths relative to the CSV",
    )
    many.add_argument("--before-dir", metavar="DIR", help="images at time 1, one per scene")
    many.add_argument(
        "--after-dir", metavar="DIR", help="images at time 2, matched to --before-dir by file stem"
    )
    many.add_argument("--labels-dir", metavar="DIR", help="labels of A per scene, by file stem")
    many.add_argument(
        "--labels-after-dir", metavar="DIR", help="labels of B per scene, by file stem"
    )
    many.add_argument(
        "--workers",
        type=non_negative_int,
        default=1,
        help="processes writing scenes, 0 = one per core (1); the output is the same for any N",
    )
    many.add_argument(
        "--kmeans-fit",
        choices=("scene", "joint"),
        default="scene",
        help="kmeans: a model per scene (default: regions follow each scene's own spectra, "
        "masks do not change when scenes are added, fits run in parallel; cluster ids differ "
        "between scenes, which the losses never compare) or one joint model (ids mean the "
        "same spectra everywhere)",
    )
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
    masks.add_argument(
        "--kmeans-sample",
        type=positive_int,
        default=100_000,
        help="pixels to fit k-means (per scene; in all with --kmeans-fit joint)",
    )
    masks.add_argument("--ndvi-threshold", type=float, default=0.3, help="vegetation above")
    masks.add_argument("--ndwi-threshold", type=float, default=0.0, help="water above")
    masks.add_argument("--ndbi-threshold", type=float, default=0.0, help="built-up above")
    tiles = parser.add_argument_group("tiles and splits")
    tiles.add_argument("--tile", type=positive_int, default=256, help="tile size in pixels (256)")
    tiles.add_argument("--stride", type=positive_int, help="step between tiles (default: --tile)")
    tiles.add_argument("--val-fraction", type=probability, default=0.1, help="share of val tiles")
    tiles.add_argument("--test-fraction", type=probability, default=0.0, help="share of test tiles")
    tiles.add_argument(
        "--split-block", type=positive_int, default=4, help="split block side in tile steps (4)"
    )
    tiles.add_argument("--seed", type=int, default=0, help="seed of the split and of k-means")
    parser.set_defaults(func=run)


_SINGLE = ("before", "after", "labels", "labels_after", "name")


def run(args: argparse.Namespace) -> int:
    """Build the folder and print what was written."""
    many = args.pairs is not None or args.before_dir is not None or args.after_dir is not None
    if not many:
        if args.before is None or args.after is None:
            raise ConfigError(
                "give --before A.tif --after B.tif, or a collection: --pairs FILE.csv and/or "
                "--before-dir DIR --after-dir DIR"
            )
        return _run_pair(args)
    given = [f"--{key.replace('_', '-')}" for key in _SINGLE if getattr(args, key) is not None]
    if given:
        raise ConfigError(
            f"{', '.join(given)}: for one pair; a collection lists its files in --pairs or the "
            "--*-dir folders"
        )
    if (args.before_dir is None) != (args.after_dir is None):
        raise ConfigError("--before-dir and --after-dir go together")
    return _run_collection(args)


def _common(args: argparse.Namespace) -> dict[str, object]:
    keys = (
        "masks kind tile stride align classes label_values ignore_value class_property "
        "all_touched band_names nodata val_fraction test_fraction split_block seed "
        "kmeans_sample ndvi_threshold ndwi_threshold ndbi_threshold overwrite"
    )
    return {key: getattr(args, key) for key in keys.split()}


def _run_pair(args: argparse.Namespace) -> int:
    from sdrl.data.prep.pairs import prepare_pairs

    result = prepare_pairs(
        args.before,
        args.after,
        args.out,
        labels=args.labels,
        labels_after=args.labels_after,
        name=args.name,
        **_common(args),  # type: ignore[arg-type]
    )
    print(result)
    return 0


def _run_collection(args: argparse.Namespace) -> int:
    from sdrl.data.prep.collection import prepare_collection
    from sdrl.data.prep.sources import match_dirs, read_pairs_csv

    scenes = read_pairs_csv(args.pairs) if args.pairs is not None else []
    if args.before_dir is not None:
        scenes += match_dirs(
            args.before_dir, args.after_dir, args.labels_dir, args.labels_after_dir
        )
    elif args.labels_dir is not None or args.labels_after_dir is not None:
        raise ConfigError("--labels-dir and --labels-after-dir go with --before-dir/--after-dir")
    folders = (args.pairs, args.before_dir, args.after_dir, args.labels_dir, args.labels_after_dir)
    inputs = [p for p in folders if p is not None]
    result = prepare_collection(
        scenes,
        args.out,
        workers=args.workers,
        kmeans_fit=args.kmeans_fit,
        inputs=inputs,
        **_common(args),  # type: ignore[arg-type]
    )
    print(result)
    return 0
