"""``sdrl export``: a checkpoint's backbone as torchvision weights (safetensors + meta.json)."""

from __future__ import annotations

import argparse

from sdrl.bands import PRESETS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sdrl export``."""
    parser = subparsers.add_parser(
        "export",
        help="backbone weights for torchvision and other sensors (safetensors + meta.json)",
        description=(
            "Export the backbone of an sdrl pretrain or sdrl finetune checkpoint: "
            "DIR/weights.safetensors (torchvision's key names, classifier excluded; loads with "
            "strict=True into the torchvision model once its classifier is nn.Identity() and "
            "its first layer takes the export's bands) and DIR/meta.json (architecture, bands, "
            "wavelengths, normalisation, provenance). --bands re-maps the first layer to "
            "another sensor by centre wavelength; --temporal inflates a Swin-T into "
            "torchvision's video Swin (swin3d_t)."
        ),
    )
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="sdrl checkpoint")
    parser.add_argument("--out", required=True, metavar="DIR", help="export folder to write")
    parser.add_argument(
        "--bands",
        metavar="SENSOR|NAMES|NM",
        help=f"re-map the first layer to these bands: a preset ({', '.join(PRESETS)}), or "
        "comma-separated band names (B02,B03,B04,B08; landsat8:B5; red,nir), centre "
        "wavelengths in nm (490,560,665) or NAME=NM",
    )
    parser.add_argument(
        "--temporal",
        type=int,
        metavar="T",
        help="Swin-T only: inflate to torchvision's swin3d_t for clips of T frames (even)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace DIR if it exists and is not empty"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export and print what was written."""
    from sdrl.export import export_backbone

    result = export_backbone(
        args.checkpoint,
        args.out,
        bands=args.bands,
        temporal=args.temporal,
        overwrite=args.overwrite,
    )
    meta = result.meta
    names = meta["bands"]
    shown = ", ".join(names[:6]) + (f", ... ({len(names)})" if len(names) > 6 else "")
    target = meta["torchvision"] or f"sdrl {meta['architecture']}"
    print(f"{meta['architecture']} ({shown}) -> {result.out} (loads into {target})")
    return 0
