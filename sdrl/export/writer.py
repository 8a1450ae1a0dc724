"""``export_backbone``: an sdrl checkpoint's backbone → the ⚑ export folder.

::

    OUT/weights.safetensors   the backbone with torchvision's key names, classifier excluded
    OUT/meta.json             architecture, bands, wavelengths, normalisation, provenance

The weights load with ``strict=True`` into the torchvision model ``meta.json`` names
(:mod:`sdrl.export.torchvision_models`); the writer checks that before it commits. Options:

* ``bands``: re-map the first layer to another band set by centre wavelength
  (:mod:`sdrl.models.band_mapping`, tables in :mod:`sdrl.bands`); ``meta.json`` then records
  the source bands, the rule per band and the factor, and leaves ``mean``/``std`` empty: the
  new bands are normalised with their own statistics;
* ``temporal``: inflate a Swin into torchvision's video Swin (:mod:`sdrl.export.inflate`).

The folder is built under a hidden name and renamed when complete
(:func:`~sdrl.data.staging.staged_dir`): a failed export leaves nothing at ``out``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor

from sdrl import __version__
from sdrl.bands import Band, parse_band_spec
from sdrl.data.outputs import check_output
from sdrl.data.staging import staged_dir, write_json_atomic
from sdrl.errors import ConfigError, DataError
from sdrl.export.inflate import (
    TEMPORAL_PATCH,
    build_swin3d,
    inflate_swin,
    pads_in_time,
    swin3d_config,
)
from sdrl.export.source import SourceBackbone, read_backbone
from sdrl.export.torchvision_models import architecture_config, torchvision_model
from sdrl.models.band_mapping import remap_input_conv
from sdrl.models.swin import SwinBackbone
from sdrl.models.weight_files import META_FILE, WEIGHTS_FILE

__all__ = ["FORMAT_VERSION", "ExportResult", "export_backbone"]

log = logging.getLogger(__name__)


FORMAT_VERSION = 1
"""Version of the export folder's layout and ``meta.json`` fields."""

