"""The crop taxonomy: a tree of class ids over ``L`` levels (H2Crop: 6 → 36 → 82 → 101 classes).

A taxonomy CSV has one row per finest-level class and, for each level ``l = 1..L``, the
columns ``level{l}_id`` (integer ids ``1..K_l``) and ``level{l}_name``; other columns (H2Crop's
``HCAT3_code``) are ignored. Every row is one root-to-leaf path. The ids of a level must be
contiguous from 1, every id has one name and (below level 1) one parent: the rows form a tree.
Id 0 is background at every level and is never listed.

Shape letters: ``L`` levels, ``P`` root-to-leaf paths.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sdrl.errors import DataError

__all__ = ["Taxonomy", "builtin_taxonomy", "load_taxonomy", "write_taxonomy_csv"]


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """A class tree of ``L`` levels.

    Attributes:
        names: ``names[l][k - 1]`` is the name of id ``k`` at level ``l`` (0-based level index,
            ids ``1..K_l``; background id 0 is implicit).
        paths: ``(P, L)`` int64, one valid root-to-leaf path of ids per row, sorted by leaf id.
        source: The CSV file it was read from, or ``"builtin"``.

    Two taxonomies are equal when their names and paths are (whatever their source).
    """

    names: tuple[tuple[str, ...], ...]
    paths: np.ndarray
    source: str

    def __post_init__(self) -> None:
        paths = np.array(self.paths, dtype=np.int64).reshape(-1, len(self.names))
        paths.setflags(write=False)
        object.__setattr__(self, "paths", paths)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Taxonomy):
            return NotImplemented
        return self.names == other.names and np.array_equal(self.paths, other.paths)

    def __hash__(self) -> int:
        return hash((self.names, self.paths.tobytes()))

    @property
    def levels(self) -> int:
        """Number of levels ``L``."""
        return len(self.names)

    @property
    def num_classes(self) -> tuple[int, ...]:
        """Classes per level, background included: ``K_l + 1``."""
        return tuple(len(level) + 1 for level in self.names)

    def parent(self, level: int) -> np.ndarray:
        """Parent of every id of a level.

        Args:
            level: 0-based level index, at least 1.

        Returns:
            ``(K_level + 1,)`` int64: entry ``k`` is the parent id (at ``level - 1``) of id
            ``k`` at ``level``; entry 0 (background) is 0.
        """
        if not 1 <= level < self.levels:
            raise ValueError(f"level must be in 1..{self.levels - 1}, got {level}")
        table = np.zeros(self.num_classes[level], dtype=np.int64)
        table[self.paths[:, level]] = self.paths[:, level - 1]
        return table

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (``dataset.json``, checkpoint headers)."""
        return {
            "levels": self.levels,
            "names": [list(level) for level in self.names],
            "paths": self.paths.tolist(),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Taxonomy:
        """The taxonomy written by :meth:`to_dict`, checked like a CSV.

        Raises:
            DataError: Missing entries, or paths and names that do not form a tree.
        """
        source = str(data.get("source", "dict"))
        try:
            names = [[str(n) for n in level] for level in data["names"]]
            rows = [[int(i) for i in row] for row in data["paths"]]
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                source, 'a taxonomy {"names": [[...], ...], "paths": [[...], ...]}', repr(error)
            ) from error
        if any(len(row) != len(names) for row in rows):
            raise DataError(source, f"taxonomy paths of {len(names)} ids each", "other lengths")
        for i, row in enumerate(rows):
            for level, class_id in enumerate(row):
                if not 1 <= class_id <= len(names[level]):
                    raise DataError(
                        source,
                        f"level{level + 1} ids in 1..{len(names[level])} (one name each)",
                        f"id {class_id} in path {i}",
                    )
        named = [[(k, names[level][k - 1]) for level, k in enumerate(row)] for row in rows]
        taxonomy = _build(named, source, [f"path {i}" for i in range(len(rows))])
        if taxonomy.num_classes != tuple(len(level) + 1 for level in names):
            raise DataError(source, "every named id on some path", "names of unused ids")
        return taxonomy


def _build(
    rows: Sequence[Sequence[tuple[int, str]]], source: str, where: Sequence[str]
) -> Taxonomy:
    """Check rows of ``(id, name)`` per level and make the :class:`Taxonomy`.

    Args:
        rows: One root-to-leaf path per row: ``L`` pairs of (id, name).
        source: File (or description) for messages.
        where: What to call each row in messages (``line 7``).
    """
    if not rows:
        raise DataError(source, "at least one class row", "none")
    levels = len(rows[0])
    names: list[dict[int, tuple[str, str]]] = [{} for _ in range(levels)]
    parents: list[dict[int, tuple[int, str]]] = [{} for _ in range(levels)]
    for row, at in zip(rows, where, strict=True):
        for level, (class_id, name) in enumerate(row):
            column = f"level{level + 1}_id"
            if class_id < 1:
                raise DataError(source, f"{column} ≥ 1 (0 is background)", f"{class_id} at {at}")
            seen = names[level].setdefault(class_id, (name, at))
            if seen[0] != name:
                raise DataError(
                    source,
                    f"one name per {column}",
                    f"{column} {class_id} named {name!r} at {at} and {seen[0]!r} at {seen[1]}",
                )
            if level == 0:
                continue
            up = row[level - 1][0]
            first = parents[level].setdefault(class_id, (up, at))
            if first[0] != up:
                raise DataError(
                    source,
                    f"a tree (one parent per {column})",
                    f"{column} {class_id} under level{level}_id {up} at {at} and under "
                    f"level{level}_id {first[0]} at {first[1]}",
                )
    for level, found in enumerate(names):
        missing = sorted(set(range(1, max(found) + 1)) - set(found))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise DataError(
                source,
                f"level{level + 1}_id values contiguous from 1 to {max(found)}",
                f"missing ids {shown}",
            )
    paths = np.unique(np.array([[i for i, _ in row] for row in rows], dtype=np.int64), axis=0)
    paths = paths[np.argsort(paths[:, -1], kind="stable")]
    if len(np.unique(paths[:, -1])) != len(paths):
        raise DataError(source, "one path per finest-level id", "a leaf id on two paths")
    table = tuple(tuple(found[k][0] for k in range(1, len(found) + 1)) for found in names)
    return Taxonomy(names=table, paths=paths, source=source)


