"""The crop taxonomy: CSV reading, tree checks, parents, JSON round trip."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from sdrl.data.crop.taxonomy import (
    Taxonomy,
    builtin_taxonomy,
    load_taxonomy,
    write_taxonomy_csv,
)
from sdrl.errors import DataError
from tests.conftest import realdata

HEADER = "HCAT3_code,level1_id,level1_name,level2_id,level2_name,level3_id,level3_name\n"
GOOD = [
    "11,1,arable,1,cereals,1,wheat",
    "12,1,arable,1,cereals,2,barley",
    "13,1,arable,2,oilseeds,3,rapeseed",
    "14,2,grass,3,meadow,4,meadow",
]


def write_csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "taxonomy.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def test_small_csv_loads(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(write_csv(tmp_path, GOOD))
    assert taxonomy.levels == 3
    assert taxonomy.num_classes == (3, 4, 5)
    assert taxonomy.names[2] == ("wheat", "barley", "rapeseed", "meadow")
    assert taxonomy.paths.tolist() == [[1, 1, 1], [1, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert taxonomy.parent(2).tolist() == [0, 1, 1, 2, 3]
    assert taxonomy.parent(1).tolist() == [0, 1, 1, 2]
    with pytest.raises(ValueError, match="level must be"):
        taxonomy.parent(0)


@pytest.mark.realdata
def test_real_h2crop_taxonomy() -> None:
    path = realdata("crop", "h2crop_taxonomy", "cascade_labels.csv")
    taxonomy = load_taxonomy(path)
    assert taxonomy.levels == 4
    assert taxonomy.num_classes == (7, 37, 83, 102)
    assert taxonomy.paths.shape == (101, 4)
    for level in range(1, 4):  # every id has a parent that exists
        parents = taxonomy.parent(level)[1:]
        assert parents.min() >= 1 and parents.max() <= taxonomy.num_classes[level - 1] - 1
    assert Taxonomy.from_dict(taxonomy.to_dict()) == taxonomy


def test_round_trip_and_csv_copy(tmp_path: Path) -> None:
    taxonomy = builtin_taxonomy()
    assert taxonomy.num_classes == (4, 6, 9, 11)
    again = Taxonomy.from_dict(taxonomy.to_dict())
    assert again == taxonomy and again.source == "builtin"
    assert hash(again) == hash(taxonomy)
    buffer = io.StringIO()
    write_taxonomy_csv(taxonomy, buffer)
    path = tmp_path / "copy.csv"
    path.write_text(buffer.getvalue())
    assert load_taxonomy(path) == taxonomy
    assert not taxonomy.paths.flags.writeable


@pytest.mark.parametrize(
    ("rows", "header", "words"),
    [
        # a child under two parents: not a tree
        ([*GOOD, "15,2,grass,3,meadow,2,barley"], HEADER, ["line 6", "level3_id 2", "line 3"]),
        ([*GOOD[:3], "14,2,grass,1,cereals,4,meadow"], HEADER, ["line 5", "level2_id 1"]),
        # one id, two names
        ([*GOOD, "15,2,grass,3,meadow,4,pasture"], HEADER, ["line 6", "'pasture'", "'meadow'"]),
        # not an integer, below 1
        ([*GOOD, "15,2,grass,x3,meadow,5,pasture"], HEADER, ["level2_id", "'x3'", "line 6"]),
        ([*GOOD, "15,2,grass,3,meadow,0,none"], HEADER, ["level3_id", "0 at line 6"]),
        # ids not contiguous
        ([*GOOD, "15,2,grass,3,meadow,7,pasture"], HEADER, ["level3_id", "missing ids 5, 6"]),
        # a missing column
        (GOOD, HEADER.replace(",level2_name", ""), ["level2_name missing"]),
        ([], "code,name\n", ["level1_id", "columns"]),
        ([], HEADER, ["at least one class row"]),
    ],
)
def test_bad_csv_fails_with_one_line(
    tmp_path: Path, rows: list[str], header: str, words: list[str]
) -> None:
    path = write_csv(tmp_path, rows, header)
    with pytest.raises(DataError) as caught:
        load_taxonomy(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message


def test_from_dict_checks() -> None:
    data = builtin_taxonomy().to_dict()
    data["paths"][0][3] = 99
    with pytest.raises(DataError, match="id 99 in path 0"):
        Taxonomy.from_dict(data)
    data = builtin_taxonomy().to_dict()
    data["paths"][1][2] = 4  # winter barley under rapeseed, whose parent is oilseeds, not cereals
    with pytest.raises(DataError, match="one parent per level3_id"):
        Taxonomy.from_dict(data)
    with pytest.raises(DataError, match="taxonomy"):
        Taxonomy.from_dict({"names": [["a"]]})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no_such.csv"):
        load_taxonomy(tmp_path / "no_such.csv")
    assert np.array_equal(builtin_taxonomy().paths[:, -1], np.arange(1, 11))
