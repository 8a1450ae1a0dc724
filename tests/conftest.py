"""Shared fixtures: tiny generated GeoTIFFs with a real CRS and transform, one torch thread."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from affine import Affine

from sdrl.data.io import write_raster

REALDATA = Path(
    os.environ.get("SDRL_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata")
)
CRS_UTM33 = "EPSG:32633"


def realdata(*parts: str) -> Path:
    """Path under ../shared/realdata, skipping the test when it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data sample {path} is not present")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module, restored after it.

    Tiny models gain nothing from more threads, and shared CPUs stay fast. Used with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_tif(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a small georeferenced GeoTIFF; returns its path.

    Arguments: name, data ``(C, H, W)`` or ``(H, W)`` (random uint16 when omitted), ``crs``,
    ``origin`` (x, y of the top-left corner), ``res`` (pixel size), ``nodata``, ``band_names``.
    """

    def make(
        name: str = "image.tif",
        data: np.ndarray | None = None,
        crs: str | None = CRS_UTM33,
        origin: tuple[float, float] = (500000.0, 5000000.0),
        res: float = 10.0,
        nodata: float | None = None,
        band_names: list[str] | None = None,
        seed: int = 0,
    ) -> Path:
        if data is None:
            data = np.random.default_rng(seed).integers(0, 10000, (4, 32, 48), dtype=np.uint16)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        transform = Affine(res, 0, origin[0], 0, -res, origin[1])
        write_raster(path, data, crs=crs, transform=transform, nodata=nodata, band_names=band_names)
        return path

    return make