def _level_columns(header: Sequence[str], path: Path) -> int:
    """Number of levels ``L`` of a CSV header (``level1_id`` .. ``levelL_name`` all present)."""
    numbers = {int(m.group(1)) for h in header if (m := re.fullmatch(r"level(\d+)_id", h.strip()))}
    if not numbers:
        raise DataError(
            path,
            "a taxonomy CSV with columns level1_id, level1_name, ..., levelL_id, levelL_name",
            f"columns {list(header)}",
        )
    wanted = [f"level{n}_{part}" for n in range(1, max(numbers) + 1) for part in ("id", "name")]
    missing = [c for c in wanted if c not in {h.strip() for h in header}]
    if missing:
        raise DataError(path, f"the columns {', '.join(wanted)}", f"{', '.join(missing)} missing")
    return max(numbers)


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read a taxonomy CSV (module docstring); any number of levels.

    Args:
        path: The CSV (H2Crop's ``cascade_labels.csv`` or one in its format).

    Returns:
        The checked :class:`Taxonomy`.

    Raises:
        DataError: One line naming the file, the line and the conflict: a missing column, an
            id that is not an integer or is below 1, an id with two names or two parents, or
            ids that are not contiguous (the missing ones are listed).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            if header is None:
                raise DataError(path, "a taxonomy CSV with a header line", "an empty file")
            levels = _level_columns(header, path)
            index = {h.strip(): i for i, h in enumerate(header)}
            rows: list[list[tuple[int, str]]] = []
            where: list[str] = []
            for line, values in enumerate(reader, start=2):
                if not any(v.strip() for v in values):
                    continue
                row = []
                for level in range(1, levels + 1):
                    text = _cell(values, index[f"level{level}_id"])
                    if not re.fullmatch(r"[+-]?\d+", text):
                        raise DataError(
                            path, f"an integer level{level}_id", f"{text!r} at line {line}"
                        )
                    row.append((int(text), _cell(values, index[f"level{level}_name"])))
                rows.append(row)
                where.append(f"line {line}")
    except OSError as error:
        raise DataError(path, "a readable taxonomy CSV", error.strerror or str(error)) from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(path, "a taxonomy CSV (UTF-8 text)", str(error)) from error
    return _build(rows, str(path), where)


def _cell(values: Sequence[str], column: int) -> str:
    return values[column].strip() if column < len(values) else ""


def write_taxonomy_csv(taxonomy: Taxonomy, file: Any) -> None:
    """Write a taxonomy in the CSV format :func:`load_taxonomy` reads (no ``HCAT3_code``).

    Args:
        taxonomy: The taxonomy.
        file: A text file object open for writing (``newline=""``).
    """
    writer = csv.writer(file, lineterminator="\n")
    levels = range(1, taxonomy.levels + 1)
    writer.writerow([f"level{n}_{part}" for n in levels for part in ("id", "name")])
    for row in taxonomy.paths.tolist():
        cells: list[Any] = []
        for level, class_id in enumerate(row):
            cells += [class_id, taxonomy.names[level][class_id - 1]]
        writer.writerow(cells)


_BUILTIN = (
    ("arable_crops", "cereals", "winter_cereals", "winter_wheat"),
    ("arable_crops", "cereals", "winter_cereals", "winter_barley"),
    ("arable_crops", "cereals", "spring_cereals", "spring_barley"),
    ("arable_crops", "cereals", "maize", "grain_maize"),
    ("arable_crops", "cereals", "maize", "silage_maize"),
    ("arable_crops", "oilseeds", "rapeseed", "winter_rapeseed"),
    ("arable_crops", "oilseeds", "sunflower", "sunflower"),
    ("grassland", "permanent_grassland", "meadow", "meadow"),
    ("grassland", "temporary_grassland", "temporary_grass", "temporary_grass"),
    ("permanent_crops", "orchards_vineyards", "vineyard", "vineyard"),
)


@lru_cache(maxsize=1)
def builtin_taxonomy() -> Taxonomy:
    """The small default taxonomy of ``sdrl synth --kind crop``: 3/5/8/10 classes.

    Winter wheat and winter barley (under winter cereals) and grain and silage maize (under
    maize) are the sibling pairs that only the hyperspectral stream can tell apart.
    """
    ids: list[dict[str, int]] = [{} for _ in range(4)]
    rows = [
        [(ids[level].setdefault(name, len(ids[level]) + 1), name) for level, name in enumerate(p)]
        for p in _BUILTIN
    ]
    return _build(rows, "builtin", [f"row {i + 1}" for i in range(len(rows))])
