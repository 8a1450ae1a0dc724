"""``sdrl evaluate``: change metrics of a finetuned model on a split, written to metrics.json."""

from __future__ import annotations

import argparse
import json

from sdrl.cli.types import (
    add_inference_flags,
    non_negative_int,
    positive_int,
    probability,
    show_progress,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics of a finetuned change model on a split (metrics.json)",
        description=(
            "Evaluate a checkpoint of sdrl finetune on a split of a change dataset folder. "
            "The metrics of the change class (precision, recall, f1, iou, oa, kappa, tp, fp, "
            "fn, tn) come from one confusion matrix over every pixel of the split; ignore "
            "labels and nodata pixels are left out. The protocol is written into the JSON: "
            "'whole' predicts each image whole by overlapping sliding windows (as sdrl "
            "predict), 'crops' runs fixed non-overlapping crops (the stored tiles, or --tile)."
        ),
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="change dataset folder")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="sdrl finetune ckpt")
    parser.add_argument("--out", required=True, metavar="JSON", help="metrics file to write")
    parser.add_argument("--split", default="test", help="split list (default test; or all)")
    parser.add_argument("--protocol", default="whole", choices=("whole", "crops"))
    parser.add_argument(
        "--tile",
        type=positive_int,
        help="window (whole, default 512) or crop size (crops: stored tiles)",
    )
    parser.add_argument(
        "--overlap", type=non_negative_int, help="window overlap of whole (default min(64, tile/4))"
    )
    parser.add_argument("--stitch", choices=("blend", "centre"), help="whole: (default blend)")
    parser.add_argument("--threshold", type=probability, help="change probability (default 0.5)")
    parser.add_argument(
        "--save-predictions",
        metavar="DIR",
        help="write each image's map (<id>.tif georeferenced 0/1, else <id>.png 0/255) and "
        "<id>_compare.png: before | after | truth | prediction (TP white, FP red, FN blue, "
        "ignore grey)",
    )
    add_inference_flags(parser)
    parser.add_argument(
        "--num-workers", type=non_negative_int, default=0, help="image reader processes"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the main metrics."""
    from sdrl.evaluation import evaluate

    result = evaluate(
        args.data,
        args.checkpoint,
        args.out,
        split=args.split,
        protocol=args.protocol,
        tile=args.tile,
        overlap=args.overlap,
        stitch=args.stitch,
        threshold=args.threshold,
        batch_size=args.batch_size,
        save_predictions=args.save_predictions,
        device=args.device,
        precision=args.precision,
        num_workers=args.num_workers,
        progress=show_progress(args),
    )
    keys = ("precision", "recall", "f1", "iou", "oa", "kappa")
    text = json.dumps({k: round(float(result[k]), 4) for k in keys})
    where = f"{result['tiles']} tiles, {result['protocol']['name']}"
    print(f"{args.split} ({where}): {text} -> {args.out}")
    return 0
