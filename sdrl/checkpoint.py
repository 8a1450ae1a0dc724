"""⚑ The checkpoint header: what every consumer of an sdrl checkpoint reads, without Lightning.

Every checkpoint a training run writes carries one :class:`CheckpointHeader` under
``checkpoint["sdrl"]`` (plain data: the file is read with ``weights_only=True``). Evaluation,
prediction, ``--init``/``--weights`` loading and export read only the header and the
``state_dict``; the training state of exact resume (RNG states, counters) sits apart, under
``checkpoint["sdrl_state"]``. Like timm's ``PretrainedCfg``, the header describes the weights:
the network to build, its input (bands, wavelengths, normalisation, tile multiple) and its
outputs (classes), the method that trained it and the data it saw.

The header is stored flat: the typed fields below, then the task's own fields (``extra``,
documented by each task, e.g. ``threshold`` and ``label_values`` of change detection).
``schema_version`` changes when a field changes meaning; a reader refuses a newer schema
with a clear error. Checkpoints of sdrl 0.1 (no ``schema_version``) are read as schema 0.

Nothing here imports Lightning, so that ``sdrl.predict``, ``sdrl.evaluation`` and export stay
light::

    from sdrl.checkpoint import read_header
    header = read_header("runs/cd/best.ckpt", kinds=("change",))
    print(header.backbone, header.in_channels, header.bands, header.mean)
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sdrl import __version__
from sdrl.errors import DataError, one_line

__all__ = [
    "HEADER_KEY",
    "KINDS",
    "SCHEMA_VERSION",
    "STATE_KEY",
    "CheckpointHeader",
    "file_sha256",
    "header_kind",
    "read_checkpoint",
    "read_header",
]

SCHEMA_VERSION = 1
"""Version of the header's fields; a newer one is refused by this sdrl."""

KINDS = ("pretrain", "change", "crop")
"""The kinds of run that write checkpoints."""

HEADER_KEY = "sdrl"
"""Where the header sits in a checkpoint."""

STATE_KEY = "sdrl_state"
"""Where the training state of exact resume sits (RNG states, counters): not for consumers."""

COMMANDS = {"pretrain": "sdrl pretrain", "change": "sdrl finetune", "crop": "sdrl crop train"}
"""The command that writes each kind, for messages."""

KIND_NAMES = {
    "pretrain": "pretraining",
    "change": "change-detection",
    "crop": "crop-classification",
}
"""Each kind in words, for messages."""


