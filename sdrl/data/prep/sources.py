"""Where the scenes of a collection are listed: a CSV of pairs, or folders matched by name.

``--pairs FILE.csv``: one pair per line, columns ``before,after[,labels[,labels_after]]``,
optionally with a header line naming them (then in any order, and a ``name`` column may give
the scenes' tile id prefixes). Paths are relative to the CSV's folder (absolute ones stay);
an empty cell means no file; blank lines and lines starting with ``#`` are skipped::

    before,after,labels
    2019/paris.tif,2021/paris.tif,labels/paris.geojson
    2019/lyon.tif,2021/lyon.tif,labels/lyon.geojson

``--before-dir D1 --after-dir D2`` (optionally ``--labels-dir``, ``--labels-after-dir``):
every raster in ``D1`` is paired with the file of the same stem in ``D2`` (and in the label
folders, where a GeoJSON also matches), in name order.

A scene is named after its before file's stem unless the CSV names it. Names must be unique
and usable as file names and list entries (no whitespace or path separators): they prefix
the tile ids, ``<name>_<row>_<col>``.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from sdrl.data.prep.scene import VECTOR_SUFFIXES, Scene
from sdrl.errors import ConfigError, DataError

__all__ = ["RASTER_SUFFIXES", "check_scene_names", "match_dirs", "read_pairs_csv"]

log = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jp2", ".vrt", ".img")
COLUMNS = ("before", "after", "labels", "labels_after")
_NAME = re.compile(r"^[^\s/\\]+$")


def _file(base: Path, cell: str, csv_path: Path, line: int, column: str) -> Path | None:
    if not cell.strip():
        if column in ("before", "after"):
            raise DataError(csv_path, f"a {column} path on line {line}", "an empty cell")
        return None
    path = Path(cell.strip()).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.is_file():
        raise DataError(
            path,
            f"the {column} file listed on {csv_path.name} line {line}",
            "no such file",
            "Paths in the CSV are relative to the CSV's folder",
        )
    return path


def read_pairs_csv(path: str | Path) -> list[Scene]:
    """The scenes listed in a pairs CSV (see the module docstring for the format).

    Args:
        path: The CSV file.

    Returns:
        One :class:`~sdrl.data.prep.scene.Scene` per line, its origin ``FILE line N``.

    Raises:
        DataError: No such CSV, an unknown column, a line with too many cells, a listed file
            that does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "a CSV of pairs (before,after[,labels[,labels_after]])", "none")
    base = path.resolve().parent
    scenes: list[Scene] = []
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header: list[str] | None = None
        for cells in reader:
            line = reader.line_num
            if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in cells]
            if header is None and not scenes and {"before", "after"} <= set(cells):
                unknown = [c for c in cells if c not in (*COLUMNS, "name")]
                if unknown:
                    expected = f"columns among {', '.join((*COLUMNS, 'name'))} on line {line}"
                    raise DataError(path, expected, f"{unknown}")
                header = cells
                continue
            columns = header or list(COLUMNS)
            if len(cells) > len(columns) or len(cells) < 2:
                expected = f"{len(columns) if header else '2 to 4'} cells on line {line}"
                raise DataError(path, expected, f"{len(cells)}: {cells}")
            row = dict(zip(columns, cells, strict=False))
            files = {c: _file(base, row.get(c, ""), path, line, c) for c in COLUMNS}
            before, after = files["before"], files["after"]
            assert before is not None and after is not None
            scenes.append(
                Scene(
                    name=row.get("name") or before.stem,
                    before=before,
                    after=after,
                    labels=files["labels"],
                    labels_after=files["labels_after"],
                    origin=f"{path.name} line {line}",
                )
            )
    if not scenes:
        raise DataError(path, "at least one pair (before,after)", "no line")
    return scenes


def _by_stem(folder: Path, suffixes: Sequence[str], flag: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(folder, f"{flag}: a folder", "no such folder")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() not in suffixes:
            continue
        if path.stem in files:
            found = f"{files[path.stem].name} and {path.name}"
            raise DataError(folder, f"{flag}: one file per name", found)
        files[path.stem] = path.resolve()
    return files


def match_dirs(
    before_dir: str | Path,
    after_dir: str | Path,
    labels_dir: str | Path | None = None,
    labels_after_dir: str | Path | None = None,
) -> list[Scene]:
    """Pair the rasters of two folders by file stem (and labels from two more).

    Args:
        before_dir: Images at time 1; every raster here is a scene.
        after_dir: Images at time 2, one per scene, same stem.
        labels_dir: Label rasters or GeoJSON of A (or change labels), one per scene.
        labels_after_dir: Label rasters or GeoJSON of B, one per scene.

    Returns:
        The scenes in name order, their origin ``--before-dir FILE``.

    Raises:
        DataError: A folder missing or without rasters, a scene without its counterpart.
    """
    before = _by_stem(Path(before_dir), RASTER_SUFFIXES, "--before-dir")
    if not before:
        expected = f"rasters ({', '.join(RASTER_SUFFIXES)})"
        raise DataError(before_dir, f"--before-dir: {expected}", "none")
    label_suffixes = (*RASTER_SUFFIXES, *VECTOR_SUFFIXES)
    folders = {
        "after": (after_dir, RASTER_SUFFIXES, "--after-dir"),
        "labels": (labels_dir, label_suffixes, "--labels-dir"),
        "labels_after": (labels_after_dir, label_suffixes, "--labels-after-dir"),
    }
    matched: dict[str, dict[str, Path]] = {}
    for key, (folder, suffixes, flag) in folders.items():
        if folder is None:
            continue
        files = _by_stem(Path(folder), suffixes, flag)
        for stem, path in before.items():
            if stem not in files:
                expected = f"{flag}: a file named {stem}.* like {path.name}"
                raise DataError(Path(folder) / f"{stem}{path.suffix}", expected, "none")
        extra = sorted(set(files) - set(before))
        if extra:
            log.warning("%s: %d files without a --before-dir match, left out: %s", flag,
                        len(extra), ", ".join(extra[:5]))  # fmt: skip
        matched[key] = files
    return [
        Scene(
            name=stem,
            before=path,
            after=matched["after"][stem],
            labels=matched.get("labels", {}).get(stem),
            labels_after=matched.get("labels_after", {}).get(stem),
            origin=f"--before-dir {path.name}",
        )
        for stem, path in before.items()
    ]


def check_scene_names(scenes: Sequence[Scene]) -> None:
    """Refuse scene names that are not unique or not usable in tile ids.

    Raises:
        ConfigError: A duplicate name or one with whitespace or a path separator.
    """
    seen: dict[str, Scene] = {}
    for scene in scenes:
        where = scene.origin or "--before"
        if not _NAME.match(scene.name):
            raise ConfigError(
                f"scene name '{scene.name}' ({where}): expected no whitespace or path "
                "separator (it prefixes the tile ids); give a name column in the CSV"
            )
        if scene.name in seen:
            first = seen[scene.name].origin or "--before"
            raise ConfigError(
                f"scene name '{scene.name}' given twice ({first} and {where}): tile ids would "
                "collide; give a name column in the CSV or rename the files"
            )
        seen[scene.name] = scene
