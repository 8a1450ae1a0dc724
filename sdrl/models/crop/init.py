"""Initialising the crop classifier's encoders from ``sdrl export`` folders.

* :func:`init_temporal_from_export`: an ``sdrl export --temporal T`` of a Swin (torchvision
  ``swin3d_t`` key names, head excluded) into ``model.temporal``. The export must describe the
  encoder's video Swin exactly (patch, width, depths, heads, window: a ``swin_t`` export fits
  ``size="default"``), and take the model's S2 bands. The window is not adapted: sdrl's
  inflation (:mod:`sdrl.export.inflate`) gives every video Swin an ``8 x k x k`` window from a 2D
  ``k x k`` one, which is the presets' window, and another window's relative-position tables
  would need interpolating, which this refuses rather than guesses.
* :func:`init_spectral_from_export`: a 2D backbone export (``resnet18``, ``swin_t``...) into the
  backbone of a ``spectral_encoder="resnet18"``/``"swin_t"`` model, its first layer re-mapped
  by centre wavelength to the EnMAP bands (:mod:`sdrl.models.band_mapping`).

Both return the names of the model's tensors they set (keys of ``model.state_dict()``) and
change nothing else; a folder that cannot initialise the encoder raises a
:class:`~sdrl.errors.DataError` that names it, what it holds, what is needed and the fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sdrl.bands import Band, lookup_bands, parse_band_spec, preset_bands
from sdrl.errors import ConfigError, DataError
from sdrl.models.crop.config import PRESETS
from sdrl.models.crop.model import CropModel
from sdrl.models.crop.spectral import BackboneSpectral
from sdrl.models.crop.temporal import PATCH, TemporalEncoder
from sdrl.models.weight_files import META_FILE, read_weights
from sdrl.models.weights import load_weights

__all__ = ["init_spectral_from_export", "init_temporal_from_export"]

log = logging.getLogger(__name__)

_SHAPE_KEYS = ("patch_size", "embed_dim", "depths", "num_heads")


def _describe(config: Mapping[str, Any]) -> str:
    """``embed 96, depths [2, 2, 6, 2], heads [3, 6, 12, 24], window [8, 7, 7]`` of a config."""
    return (
        f"embed {config.get('embed_dim')}, depths {config.get('depths')}, heads "
        f"{config.get('num_heads')}, window {config.get('window_size')}"
    )


def _matching_size(config: Mapping[str, Any]) -> str | None:
    """The size preset whose temporal Swin has the export's architecture, if any."""
    for name, sizes in PRESETS.items():
        wanted = {
            "patch_size": list(PATCH),
            "embed_dim": sizes.embed_dim,
            "depths": list(sizes.depths),
            "num_heads": list(sizes.num_heads),
            "window_size": list(sizes.window),
        }
        if all(config.get(key) == value for key, value in wanted.items()):
            return name
    return None


def _even(frames: int) -> int:
    return frames + frames % 2


def _bands_hint(bands: int) -> str:
    if bands == 10:
        return "Export with --bands sentinel2-10 (the crop data's 10 S2 bands)"
    if bands == 13:
        return "Export with --bands sentinel2"
    return f"Export with --bands naming the crop data's {bands} S2 bands"


def _check_temporal(
    folder: Path, meta: Mapping[str, Any], encoder: TemporalEncoder, model: CropModel
) -> None:
    """Raise a DataError unless ``meta`` describes exactly ``encoder``'s video Swin."""
    arch = meta.get("architecture")
    config = meta.get("architecture_config") or {}
    need = encoder.config
    expected = f"a video Swin export for the temporal encoder ({_describe(need)})"
    frames = _even(model.config.months)
    if config.get("family") != "swin":
        raise DataError(
            folder,
            expected,
            f"a {arch} export",
            f"A {arch} export cannot initialise the temporal Swin; export a swin_t checkpoint "
            f"with --temporal {frames}",
        )
    if len(config.get("patch_size") or []) != 3:
        raise DataError(
            folder, expected, f"a 2D {arch} export", f"Export it again with --temporal {frames}"
        )
    if any(config.get(key) != need[key] for key in _SHAPE_KEYS):
        size = _matching_size(config)
        hint = (
            f"Build the crop model with size={size!r}"
            if size is not None
            else "Export a Swin of the encoder's size (size='default' is Swin-T: swin_t)"
        )
        raise DataError(folder, expected, f"{arch} with {_describe(config)}", hint)
    if config.get("window_size") != need["window_size"]:
        raise DataError(
            folder,
            expected,
            f"{arch} with window {config.get('window_size')}",
            "Relative-position tables of another window do not fit; use an export of a Swin "
            f"with a {need['window_size'][1]}x{need['window_size'][2]} window",
        )
    bands = meta.get("in_channels")
    if bands != encoder.in_channels:
        raise DataError(
            folder,
            f"weights for the crop model's {encoder.in_channels} S2 bands",
            f"an export for {bands} bands ({', '.join(map(str, meta.get('bands') or []))})",
            _bands_hint(encoder.in_channels),
        )
    names = [str(b).lower() for b in meta.get("bands") or []]
    if encoder.in_channels == 10 and names != [
        b.name.lower() for b in preset_bands("sentinel2-10")
    ]:
        log.warning(
            "%s: the export's bands are %s; H2Crop's S2 cubes hold sentinel2-10 (B02 ... B12) "
            "in that order: check that the data's band order matches the export's",
            folder,
            ", ".join(names) or "unnamed",
        )


