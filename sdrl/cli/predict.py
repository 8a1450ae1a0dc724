"""``sdrl predict``: a georeferenced change map for a before/after pair of any size."""

from __future__ import annotations

import argparse

from sdrl.cli.types import (
    add_inference_flags,
    non_negative_int,
    positive_int,
    probability,
    show_progress,
)
from sdrl.errors import ConfigError


def _outputs(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in str(text).split(",") if v.strip())
    allowed = ("probability", "binary")
    if not names or any(n not in allowed for n in names) or len(set(names)) < len(names):
        raise ConfigError(f"--outputs: expected probability, binary or both, found {text!r}")
    return tuple(n for n in allowed if n in names)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl predict``."""
    parser = subparsers.add_parser(
        "predict",
        help="change map of a before/after raster pair with a finetuned model",
        description=(
            "Predict a change map for two rasters of any size with a checkpoint of sdrl "
            "finetune: windowed reads, overlapping tiles stitched by blending or centre crops, "
            "the checkpoint's normalisation, an output GeoTIFF on the before raster's grid "
            "(CRS and transform kept; nodata 255), written atomically. Memory does not grow "
            "with the raster size."
        ),
    )
    parser.add_argument("--before", required=True, metavar="A.tif", help="date-1 raster")
    parser.add_argument("--after", required=True, metavar="B.tif", help="date-2 raster")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="sdrl finetune ckpt")
    parser.add_argument("--out", required=True, metavar="MAP.tif", help=".tif (or .png binary)")
    parser.add_argument(
        "--tile", type=positive_int, default=512, help="tile size, x32 (default 512)"
    )
    parser.add_argument(
        "--overlap",
        type=non_negative_int,
        help="pixels shared by neighbouring tiles (default min(64, tile/4))",
    )
    parser.add_argument("--stitch", default="blend", choices=("blend", "centre"))
    parser.add_argument(
        "--align", action="store_true", help="reproject the after raster onto the before grid"
    )
    parser.add_argument(
        "--outputs",
        default="probability,binary",
        help="bands: probability, binary or both (default probability,binary)",
    )
    parser.add_argument("--threshold", type=probability, help="binary threshold (default 0.5)")
    add_inference_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Predict and print what was written."""
    from sdrl.predict.from_checkpoint import predict_from_checkpoint

    outputs = _outputs(args.outputs)
    result = predict_from_checkpoint(
        args.checkpoint,
        args.before,
        args.after,
        args.out,
        tile=args.tile,
        overlap=args.overlap if args.overlap is not None else min(64, args.tile // 4),
        batch_size=args.batch_size,
        stitch=args.stitch,
        align=args.align,
        outputs=outputs,
        threshold=args.threshold,
        device=args.device,
        precision=args.precision,
        progress=show_progress(args),
    )
    print(result.summary())
    return 0
