"""Raster and file writes never report success for a broken output (disk full, GDAL errors)."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from sdrl.data import io as sdrl_io
from sdrl.data.io import write_raster
from sdrl.data.staging import staged_dir, write_atomic, write_json_atomic
from sdrl.data.write_check import gdal_write_errors, verify_written
from sdrl.errors import DataError

resource = pytest.importorskip("resource")


def _file_size_limit(limit: int):
    """A context that makes files larger than ``limit`` bytes fail to grow (a full disk)."""

    class _Limit:
        def __enter__(self) -> None:
            self.signal = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            self.saved = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, self.saved[1]))

        def __exit__(self, *exc: object) -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, self.saved)
            signal.signal(signal.SIGXFSZ, self.signal)

    return _Limit()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as a full disk: Linux")
@pytest.mark.parametrize(("limit", "size"), [(2000, 64), (0, 16), (20_000, 600)])
def test_a_full_disk_raises_and_leaves_nothing(tmp_path, limit, size):
    """Errors at write time (raised), at closing time (only logged by GDAL) and a 0-byte file."""
    data = np.random.default_rng(0).random((2, size, size)).astype(np.float32)
    out = tmp_path / "full.tif"
    with pytest.raises(DataError, match="full.tif: expected a") as error, _file_size_limit(limit):
        write_raster(out, data)
    assert "Check the free space" in str(error.value) and "\n" not in str(error.value)
    assert _leftovers(tmp_path) == []
    write_raster(out, data)  # the same call succeeds once there is space
    np.testing.assert_array_equal(rasterio.open(out).read(), data)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as a full disk: Linux")
def test_a_checkpoint_on_a_full_disk_names_the_file(tmp_path):
    """torch.save reports a failed write as a RuntimeError; the file's own error is raised."""
    out = tmp_path / "last.ckpt"
    with (
        pytest.raises(
            DataError, match="last.ckpt: expected a file that can be written, found File"
        ),
        _file_size_limit(10_000),
    ):
        write_atomic(out, lambda file: torch.save({"w": torch.zeros(100_000)}, file))
    assert _leftovers(tmp_path) == []
    write_atomic(out, lambda file: torch.save({"w": torch.arange(3)}, file))
    assert torch.load(out, weights_only=True)["w"].tolist() == [0, 1, 2]


def test_gdal_errors_that_are_only_logged_are_raised_and_kept_out_of_the_log(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    message = "GDAL signalled an error: err_no=1, msg='TIFFWriteDirectory: IO error'"
    match = "x.tif: .*GDAL: 'TIFFWriteDirectory: IO error'"
    with pytest.raises(DataError, match=match), gdal_write_errors(tmp_path / "x.tif"):
        logging.getLogger("rasterio._env").info(message)
    assert "TIFFWriteDirectory" not in caplog.text
    assert logging.getLogger("rasterio._env").level == logging.NOTSET  # levels restored
    with gdal_write_errors(tmp_path / "y.tif"):
        logging.getLogger("rasterio._env").debug("not an error")
        reader = threading.Thread(target=logging.getLogger("rasterio._env").info, args=(message,))
        reader.start()  # another thread's errors (a reader's) are not the write's
        reader.join()


def test_verify_finds_truncated_and_missing_blocks(tmp_path):
    data = np.random.default_rng(1).integers(0, 5000, (3, 300, 300), dtype=np.uint16)
    path = write_raster(tmp_path / "a.tif", data)
    verify_written(path, data.shape, "uint16")
    with pytest.raises(DataError, match="expected a complete 4x300x300"):
        verify_written(path, (4, 300, 300), "uint16")
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.truncate(size // 2)
    with pytest.raises(DataError, match=r"a.tif: expected a complete 3x300x300 uint16 raster"):
        verify_written(path, data.shape, "uint16")
    sparse = tmp_path / "sparse.tif"  # blocks never written: offset 0 (what a failed flush leaves)
    profile = {"driver": "GTiff", "count": 1, "height": 512, "width": 512, "dtype": "uint8"}
    with rasterio.open(sparse, "w", tiled=True, sparse_ok=True, **profile) as dst:
        dst.write(np.ones((1, 256, 256), np.uint8), window=((0, 256), (0, 256)))
    with pytest.raises(DataError, match="block 0,1 of band 1 missing"):
        verify_written(sparse, (1, 512, 512), "uint8")


def test_os_errors_become_one_line_naming_the_file(tmp_path, monkeypatch):
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))

    data = np.zeros((1, 8, 8), np.uint8)
    monkeypatch.setattr(sdrl_io.rasterio, "open", no_space)
    with pytest.raises(DataError, match=r"m.tif: expected a raster file written completely"):
        write_raster(tmp_path / "m.tif", data)
    monkeypatch.undo()
    old = write_json_atomic(tmp_path / "m.json", {"old": 1})
    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(DataError, match="No space left on device. Free some space"):
        write_json_atomic(old, {"new": 2})
    assert old.read_text() == '{\n  "old": 1\n}\n' and _leftovers(tmp_path) == ["m.json"]


def test_staged_dir_keeps_the_old_output_when_the_rename_fails(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with staged_dir(out) as staging:
        (staging / "old.txt").write_text("old")
    real = os.rename

    def flaky(src: object, dst: object) -> None:
        if ".partial-" in str(src):
            raise OSError(errno.EACCES, "Permission denied", str(src))
        real(src, dst)

    monkeypatch.setattr(os, "rename", flaky)
    with pytest.raises(DataError, match="Permission denied"), staged_dir(out, overwrite=True) as s:
        (s / "new.txt").write_text("new")
    assert _leftovers(out) == ["old.txt"] and _leftovers(tmp_path) == ["out"]
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with (
        pytest.raises(DataError, match="blocker/x: expected an output folder"),
        staged_dir(blocker / "x"),
    ):
        pass
