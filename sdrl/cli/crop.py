"""``sdrl crop evaluate`` and ``sdrl crop predict`` (``sdrl crop train`` comes from the task)."""

from __future__ import annotations

import argparse
import json

from sdrl.cli.train import command_group
from sdrl.cli.types import add_inference_flags, non_negative_int, show_progress

DECODINGS = ("independent", "consistent")


def _shared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="crop folder (HDF5 patches)")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="sdrl crop train ckpt")
    parser.add_argument("--split", default="test", help="split list (default test)")
    parser.add_argument(
        "--decoding",
        choices=DECODINGS,
        help="independent: each level's argmax; consistent: the best taxonomy path (default: "
        "the checkpoint's)",
    )
    add_inference_flags(parser, unit="patches")
    parser.add_argument(
        "--num-workers", type=non_negative_int, default=0, help="patch reader processes"
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl crop evaluate`` and ``sdrl crop predict``."""
    actions = command_group(subparsers, "crop")
    evaluate = actions.add_parser(
        "evaluate",
        help="per-level metrics of a crop checkpoint on a split (metrics.json)",
        description=(
            "Overall accuracy, mIoU and macro F1 per taxonomy level and averaged, both H2Crop's "
            "way (background included, classes absent from the truth skipped) and without "
            "background (stated in the file), plus the share of pixels whose predicted levels "
            "form a valid taxonomy path."
        ),
    )
    _shared(evaluate)
    evaluate.add_argument("--out", required=True, metavar="JSON", help="metrics file to write")
    evaluate.add_argument(
        "--save-predictions",
        metavar="DIR",
        help="also write <id>.tif (one band per level) and <id>.png (S2 RGB | truth | "
        "prediction per level, with a legend of class names) per patch",
    )
    evaluate.set_defaults(func=run_evaluate)
    predict = actions.add_parser(
        "predict",
        help="per-level class maps and pictures of the patches of a split",
        description="Write <id>.tif (one band of class ids per level) and <id>.png per patch "
        "of the split; labels are not needed.",
    )
    _shared(predict)
    predict.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    predict.set_defaults(func=run_predict)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print the mean scores."""
    from sdrl.data.outputs import check_output
    from sdrl.tasks.crop.outputs import evaluate_crop

    check_output(args.out, [args.data, args.checkpoint], folder=False)
    if args.save_predictions:
        inputs = [args.data, args.checkpoint]
        check_output(args.save_predictions, inputs, folder=True, flag="--save-predictions")
    result = evaluate_crop(
        args.data,
        args.checkpoint,
        args.out,
        split=args.split,
        decoding=args.decoding,
        save_predictions=args.save_predictions,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        num_workers=args.num_workers,
        progress=show_progress(args),
    )
    mean = result["with_background"]["mean"]
    print(
        json.dumps(
            {
                **{k: round(v, 4) for k, v in mean.items()},
                "valid_paths": result["valid_paths"],
                "out": str(args.out),
            }
        )
    )
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Predict every patch of a split."""
    from sdrl.data.outputs import check_output
    from sdrl.tasks.crop.outputs import predict_crop

    check_output(args.out, [args.data, args.checkpoint], folder=True)
    written = predict_crop(
        args.data,
        args.checkpoint,
        args.out,
        split=args.split,
        decoding=args.decoding,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        num_workers=args.num_workers,
        progress=show_progress(args),
    )
    print(f"wrote {len(written)} maps and pictures to {args.out}")
    return 0