def init_temporal_from_export(model: CropModel, export_dir: str | Path) -> list[str]:
    """Load an ``sdrl export --temporal T`` of a Swin into ``model.temporal`` (module doc).

    Args:
        model: The crop model; only ``model.temporal`` changes.
        export_dir: The export folder (``weights.safetensors`` + ``meta.json``).

    Returns:
        The names of the tensors set, as keys of ``model.state_dict()`` (``temporal.*``):
        every parameter and buffer of the temporal encoder.

    Raises:
        DataError: If the folder is not an export, or holds another architecture, size, window
            or band count than the encoder's, or its tensors do not fit.
    """
    folder = Path(export_dir)
    weights = read_weights(folder)
    if weights.meta is None:
        raise DataError(
            folder / META_FILE,
            "the meta.json of an sdrl export",
            "no such file",
            "Pass a folder written by sdrl export --temporal",
        )
    encoder = model.temporal
    _check_temporal(folder, weights.meta, encoder, model)
    target = encoder.state_dict()
    state = weights.state_dict
    missing = [key for key in target if key not in state]
    extra = [key for key in state if key not in target]
    if missing or extra:
        raise DataError(
            weights.path,
            f"the {len(target)} tensors of the temporal video Swin (swin3d_t names, no head)",
            f"{len(missing)} missing (e.g. {missing[:2]}) and {len(extra)} unknown "
            f"(e.g. {extra[:2]})",
            "Export the checkpoint again with sdrl export --temporal",
        )
    for key, ref in target.items():
        if state[key].shape != ref.shape:
            raise DataError(
                weights.path,
                f"{key} of shape {tuple(ref.shape)}",
                f"shape {tuple(state[key].shape)}",
                "Export the checkpoint again with sdrl export --temporal",
            )
    encoder.load_state_dict({k: state[k].to(ref.dtype) for k, ref in target.items()}, strict=True)
    log.info("%s: loaded %d tensors into the temporal encoder", weights.path, len(target))
    return [f"temporal.{key}" for key in target]


def _resolve_bands(bands: str | Sequence[Band] | Sequence[str]) -> list[Band]:
    if isinstance(bands, str):
        try:
            return parse_band_spec(bands)
        except ValueError as error:
            raise ConfigError(f"bands {bands}: {error}") from None
    items = list(bands)
    if all(isinstance(b, Band) for b in items):
        return [b for b in items if isinstance(b, Band)]
    return lookup_bands([str(b) for b in items])


def _export_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    if not path.is_file():
        raise DataError(path, "the meta.json of an sdrl export", "no such file")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, "a JSON object", f"unreadable content ({error})") from None
    if not isinstance(meta, dict):
        raise DataError(path, "a JSON object", f"a JSON {type(meta).__name__}")
    return meta


def init_spectral_from_export(
    model: CropModel, export_dir: str | Path, bands: str | Sequence[Band] | Sequence[str]
) -> list[str]:
    """Load a 2D backbone export into ``model.spectral``, re-mapped to the EnMAP bands.

    Args:
        model: A crop model whose ``spectral_encoder`` is a backbone (``"resnet18"``,
            ``"swin_t"``...); only its backbone changes.
        export_dir: The export folder; its ``meta.json`` must name its bands with known
            centre wavelengths (sdrl exports do) for the re-mapping.
        bands: The model's EnMAP bands: a ``--bands`` value (``"enmap"`` for H2Crop's 218),
            band names, or :class:`~sdrl.bands.Band` records; as many as ``enmap_bands``.

    Returns:
        The names of the tensors set, as keys of ``model.state_dict()``
        (``spectral.backbone.*``).

    Raises:
        ConfigError: If the model has no backbone EnMAP encoder, or ``bands`` is malformed or
            has another count than the model's EnMAP bands.
        DataError: If the folder is not a 2D export of the encoder's architecture, or its
            tensors do not fit.
    """
    spectral = model.spectral
    if not isinstance(spectral, BackboneSpectral):
        what = "no EnMAP stream" if spectral is None else f"the {model.config.spectral_encoder}"
        raise ConfigError(
            f"the crop model has {what} EnMAP encoder, which no 2D export initialises; build "
            "it with spectral_encoder='resnet18' or 'swin_t'"
        )
    target = _resolve_bands(bands)
    if len(target) != spectral.in_channels:
        raise ConfigError(
            f"bands: {len(target)} bands given for an EnMAP encoder of {spectral.in_channels}"
        )
    folder = Path(export_dir)
    backbone = spectral.backbone
    arch = _export_meta(folder).get("architecture") if folder.is_dir() else None
    if arch is not None and arch != backbone.name:
        hint = (
            f"Build the crop model with spectral_encoder={arch!r}"
            if arch in ("resnet18", "resnet50", "swin_t")
            else f"Export a {backbone.name} checkpoint without --temporal"
        )
        raise DataError(
            folder, f"a 2D {backbone.name} export for the EnMAP encoder", f"a {arch} export", hint
        )
    report = load_weights(
        backbone,
        folder,
        bands=[b.name for b in target],
        wavelengths_nm=[b.nm for b in target],
    )
    return [f"spectral.backbone.{key}" for key in report.loaded]
