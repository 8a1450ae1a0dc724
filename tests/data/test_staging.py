"""Atomic output folders and tiling."""

from __future__ import annotations

import pytest

from sdrl.data.staging import staged_dir
from sdrl.data.tiling import tile_grid
from sdrl.errors import DataError


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_dir(out) as staging:
        (staging / "A").mkdir()
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_success_renames_and_overwrite_replaces(tmp_path):
    out = tmp_path / "out"
    with staged_dir(out) as staging:
        (staging / "new.txt").write_text("1")
        assert not out.exists()
    assert (out / "new.txt").read_text() == "1"
    with pytest.raises(DataError, match="Pass --overwrite"), staged_dir(out):
        pass
    with staged_dir(out, overwrite=True) as staging:
        (staging / "other.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["other.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_existing_empty_folder_is_accepted(tmp_path):
    (tmp_path / "out").mkdir()
    with staged_dir(tmp_path / "out") as staging:
        (staging / "x").write_text("")
    assert (tmp_path / "out" / "x").exists()


@pytest.mark.parametrize(
    ("height", "width", "size", "stride", "rows", "cols"),
    [
        (512, 512, 256, None, [0, 256], [0, 256]),
        (600, 300, 256, None, [0, 256, 344], [0, 44]),
        (300, 256, 256, 128, [0, 44], [0]),
        (100, 512, 256, None, [], []),
    ],
)
def test_tile_grid_covers_and_stays_inside(height, width, size, stride, rows, cols):
    tiles = list(tile_grid(height, width, size, stride))
    assert sorted({t.row for t in tiles}) == rows
    assert sorted({t.col for t in tiles}) == cols
    assert len(tiles) == len(rows) * len(cols)
    for tile in tiles:
        assert tile.row + size <= height and tile.col + size <= width


def test_tile_ids_and_bad_sizes():
    tile = next(tile_grid(512, 512, 256))
    assert tile.tile_id("test_102") == "test_102_0000_0000"
    with pytest.raises(ValueError):
        list(tile_grid(10, 10, 0))
    with pytest.raises(ValueError):
        list(tile_grid(10, 10, 4, stride=0))
