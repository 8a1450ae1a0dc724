"""The ⚑ crop dataset folder: split lists, patch files and ``dataset.json``.

::

    DIR/<split>.txt           one patch file name per line (with or without ``.h5``); also
                              read from DIR/list/ or DIR/data_lists/ (H2Crop's layout)
    DIR/h5_data/<name>.h5     patch files (:mod:`sdrl.data.crop.h5`); also found in DIR/ itself,
                              DIR/h5s/ or DIR/data/
    DIR/dataset.json          optional: kind "crop", band names, statistics, taxonomy, months
    DIR/taxonomy.csv          optional: the taxonomy in CSV form (what sdrl synth writes)

**Lookup rule.** A split list is the first of ``DIR/<split>.txt``, ``DIR/list/<split>.txt``,
``DIR/data_lists/<split>.txt`` that exists. A listed name (its folder part, if any, dropped;
``.h5`` added when missing) is looked for in ``DIR/``, ``DIR/h5_data/``, ``DIR/h5s/`` and
``DIR/data/``, in that order; the first folder holding it wins. Each folder is listed once.

``dataset.json`` of a crop folder (what :func:`sdrl.data.crop.synth.generate_crop_dataset`
writes, and what :func:`ensure_crop_stats` caches for a folder a user brings)::

    {"kind": "crop", "s2_bands": [...], "s2_wavelengths_nm": [...], "s2_mean": [...],
     "s2_std": [...], "enmap_bands": [...], "enmap_wavelengths_nm": [...], "enmap_mean": [...],
     "enmap_std": [...], "months": 12, "size": [H, W], "gsd": 10.0, "enmap_gsd": 30.0,
     "taxonomy": {...} or null, "provenance": {...}, "version": "..."}

Every entry may be missing except ``kind``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdrl import __version__
from sdrl.bands import lookup_bands, preset_bands
from sdrl.data.crop.h5 import patch_shapes
from sdrl.data.crop.stats import CropStats, compute_stats, stats_from_dict
from sdrl.data.crop.taxonomy import Taxonomy
from sdrl.data.folder import META_FILE
from sdrl.data.staging import write_json_atomic
from sdrl.errors import DataError

__all__ = [
    "DATA_FOLDERS",
    "LIST_FOLDERS",
    "CropFolder",
    "CropFolderInfo",
    "crop_folder_info",
    "default_band_names",
    "ensure_crop_stats",
]

log = logging.getLogger(__name__)

LIST_FOLDERS = ("", "list", "data_lists")
"""Where split lists are looked for, in order (``""`` is the folder itself)."""
DATA_FOLDERS = ("", "h5_data", "h5s", "data")
"""Where patch files are looked for, in order."""
SPLITS = ("train", "val", "test")


def default_band_names(part: str, count: int) -> tuple[str, ...]:
    """Band names of a folder without ``dataset.json``: H2Crop's when the count matches.

    Args:
        part: ``s2`` (10 bands: B02..B12 of :mod:`sdrl.bands`' ``sentinel2-10``) or ``enmap``
            (218 bands: the ``enmap`` preset).
        count: Number of bands in the files.

    Returns:
        The names; ``band_1``... when the count is not H2Crop's.
    """
    preset, size = ("sentinel2-10", 10) if part == "s2" else ("enmap", 218)
    if count == size:
        return tuple(b.name for b in preset_bands(preset))
    return tuple(f"band_{i + 1}" for i in range(count))


class CropFolder:
    """A crop dataset folder: its split lists, patch files and ``dataset.json``.

    Args:
        root: The folder.

    Raises:
        DataError: The folder is missing or its ``dataset.json`` is not a crop description.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "a crop dataset folder", "no such folder")
        self.meta: dict[str, Any] | None = None
        if self.meta_path.is_file():
            try:
                meta = json.loads(self.meta_path.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise DataError(self.meta_path, "a JSON object", str(error)) from error
            if not isinstance(meta, dict) or meta.get("kind") != "crop":
                found = (
                    f'"kind": {json.dumps(meta.get("kind") if isinstance(meta, dict) else meta)}'
                )
                raise DataError(self.meta_path, '"kind": "crop" for a crop dataset', found)
            self.meta = meta
        self._listings: dict[str, set[str]] = {}

    @property
    def meta_path(self) -> Path:
        """Path of ``dataset.json``."""
        return self.root / META_FILE

    def split_file(self, split: str) -> Path | None:
        """The list file of a split (lookup rule in the module docstring), or ``None``."""
        for folder in LIST_FOLDERS:
            path = self.root / folder / f"{split}.txt"
            if path.is_file():
                return path
        return None

    def splits(self) -> list[str]:
        """Names of the splits that have a list file (``train``, ``val``, ``test`` first)."""
        found = {p.stem for f in LIST_FOLDERS for p in (self.root / f).glob("*.txt")}
        found -= {"readme", "README"}
        return [s for s in SPLITS if s in found] + sorted(found - set(SPLITS))

    def _listing(self, folder: str) -> set[str]:
        if folder not in self._listings:
            path = self.root / folder
            names: set[str] = set()
            if path.is_dir():
                with os.scandir(path) as entries:
                    names = {e.name for e in entries if e.name.endswith(".h5")}
            self._listings[folder] = names
        return self._listings[folder]

    def path(self, name: str) -> Path | None:
        """The file of a listed name (lookup rule in the module docstring), or ``None``."""
        file = _file_name(name)
        for folder in DATA_FOLDERS:
            if file in self._listing(folder):
                return self.root / folder / file
        return None

    def files(self, split: str) -> tuple[list[str], list[Path]]:
        """The ids and files of a split, in list order, every file checked to exist.

        Args:
            split: ``train``, ``val``, ``test`` or another list's name.

        Returns:
            ``(ids, paths)``: ids are the listed names without ``.h5``.

        Raises:
            DataError: The list is missing or empty, or a listed file is in none of the
                folders (the message names the list, the file and where it was looked for).
        """
        list_file = self.split_file(split)
        if list_file is None:
            places = ", ".join(str(self.root / f / f"{split}.txt") for f in LIST_FOLDERS)
            raise DataError(
                self.root,
                f"a split list {split}.txt ({places})",
                "none",
                f"Available splits: {self.splits() or 'none'}",
            )
        try:
            lines = list_file.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(list_file, "a text file of patch names", str(error)) from error
        names = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        if not names:
            raise DataError(list_file, "one patch file name per line", "an empty list")
        ids, paths = [], []
        for line, name in enumerate(names):
            path = self.path(name)
            if path is None:
                where = ", ".join(f"{f}/" if f else "./" for f in DATA_FOLDERS)
                raise DataError(
                    list_file,
                    f"a patch file for every listed name (looked in {where} of {self.root})",
                    f"no file {_file_name(name)} (entry {line + 1}: {name!r})",
                )
            ids.append(_file_name(name)[: -len(".h5")])
            paths.append(path)
        return ids, paths

    @property
    def taxonomy(self) -> Taxonomy | None:
        """The taxonomy of ``dataset.json``, or ``None``."""
        if self.meta is None or not self.meta.get("taxonomy"):
            return None
        return Taxonomy.from_dict({"source": str(self.meta_path), **self.meta["taxonomy"]})

    @property
    def stats(self) -> CropStats | None:
        """The statistics of ``dataset.json``, or ``None``."""
        return None if self.meta is None else stats_from_dict(self.meta, str(self.meta_path))


def _file_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base if base.endswith(".h5") else f"{base}.h5"


def ensure_crop_stats(
    folder: CropFolder, split: str = "train", max_files: int = 64, write: bool = True
) -> CropStats:
    """The folder's statistics, computed from a sample of a split and cached when missing.

    Args:
        folder: The crop folder.
        split: Split whose files give the statistics (``train``; the first split there is
            when the folder has no such list).
        max_files: Most files read, evenly spaced over the list (a sample, not every file).
        write: Cache the result in ``dataset.json`` (a warning when it cannot be written).

    Returns:
        The statistics (of ``dataset.json`` when it has them).
    """
    stats = folder.stats
    if stats is not None:
        return stats
    if folder.split_file(split) is None and folder.splits():
        split = folder.splits()[0]
    _, paths = folder.files(split)
    picked = np.unique(np.linspace(0, len(paths) - 1, min(max_files, len(paths))).astype(int))
    stats = compute_stats([paths[i] for i in picked])
    message = (
        f"computed crop band statistics of {folder.root} from {len(picked)} of {len(paths)} "
        f"files of '{split}' (an evenly spaced sample)"
    )
    if not write:
        log.info(message)
        return stats
    meta = folder.meta or _new_meta(paths[0], f"{len(picked)} files of '{split}'")
    meta.update(stats.to_dict())
    try:
        write_json_atomic(folder.meta_path, meta)
        folder.meta = meta
        log.info("%s; cached in %s", message, folder.meta_path)
    except (OSError, DataError) as error:
        log.warning("%s; could not cache them (%s)", message, error)
    return stats


def _new_meta(first: Path, sample: str) -> dict[str, Any]:
    """``dataset.json`` contents for a folder a user brings (shapes from its first file)."""
    shapes = patch_shapes(first)
    s2, enmap = shapes["s2"], shapes["enmap"]
    assert s2 is not None
    return {
        "kind": "crop",
        "s2_bands": list(default_band_names("s2", s2[1])),
        "enmap_bands": list(default_band_names("enmap", enmap[0])) if enmap else None,
        "months": s2[0],
        "size": [s2[2], s2[3]],
        "taxonomy": None,
        "provenance": {"source": "user folder", "statistics": sample},
        "version": __version__,
    }


@dataclass(frozen=True)
class CropFolderInfo:
    """What a crop folder holds, for building a model and checking options.

    Attributes:
        root: The folder.
        s2_bands: ``C`` Sentinel-2 band names.
        enmap_bands: ``E`` EnMAP band names, or ``None`` when the files have no EnMAP cube.
        s2_wavelengths: ``C`` centre wavelengths in nm (``None`` entries where unknown).
        enmap_wavelengths: ``E`` centre wavelengths in nm, or ``None``.
        months: Monthly composites ``T`` in the files.
        height: Rows ``H`` at 10 m.
        width: Columns ``W`` at 10 m.
        levels: Label maps ``L`` per file (of the priors for unlabelled patches; 0 when the
            files have neither).
        priors: Whether the files hold the previous year's labels.
        taxonomy: From ``dataset.json``; ``None`` when the folder has none (then the caller
            needs the taxonomy CSV, ``--taxonomy``).
        stats: From ``dataset.json``, or ``None`` (computed when a dataset is opened).
        splits: Names of the split lists found.
    """

    root: Path
    s2_bands: tuple[str, ...]
    enmap_bands: tuple[str, ...] | None
    s2_wavelengths: tuple[float | None, ...]
    enmap_wavelengths: tuple[float | None, ...] | None
    months: int
    height: int
    width: int
    levels: int
    priors: bool
    taxonomy: Taxonomy | None
    stats: CropStats | None
    splits: tuple[str, ...]


def _wavelengths(names: tuple[str, ...], sensor: str, given: Any) -> tuple[float | None, ...]:
    """Centre wavelengths: those of ``dataset.json`` when it lists one per band, else looked up."""
    if isinstance(given, list) and len(given) == len(names):
        return tuple(None if v is None else float(v) for v in given)
    if all(n.startswith("band_") for n in names):
        return tuple(None for _ in names)
    return tuple(b.nm for b in lookup_bands(list(names), sensor=sensor))


def crop_folder_info(root: str | Path) -> CropFolderInfo:
    """Describe a crop folder from its ``dataset.json`` and the header of its first file.

    Args:
        root: The folder.

    Returns:
        The :class:`CropFolderInfo`; shapes always come from the first listed file (of
        ``train`` when there is one).

    Raises:
        DataError: No split list, a missing listed file, or an unreadable first file.
    """
    folder = CropFolder(root)
    splits = folder.splits()
    if not splits:
        places = ", ".join(f"{f}/" if f else "./" for f in LIST_FOLDERS)
        raise DataError(
            folder.root, f"split lists train.txt, val.txt, test.txt in {places}", "none"
        )
    _, paths = folder.files(splits[0])
    shapes = patch_shapes(paths[0])
    s2, enmap, label = shapes["s2"], shapes["enmap"], shapes["label"] or shapes["prior"]
    assert s2 is not None
    meta = folder.meta or {}
    s2_bands = tuple(meta.get("s2_bands") or default_band_names("s2", s2[1]))
    enmap_bands = None
    if enmap is not None:
        enmap_bands = tuple(meta.get("enmap_bands") or default_band_names("enmap", enmap[0]))
    for part, names, count in (("s2", s2_bands, s2[1]), ("enmap", enmap_bands, enmap)):
        number = count if isinstance(count, int) else (count[0] if count else None)
        if names is not None and number is not None and len(names) != number:
            raise DataError(
                folder.meta_path, f'{number} "{part}_bands" like {paths[0]}', f"{len(names)}"
            )
    return CropFolderInfo(
        root=folder.root,
        s2_bands=s2_bands,
        enmap_bands=enmap_bands,
        s2_wavelengths=_wavelengths(s2_bands, "sentinel2", meta.get("s2_wavelengths_nm")),
        enmap_wavelengths=None
        if enmap_bands is None
        else _wavelengths(enmap_bands, "enmap", meta.get("enmap_wavelengths_nm")),
        months=s2[0],
        height=s2[2],
        width=s2[3],
        levels=label[0] if label else 0,
        priors=shapes["prior"] is not None,
        taxonomy=folder.taxonomy,
        stats=folder.stats,
        splits=tuple(splits),
    )
