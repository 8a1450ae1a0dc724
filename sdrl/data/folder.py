"""The ⚑ dataset folder: layout, ``dataset.json`` metadata, split lists and file lookup.

::

    DIR/A/<id>.<tif|png>        image at time 1, C×H×W
    DIR/B/<id>.<tif|png>        image at time 2 (same grid)
    DIR/label/<id>.<tif|png>    change mask (change datasets) or semantic mask of A (pretrain)
    DIR/label_B/<id>...         optional semantic mask of B
    DIR/list/{train,val,test}.txt   one <id> per line
    DIR/dataset.json            see :class:`DatasetMeta`

This is the layout of LEVIR-CD, WHU-CD, BIT, ChangeFormer and SaDL, so their folders load as
distributed. Split lists may hold ids with or without extension (BIT writes ``train_1.png``).
Without ``list/``, ids named ``train_*``/``val_*``/``test_*`` (LEVIR-CD 256 tiles) give the
splits; split ``all`` is every image in ``A/``.

Ids are held in one NumPy byte-string array (:class:`TileIds`), so an index of millions of
tiles costs tens of MB, holds no Python object per tile and stays shared copy-on-write with
data-loader workers; files are only opened when a sample is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from sdrl import __version__
from sdrl.errors import DataError

__all__ = [
    "META_FILE",
    "SUBFOLDERS",
    "DatasetFolder",
    "DatasetMeta",
    "Kind",
    "TileIds",
    "write_split",
]

Kind = Literal["change", "pretrain", "crop"]
META_FILE = "dataset.json"
SUBFOLDERS = ("A", "B", "label", "label_B")
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
_SPLIT_PREFIXES = ("train", "val", "test")


@dataclass
class DatasetMeta:
    """Contents of ``dataset.json``.

    Attributes:
        kind: ``change`` (label = change mask), ``pretrain`` (label = semantic mask) or ``crop``.
        bands: One name per image band (Sentinel-2 ``B02``..., or ``red``/``green``/``blue``).
        mean: Per-band mean of the raw pixel values, used for normalisation.
        std: Per-band standard deviation of the raw pixel values.
        classes: Class names, index = class id (``["unchanged", "changed"]`` for change).
        label_values: Raw label value → class id, for encodings like LEVIR's 0/255;
            ``None`` means raw values are class ids.
        ignore_index: Raw label value that means "not labelled", or ``None``.
        gsd: Ground sampling distance in metres, if known.
        crs: CRS of the rasters (``"EPSG:32633"``...), if georeferenced.
        provenance: Free-form record of where the data came from and how it was made.
        version: sdrl version that wrote the file.
    """

    kind: Kind
    bands: list[str]
    mean: list[float] | None = None
    std: list[float] | None = None
    classes: list[str] = field(default_factory=list)
    label_values: dict[int, int] | None = None
    ignore_index: int | None = None
    gsd: float | None = None
    crs: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    version: str = __version__

    def __post_init__(self) -> None:
        if self.kind not in ("change", "pretrain", "crop"):
            raise ValueError(f"kind must be change, pretrain or crop, got {self.kind!r}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.bands):
                raise ValueError(f"{len(values)} {name} values for {len(self.bands)} bands")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    @property
    def num_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.classes)

    @classmethod
    def load(cls, path: str | Path) -> DatasetMeta:
        """Read and validate a ``dataset.json``.

        Raises:
            DataError: The file is not valid JSON or misses/mistypes a field.
        """
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(path, "a JSON object", f"'{error}'") from error
        if not isinstance(raw, dict):
            raise DataError(path, "a JSON object", type(raw).__name__)
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DataError(path, f"only the keys {sorted(known)}", f"unknown keys {unknown}")
        for key in ("kind", "bands"):
            if key not in raw:
                raise DataError(path, f'a "{key}" entry', "none")
        for key, value in raw.items():
            _check_field(path, key, value)
        if raw.get("label_values") is not None:
            raw["label_values"] = {int(k): int(v) for k, v in raw["label_values"].items()}
        try:
            return cls(**raw)
        except (TypeError, ValueError) as error:
            raise DataError(path, "a valid dataset description", str(error)) from error

    def save(self, path: str | Path) -> None:
        """Write atomically as indented JSON."""
        path = Path(path)
        data = asdict(self)
        if self.label_values is not None:
            data["label_values"] = {str(k): v for k, v in self.label_values.items()}
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    """An int, or a text holding one (JSON object keys are always texts)."""
    if isinstance(value, str):
        return value.strip().lstrip("-").isdigit()
    return isinstance(value, int) and not isinstance(value, bool)


def _label_value(raw: Any, class_id: Any) -> bool:
    return _is_integer(raw) and 0 <= int(raw) <= 65535 and _is_integer(class_id)


_FIELD_TYPES: dict[str, tuple[str, Any]] = {
    "kind": ("a text: change, pretrain or crop", lambda v: isinstance(v, str)),
    "bands": (
        "a list of band names",
        lambda v: isinstance(v, list) and all(isinstance(b, str) for b in v),
    ),
    "mean": (
        "a list of numbers or null",
        lambda v: isinstance(v, list) and all(map(_is_number, v)),
    ),
    "std": ("a list of numbers or null", lambda v: isinstance(v, list) and all(map(_is_number, v))),
    "classes": (
        "a list of class names",
        lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
    ),
    "label_values": (
        'a mapping of raw value (0..65535) to class id ({"0": 0, "255": 1}) or null',
        lambda v: isinstance(v, dict) and all(_label_value(k, c) for k, c in v.items()),
    ),
    "ignore_index": (
        "an integer in 0..65535 or null",
        lambda v: _is_integer(v) and not isinstance(v, str) and 0 <= v <= 65535,
    ),
    "gsd": ("a number of metres or null", _is_number),
    "crs": ('a text like "EPSG:32633" or null', lambda v: isinstance(v, str)),
    "provenance": ("a mapping", lambda v: isinstance(v, dict)),
    "version": ("a text", lambda v: isinstance(v, str)),
}
"""What each ``dataset.json`` entry holds, and its test (``null`` passes where it may)."""

_NOT_NULL = ("kind", "bands", "classes", "provenance", "version")


def _check_field(path: Path, key: str, value: Any) -> None:
    """Raise a :class:`DataError` naming the entry when ``value`` has the wrong type."""
    expected, test = _FIELD_TYPES[key]
    if value is None and key not in _NOT_NULL:
        return
    if value is None or not test(value):
        shown = json.dumps(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise DataError(path, f'"{key}" as {expected}', shown, f"Fix or delete {path.name}")


class TileIds:
    """A compact, read-only sequence of tile ids (UTF-8 bytes in one NumPy array).

    Args:
        ids: The ids, as strings or as an existing ``S`` array.
    """

    def __init__(self, ids: Iterable[str] | np.ndarray) -> None:
        if isinstance(ids, np.ndarray) and ids.dtype.kind == "S":
            self._data = ids
        else:
            self._data = np.array([i.encode("utf-8") for i in ids], dtype=np.bytes_)

    def __len__(self) -> int:
        return len(self._data)

    @overload
    def __getitem__(self, index: int | np.integer) -> str: ...

    @overload
    def __getitem__(self, index: slice | np.ndarray) -> TileIds: ...

    def __getitem__(self, index: int | np.integer | slice | np.ndarray) -> str | TileIds:
        if isinstance(index, (int, np.integer)):
            return bytes(self._data[index]).decode("utf-8")
        return TileIds(self._data[index])

    def __iter__(self) -> Iterator[str]:
        return (bytes(i).decode("utf-8") for i in self._data)

    def tolist(self) -> list[str]:
        """All ids as a list of strings."""
        return list(self)

    @property
    def nbytes(self) -> int:
        """Memory held by the ids."""
        return int(self._data.nbytes)

    def __repr__(self) -> str:
        return f"TileIds({len(self)} ids)"


def _strip_extension(name: str) -> str:
    for ext in IMAGE_EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _scan(folder: Path) -> dict[str, str]:
    """Map id → file name for the images in a folder (one ``scandir``, no per-file stat)."""
    found: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in IMAGE_EXTENSIONS and not entry.name.startswith("."):
                found[stem] = entry.name
    return found


def write_split(root: str | Path, split: str, ids: Iterable[str]) -> Path:
    """Write ``root/list/<split>.txt`` atomically, one id per line."""
    folder = Path(root) / "list"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.txt"
    tmp = folder / f".{split}.txt.tmp{os.getpid()}"
    tmp.write_text("".join(f"{i}\n" for i in ids))
    os.replace(tmp, path)
    return path


class DatasetFolder:
    """A dataset folder on disk: which parts it has, its splits and where each file is.

    Args:
        root: The folder.

    Raises:
        DataError: The folder or its ``A/`` is missing, or ``dataset.json`` is invalid.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "a dataset folder", "no such folder")
        if not (self.root / "A").is_dir():
            present = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DataError(
                self.root,
                "a dataset folder with A/ (and B/, label/, list/)",
                f"subfolders {present}",
                "See `sdrl prep --help` to build one from rasters",
            )
        meta_path = self.root / META_FILE
        self.meta: DatasetMeta | None = DatasetMeta.load(meta_path) if meta_path.exists() else None
        self._files: dict[str, dict[str, str]] = {}
        self._extensions: dict[str, str] = {}

    @property
    def meta_path(self) -> Path:
        """Path of ``dataset.json``."""
        return self.root / META_FILE

    def has(self, part: str) -> bool:
        """Whether the subfolder ``part`` (``A``, ``B``, ``label``, ``label_B``) exists."""
        return (self.root / part).is_dir()

    def _listing(self, part: str) -> dict[str, str]:
        if part not in self._files:
            self._files[part] = _scan(self.root / part) if self.has(part) else {}
        return self._files[part]

    def extension(self, part: str) -> str:
        """The file extension used in a subfolder (taken from its first file)."""
        if part not in self._extensions:
            listing = self._listing(part)
            if not listing:
                raise DataError(self.root / part, "image files (.tif or .png)", "none")
            self._extensions[part] = os.path.splitext(next(iter(listing.values())))[1]
        return self._extensions[part]

    def splits(self) -> list[str]:
        """Names of the split lists in ``list/``, or the id-prefix splits, plus ``all``."""
        lists = self.root / "list"
        names = sorted(p.stem for p in lists.glob("*.txt")) if lists.is_dir() else []
        if not names:
            ids = self._listing("A")
            names = [p for p in _SPLIT_PREFIXES if any(i.startswith(p + "_") for i in ids)]
        return [*names, "all"]

    def ids(self, split: str) -> TileIds:
        """Tile ids of a split.

        Args:
            split: A list name in ``list/`` (``train``, ``val``, ``test``...) or ``all``.

        Returns:
            The ``N`` ids, in list order.

        Raises:
            DataError: The list is missing or empty.
        """
        if split == "all":
            ids = sorted(self._listing("A"))
        else:
            path = self.root / "list" / f"{split}.txt"
            if path.is_file():
                lines = path.read_text().split()
                ids = [_strip_extension(line.strip()) for line in lines if line.strip()]
                if not ids:
                    raise DataError(path, "one tile id per line", "an empty file")
            elif not (self.root / "list").is_dir() and split in _SPLIT_PREFIXES:
                ids = sorted(i for i in self._listing("A") if i.startswith(split + "_"))
                if not ids:
                    raise DataError(
                        self.root / "list" / f"{split}.txt",
                        f"a split list, or images in A/ named {split}_*",
                        "neither",
                        f"Available splits: {self.splits()}",
                    )
            else:
                raise DataError(
                    path, "a split list", "no such file", f"Available splits: {self.splits()}"
                )
        if not ids:
            raise DataError(self.root / "A", "at least one image", "none")
        return TileIds(ids)

    def path(self, part: str, tile_id: str) -> Path:
        """Path of the file of ``tile_id`` in subfolder ``part`` (it may not exist)."""
        return self.root / part / f"{tile_id}{self.extension(part)}"

    def check(self, ids: TileIds, parts: Iterable[str]) -> None:
        """Check that every id has a file in every part (one directory scan per part).

        Raises:
            DataError: Some files are missing; the message names the first few.
        """
        for part in parts:
            listing = self._listing(part)
            if not self.has(part):
                raise DataError(self.root / part, f"a {part}/ folder", "no such folder")
            missing = [i for i in ids.tolist() if i not in listing]
            if missing:
                shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
                ext = self.extension(part) if listing else ".png"
                example = self.root / part / f"{missing[0]}{ext}"
                raise DataError(
                    example,
                    f"a {part}/ file for every id in A/ and the split list",
                    f"{len(missing)} missing ({shown})",
                )
