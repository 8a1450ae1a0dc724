"""``sdrl predict`` as a library call: a finetuning checkpoint, two rasters, one change map.

:func:`predict_from_checkpoint` checks everything it can before reading a pixel (the output
path, the checkpoint's kind, the band counts, the tile size against the model's stride), then
hands the model and the checkpoint's normalisation to
:func:`~sdrl.predict.engine.predict_change`, which writes the map atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sdrl.data.io import read_info
from sdrl.errors import ConfigError
from sdrl.models.init import tile_multiple
from sdrl.predict.engine import PredictResult, predict_change
from sdrl.predict.inference import resolve_device
from sdrl.predict.model import check_bands, load_change_model
from sdrl.predict.writer import OUTPUTS, check_output_path

__all__ = ["predict_from_checkpoint"]


def predict_from_checkpoint(
    checkpoint: str | Path,
    before: str | Path,
    after: str | Path,
    out: str | Path,
    *,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    stitch: Literal["blend", "centre"] = "blend",
    align: bool = False,
    outputs: Sequence[str] = OUTPUTS,
    threshold: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    progress: bool = True,
) -> PredictResult:
    """Predict a change map with the model of a finetuning checkpoint.

    Args:
        checkpoint: ``RUN/best.ckpt`` of ``sdrl finetune``.
        before: Date-1 raster; the map gets its grid, CRS and transform.
        after: Date-2 raster (same grid unless ``align``).
        out: Output ``.tif`` (``.png``: binary map only, no georeferencing).
        tile: Tile size, a multiple of the model's stride (32 for backbones).
        overlap: Pixels shared by neighbouring tiles.
        batch_size: Tiles per forward pass.
        stitch: ``blend`` or ``centre``.
        align: Reproject ``after`` onto ``before``'s grid when they differ.
        outputs: ``probability`` and/or ``binary``.
        threshold: Binary threshold; the checkpoint's (0.5) when ``None``.
        device: ``auto`` (GPU when available), ``cpu``, ``cuda``...
        precision: ``auto`` (bf16 autocast on a GPU that supports it, else 16; 32 on CPU),
            ``32``, ``bf16`` or ``16`` (:mod:`sdrl.predict.inference`).
        progress: Progress bar over tiles (on a terminal).

    Raises:
        DataError: Unwritable output, a checkpoint that is not a change model (a pretraining
            checkpoint: "finetune it first"), rasters whose band count differs from the
            model's or from each other, grids that differ without ``align``.
        ConfigError: A tile that is not a multiple of the model's stride, bad options
            (an unknown precision, bf16 on a GPU without bfloat16).
    """
    out = Path(out)
    try:
        check_output_path(out, outputs, inputs=(Path(before), Path(after), Path(checkpoint)))
    except ValueError as error:
        raise ConfigError(f"--outputs: {error}") from None
    loaded = load_change_model(checkpoint)
    for raster in (before, after):
        check_bands(
            loaded.header,
            read_info(raster).count,
            raster,
            "Pass rasters with the bands the model was finetuned on (checkpoint "
            f"{Path(checkpoint).name}: {loaded.in_channels} bands)",
        )
    multiple = tile_multiple(loaded.model)
    if tile < multiple or tile % multiple:
        raise ConfigError(
            f"--tile: expected a multiple of {multiple} (the model's stride), found {tile}"
        )
    try:
        return predict_change(
            loaded.model,
            before,
            after,
            out,
            mean=loaded.mean,
            std=loaded.std,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            stitch=stitch,
            align=align,
            outputs=outputs,
            threshold=loaded.threshold if threshold is None else threshold,
            device=resolve_device(device),
            precision=precision,
            progress=progress,
        )
    except ValueError as error:  # the engine's checks of tile/overlap/stitch/threshold/precision
        raise ConfigError(str(error)) from None