_TORCHVISION = {
    "resnet18": "torchvision.models.resnet18",
    "resnet50": "torchvision.models.resnet50",
    "swin_t": "torchvision.models.swin_t",
    "swin3d_t": "torchvision.models.video.swin3d_t",
}


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_backbone` wrote.

    Attributes:
        out: The export folder.
        meta: The contents of its ``meta.json``.
    """

    out: Path
    meta: dict[str, Any]

    @property
    def weights(self) -> Path:
        """The ``weights.safetensors`` file."""
        return self.out / WEIGHTS_FILE


def _target_bands(bands: str | Sequence[Band] | None) -> list[Band] | None:
    if bands is None:
        return None
    if not isinstance(bands, str):
        return list(bands)
    try:
        return parse_band_spec(bands)
    except ValueError as error:
        raise ConfigError(f"--bands {bands}: {error}") from None


def _check_temporal(temporal: int | None) -> None:
    if temporal is None:
        return
    if isinstance(temporal, bool) or not isinstance(temporal, int) or temporal < TEMPORAL_PATCH:
        raise ConfigError(f"--temporal {temporal}: expected a number of frames >= 2")
    if temporal % TEMPORAL_PATCH:
        raise ConfigError(
            f"--temporal {temporal}: expected an even number of frames (the video Swin "
            f"embeds patches of {TEMPORAL_PATCH} frames)"
        )
    if pads_in_time(temporal):
        log.warning(
            "--temporal %d: clips of %d frames are padded in time by the video Swin (windows "
            "of 16 frames); identical frames then give the 2D features only approximately",
            temporal,
            temporal,
        )


def export_backbone(
    checkpoint: str | Path,
    out: str | Path,
    *,
    bands: str | Sequence[Band] | None = None,
    temporal: int | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export the backbone of a pretraining or finetuning checkpoint (module docstring).

    Args:
        checkpoint: An sdrl checkpoint (``sdrl pretrain`` or ``sdrl finetune``).
        out: The export folder to write.
        bands: Re-map the first layer to these bands: a ``--bands`` value (a preset such as
            ``sentinel2``, band names, or centre wavelengths in nm; see
            :func:`~sdrl.bands.parse_band_spec`) or a list of :class:`~sdrl.bands.Band`.
        temporal: Inflate a Swin into a video Swin for clips of this many frames (even).
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        Where the folder is and its ``meta.json``.

    Raises:
        ConfigError: A malformed ``bands`` or ``temporal``.
        DataError: The checkpoint is missing, truncated or not sdrl's, ``temporal`` is given
            for a ResNet, the checkpoint's bands have no known wavelengths to re-map, or
            ``out`` exists and ``overwrite`` is false.
    """
    target = _target_bands(bands)
    _check_temporal(temporal)
    check_output(out, [checkpoint], folder=True, flag="--out", noun="export folder")
    with staged_dir(out, overwrite=overwrite) as staging:
        source = read_backbone(checkpoint)
        if temporal is not None and not isinstance(source.backbone, SwinBackbone):
            raise DataError(
                source.path,
                "a Swin checkpoint (swin_t) for --temporal",
                f"a {source.header.backbone} backbone",
                "Export it without --temporal, or pretrain with --backbone swin_t",
            )
        state = dict(source.backbone.torchvision_state_dict())
        mapping = None
        if target is not None and _band_keys(target) == _band_keys(source.bands):
            target = None  # the checkpoint's own bands: nothing to re-map
        if target is not None:
            state, mapping = _remap(source, state, target)
        meta = _meta(source, target, mapping, temporal)
        if temporal is not None:
            model3d = build_swin3d(meta["architecture_config"], meta["in_channels"])
            state = inflate_swin(state, model3d)
        _check_loads(meta, state, source.path)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        write_json_atomic(staging / META_FILE, meta)
    return ExportResult(Path(out), meta)


def _band_keys(bands: Sequence[Band]) -> list[tuple[str, float | None]]:
    return [(b.name.lower(), b.nm) for b in bands]


def _remap(
    source: SourceBackbone, state: dict[str, Tensor], target: list[Band]
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The state with its first layer re-mapped to ``target``, and the record for meta.json."""
    if not any(b.nm is not None for b in source.bands):
        names = ", ".join(b.name for b in source.bands)
        raise DataError(
            source.path,
            "a checkpoint whose bands have known centre wavelengths, to re-map them",
            f"bands {names} with none known",
            "Name the bands as a sensor table does (B02, red...) or record wavelengths_nm in "
            "the dataset.json the run trained on",
        )
    key = source.backbone.first_conv
    kernel, mapping = remap_input_conv(state[key], source.bands, target)
    record = {
        "source_bands": [b.name for b in source.bands],
        "source_wavelengths_nm": [b.nm for b in source.bands],
        "factor": mapping.factor,
        "rule": "same band (common name or name), else nearest centre wavelength or linear "
        "interpolation between the two nearest, else the mean kernel; times factor = "
        "source bands / target bands (sdrl.models.band_mapping)",
        "bands": mapping.describe(source.bands, target),
    }
    return {**state, key: kernel}, record


def _meta(
    source: SourceBackbone,
    target: list[Band] | None,
    mapping: dict[str, Any] | None,
    temporal: int | None,
) -> dict[str, Any]:
    header = source.header
    bands = target if target is not None else source.bands
    config = architecture_config(source.backbone)
    arch = str(header.backbone)
    first, classifier = source.backbone.first_conv, source.backbone.head_prefix.rstrip(".")
    temporal_record = None
    if temporal is not None:
        config = {"family": "swin", **swin3d_config(config)}
        arch = "swin3d_t" if arch == "swin_t" else f"{arch}_3d"
        first = "patch_embed.proj.weight"
        temporal_record = {
            "frames": temporal,
            "patch_size": config["patch_size"],
            "window_size": config["window_size"],
            "from": str(header.backbone),
            "rule": "patch embedding repeated over the temporal patch and divided by it; "
            "relative-position bias tables repeated over temporal offsets; index buffers of "
            "the 3D model; other tensors by name (sdrl.export.inflate)",
        }
    same_bands = mapping is None
    return {
        "format": "sdrl-export",
        "format_version": FORMAT_VERSION,
        "architecture": arch,
        "torchvision": _TORCHVISION.get(arch),
        "architecture_config": config,
        "backbone_options": dict(header.backbone_options),
        "first_layer": first,
        "classifier": classifier,
        "in_channels": len(bands),
        "bands": [b.name for b in bands],
        "wavelengths_nm": [b.nm for b in bands],
        "mean": list(header.mean) if same_bands and header.mean else None,
        "std": list(header.std) if same_bands and header.std else None,
        "normalisation": "(x - mean) / std per band"
        if same_bands
        else "re-mapped bands: normalise each band with your data's own mean and std",
        "band_mapping": mapping,
        "temporal": temporal_record,
        "tile_multiple": header.tile_multiple,
        "kind": header.kind,
        "method": header.method,
        "method_options": dict(header.method_options),
        "model": header.model,
        "classes": list(header.classes),
        "data": header.data,
        "source_checkpoint": {
            "path": str(source.path.resolve()),
            "sha256": source.sha256,
            "sdrl_version": header.version,
        },
        "sdrl_version": __version__,
    }


def _check_loads(meta: dict[str, Any], state: dict[str, Tensor], path: Path) -> None:
    """Load ``state`` strictly into the torchvision model of ``meta`` (where there is one)."""
    if meta["architecture_config"]["family"] != "swin" and meta["torchvision"] is None:
        return  # test-size ResNets: sdrl's backbone loaded them strictly already
    model = torchvision_model(meta, path)
    model.load_state_dict(state, strict=True)