@dataclass(frozen=True)
class CheckpointHeader:
    """The description of the weights in an sdrl checkpoint.

    Attributes:
        kind: ``pretrain``, ``change`` or ``crop``.
        backbone: Registered backbone name (``resnet18``, ``swin_t``...), ``None`` for a model
            without one (the early-fusion U-Net).
        backbone_options: Keyword options the backbone was built with.
        in_channels: Bands ``C`` of the input (of each date).
        bands: Band names, ``C`` of them.
        wavelengths_nm: Centre wavelength of each band in nm where known (``None`` entries or
            ``None`` for the whole list where not).
        mean: ``(C,)`` normalisation mean: the model sees ``(x - mean) / std``.
        std: ``(C,)`` normalisation standard deviation.
        classes: Class names of the labels it was trained on (semantic classes of the masks
            for pretraining, ``["unchanged", "changed"]`` for change detection).
        method: Pretraining method (``sdrl``, ``detcon``...) for pretraining checkpoints.
        method_options: The method's keyword options.
        model: Task model name (``siamese``, ``unet``), ``None`` for pretraining.
        model_options: The task model's keyword options.
        data: Provenance: the dataset folder the run trained on.
        tile_multiple: Input sides must be multiples of it (32 for the backbones).
        version: sdrl version that wrote the checkpoint.
        schema_version: Version of these fields (:data:`SCHEMA_VERSION`).
        extra: The task's own fields (flat in the stored dict).
    """

    kind: str
    backbone: str | None
    in_channels: int
    bands: list[str]
    mean: list[float]
    std: list[float]
    classes: list[str] = field(default_factory=list)
    wavelengths_nm: list[float | None] | None = None
    backbone_options: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    method_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    tile_multiple: int = 32
    version: str = __version__
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, found {self.kind!r}")
        clash = set(self.extra) & _FIELDS
        if clash:
            raise ValueError(f"extra fields {sorted(clash)} shadow header fields")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``checkpoint["sdrl"]``: the fields, then ``extra`` flattened."""
        out = {f: _plain(getattr(self, f)) for f in _FIELD_ORDER}
        out.update({k: _plain(v) for k, v in self.extra.items()})
        return out

    @classmethod
    def from_dict(cls, block: dict[str, Any]) -> CheckpointHeader:
        """Read a stored header (schema 0 from sdrl 0.1, or the current schema).

        Raises:
            ValueError: A newer schema, or a missing or ill-typed field.
        """
        block = dict(block)
        version = int(block.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"header schema {version}, newer than this sdrl's {SCHEMA_VERSION} "
                f"(written by sdrl {block.get('version', '?')}); upgrade sdrl"
            )
        if version == 0:  # sdrl 0.1: no kind on the oldest pretraining checkpoints
            block["kind"] = header_kind(block)
            block.pop("rng", None)
            block.pop("skipped_total", None)
        values = {k: block.pop(k) for k in list(block) if k in _FIELDS}
        values["schema_version"] = version
        try:
            header = cls(**values, extra=block)
            int(header.in_channels)
        except (TypeError, ValueError) as error:
            raise ValueError(f"an incomplete header ({error})") from None
        return header

    def replace(self, **changes: Any) -> CheckpointHeader:
        """A copy with ``changes`` (fields, or ``extra`` keys)."""
        extra = dict(self.extra)
        for key in [k for k in changes if k not in _FIELDS]:
            extra[key] = changes.pop(key)
        return dataclasses.replace(self, **changes, extra=extra)


_FIELD_ORDER = [f.name for f in dataclasses.fields(CheckpointHeader) if f.name != "extra"]
_FIELDS = set(_FIELD_ORDER) | {"extra"}


def _plain(value: Any) -> Any:
    """Tuples become lists (checkpoints hold plain containers)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def read_checkpoint(
    path: str | Path, map_location: Any = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint without executing code (``weights_only=True``).

    Args:
        path: The checkpoint file.
        map_location: Where tensors go (``torch.load``'s argument).
        mmap: Memory-map the file: tensors are read only when used.

    Raises:
        DataError: The file is missing, truncated, or holds objects other than plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "a checkpoint file", "nothing at this path")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch raises many types for a bad file
        raise DataError(
            path, "a checkpoint of plain tensors and containers", _load_problem(error)
        ) from error
    if not isinstance(checkpoint, dict):
        raise DataError(path, "a checkpoint dict", f"a {type(checkpoint).__name__}")
    return checkpoint


def _load_problem(error: Exception) -> str:
    """One line for ``torch.load``'s (often many-line) refusal of a file."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    unpickler = re.search(r"WeightsUnpickler error:(.*?)(Check the documentation|$)", text, re.S)
    if unpickler is not None:
        detail = " ".join(unpickler.group(1).split())
        if detail.startswith("Unsupported global"):
            name = detail.split(" was not an allowed")[0].removeprefix("Unsupported global: ")
            return (
                f"unreadable as plain data: it holds objects ({name}) whose loading could run "
                "code, and sdrl loads no code from checkpoints"
            )
        return f"unreadable, not a checkpoint of plain data ({one_line(detail)})"
    return f"unreadable ({one_line(text) or type(error).__name__})"


def header_kind(block: dict[str, Any]) -> str | None:
    """The kind of a stored header (``None`` when it does not say).

    Its ``kind``, or ``pretrain`` for an sdrl 0.1 pretraining header (no ``kind``, a ``method``).
    """
    kind = block.get("kind")
    if kind is None and "method" in block:
        return "pretrain"
    return str(kind) if kind is not None else None


def read_header(
    source: str | Path | dict[str, Any],
    kinds: Sequence[str] = KINDS,
    path: str | Path | None = None,
) -> CheckpointHeader:
    """The header of a checkpoint, checked to be of one of ``kinds``.

    Args:
        source: A checkpoint file (memory-mapped: tensors are not read) or a loaded checkpoint.
        kinds: The kinds the caller accepts.
        path: The file, for messages, when ``source`` is a loaded checkpoint.

    Raises:
        DataError: No header (not an sdrl checkpoint), a newer or broken header, or a kind
            not in ``kinds`` (the message names the kind found and what to do).
    """
    if isinstance(source, dict):
        checkpoint, where = source, Path(path or "<checkpoint>")
    else:
        checkpoint, where = read_checkpoint(source, mmap=True), Path(source)
    wanted = " or ".join(f"{KIND_NAMES[k]} checkpoint (from {COMMANDS[k]})" for k in kinds)
    block = checkpoint.get(HEADER_KEY)
    if not isinstance(block, dict):
        raise DataError(
            where,
            f"a {wanted} with its 'sdrl' header",
            "a checkpoint without one (not written by sdrl)",
        )
    kind = header_kind(block)
    if kind not in kinds:
        found = f"a {KIND_NAMES.get(kind, kind)} checkpoint" if kind else "an unknown kind"
        if block.get("method"):
            found += f" ({block.get('method')} on {block.get('data')})"
        hint = ""
        if kind == "pretrain" and "change" in kinds:
            hint = (
                f"This is a pretraining checkpoint; finetune it first: sdrl finetune --data DIR "
                f"--init {where} --out RUN, then use RUN/best.ckpt"
            )
        raise DataError(where, f"a {wanted}", found, hint)
    try:
        header = CheckpointHeader.from_dict(block)
    except ValueError as error:
        expected = f"an sdrl checkpoint header (schema <= {SCHEMA_VERSION})"
        raise DataError(where, expected, str(error)) from None
    return header


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()
