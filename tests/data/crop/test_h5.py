"""Reading H2Crop patch files: both key spellings, month windows, every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sdrl.data.crop.h5 import patch_shapes, read_patch
from sdrl.errors import DataError

from .conftest import patch_arrays


@pytest.mark.parametrize("spelling", ["readme", "loader"])
def test_reads_both_spellings(make_patch: Callable[..., Path], spelling: str) -> None:
    arrays = patch_arrays()
    path = make_patch(spelling=spelling)
    patch = read_patch(path, 6, priors=True)
    assert patch.s2.dtype == np.float32 and patch.s2.shape == (6, 10, 12, 12)
    np.testing.assert_array_equal(patch.s2, arrays["s2"][:6])
    assert patch.enmap is not None and patch.enmap.shape == (5, 4, 4)
    np.testing.assert_array_equal(patch.enmap, arrays["enmap"])
    assert patch.label.dtype == np.int64 and patch.label.shape == (4, 12, 12)
    np.testing.assert_array_equal(patch.label, arrays["label"])
    assert patch.prior is not None
    np.testing.assert_array_equal(patch.prior, arrays["prior"])
    lean = read_patch(path, 12, enmap=False)
    assert lean.enmap is None and lean.prior is None and lean.s2.shape[0] == 12
    assert patch_shapes(path) == {
        "s2": (12, 10, 12, 12),
        "enmap": (5, 4, 4),
        "label": (4, 12, 12),
        "prior": (4, 12, 12),
    }


def test_optional_parts_may_be_absent(make_patch: Callable[..., Path]) -> None:
    path = make_patch(enmap=None, prior=None)
    assert read_patch(path, 12, enmap=False).label.shape == (4, 12, 12)
    assert patch_shapes(path)["enmap"] is None


def _error(path: Path, **kwargs: object) -> str:
    options = {"months": 12, "enmap": True, "priors": True, **kwargs}
    with pytest.raises(DataError) as caught:
        read_patch(path, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_missing_keys_name_the_spellings(make_patch: Callable[..., Path]) -> None:
    message = _error(make_patch(s2=None))
    assert "S2 or S2_data" in message and "'label'" in message and "'EnMAP_data'" in message
    assert "EnMAP or EnMAP_data" in _error(make_patch(enmap=None))
    assert "prior or priors" in _error(make_patch(prior=None))
    assert "label" in _error(make_patch(label=None))


def test_shape_errors(make_patch: Callable[..., Path]) -> None:
    arrays = patch_arrays()
    message = _error(make_patch(s2=arrays["s2"][0]))
    assert "4 dimensions" in message and "(10, 12, 12)" in message
    message = _error(make_patch(enmap=arrays["enmap"][:, :3]))
    assert "(E, 4, 4)" in message and "(5, 3, 4)" in message
    assert "3 dimensions" in _error(make_patch(enmap=arrays["enmap"][0]))
    message = _error(make_patch(label=arrays["label"][:, :9]))
    assert "(L, 12, 12)" in message and "(4, 9, 12)" in message
    assert "(L, 12, 12)" in _error(make_patch(prior=arrays["prior"][..., :6]))
    assert "priors of 4 levels" in _error(make_patch(prior=arrays["prior"][:3]))
    odd = patch_arrays(size=10)
    message = _error(make_patch(s2=odd["s2"], label=odd["label"], prior=odd["prior"]))
    assert "multiple of 3" in message and "10x10" in message


def test_float_labels_and_short_series(make_patch: Callable[..., Path]) -> None:
    message = _error(make_patch(label=patch_arrays()["label"].astype(np.float32)))
    assert "integer class ids" in message and "float32" in message
    message = _error(make_patch(s2=patch_arrays(months=10)["s2"]), months=12)
    assert "at least 12 monthly composites" in message and "found 10" in message
    assert read_patch(make_patch(s2=patch_arrays(months=10)["s2"]), 8).s2.shape[0] == 8


def test_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.h5"
    broken.write_text("not hdf5")
    assert "readable HDF5" in _error(broken)
    assert "no such file" in _error(tmp_path / "absent.h5")
