"""Reading weight files: torchvision state dicts, checkpoints and sdrl exports.

Accepted sources (:func:`read_weights`):

* a state dict saved with ``torch.save`` (``.pth``, ``.pt``, ``.ckpt`` or any other name), read
  with ``torch.load(..., map_location="cpu", weights_only=True)``: a file that holds anything
  but tensors and plain Python values (numbers, strings, lists, dicts) is refused with a
  :class:`~sdrl.errors.DataError`, never executed. A state dict nested under ``"state_dict"``
  (Lightning checkpoints), ``"model"`` or ``"model_state_dict"`` is unwrapped;
* an sdrl export folder holding ``weights.safetensors`` and ``meta.json``, or a
  ``.safetensors`` file (its sibling ``meta.json`` is read when it is named
  ``weights.safetensors``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from sdrl.checkpoint import HEADER_KEY, CheckpointHeader
from sdrl.errors import DataError

__all__ = ["META_FILE", "WEIGHTS_FILE", "WeightsFile", "read_weights"]

WEIGHTS_FILE = "weights.safetensors"
"""Name of the tensor file in an sdrl export folder."""
META_FILE = "meta.json"
"""Name of the description file in an sdrl export folder."""
_STATE_DICT = "a state dict (a mapping of parameter names to tensors)"
_NESTED = ("state_dict", "model", "model_state_dict")


@dataclass(frozen=True)
class WeightsFile:
    """The tensors of a weights file; an export's ``meta.json``; an sdrl checkpoint's header."""

    path: Path
    state_dict: dict[str, Tensor]
    meta: dict[str, Any] | None = None
    header: CheckpointHeader | None = None


def read_weights(path: str | Path) -> WeightsFile:
    """Read the tensors of a weights file or export folder (see the module docstring).

    Args:
        path: A ``torch.save`` file, a ``.safetensors`` file, or an export folder.

    Returns:
        The tensors on the CPU, and the parsed ``meta.json`` of an export (else ``None``).

    Raises:
        DataError: If nothing usable is there, the file is unreadable or unsafe, or it holds
            no tensors.
    """
    path = Path(path)
    if path.is_dir():
        file = path / WEIGHTS_FILE
        if not file.is_file():
            raise DataError(
                path,
                f"an sdrl export folder with {WEIGHTS_FILE}",
                "a folder without it",
                "Pass the folder written by `sdrl export` or a weights file",
            )
        return WeightsFile(file, _read_safetensors(file), _read_meta(path / META_FILE))
    if not path.is_file():
        raise DataError(path, "a weights file or an sdrl export folder", "nothing at this path")
    if path.suffix == ".safetensors":
        meta = _read_meta(path.with_name(META_FILE)) if path.name == WEIGHTS_FILE else None
        return WeightsFile(path, _read_safetensors(path), meta)
    tensors, header = _read_torch(path)
    return WeightsFile(path, tensors, header=header)


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:
        raise DataError(path, "a safetensors file", f"unreadable content ({err})") from None


def _read_meta(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, "a JSON object", f"unreadable content ({err})") from None
    if not isinstance(meta, dict):
        raise DataError(path, "a JSON object", f"a JSON {type(meta).__name__}")
    return meta


def _read_torch(path: Path) -> tuple[dict[str, Tensor], CheckpointHeader | None]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if unsafe or "Weights only load failed" in str(err):
            what = unsafe.group(1) if unsafe else "a Python object"
            raise DataError(
                path,
                f"{_STATE_DICT}, loadable with torch.load(weights_only=True)",
                f"{what}, which is refused because loading it could run code",
                "Re-save the weights alone with torch.save(model.state_dict(), path) "
                "in an environment you trust, or use `sdrl export`",
            ) from None
        found = f"unreadable content ({type(err).__name__}: {err})"
        raise DataError(path, "a PyTorch weights file or a .safetensors file", found) from None
    header = None
    if isinstance(obj, Mapping) and isinstance(obj.get(HEADER_KEY), dict):
        # A partial header (hand-made files): the keys are then matched by shape alone.
        with contextlib.suppress(ValueError):
            header = CheckpointHeader.from_dict(obj[HEADER_KEY])
    if isinstance(obj, Mapping):
        for key in _NESTED:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise DataError(path, _STATE_DICT, f"a {type(obj).__name__}")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        keys = ", ".join(map(str, list(obj)[:5])) or "none"
        raise DataError(path, _STATE_DICT, f"a mapping without tensors (keys: {keys})")
    return tensors, header
