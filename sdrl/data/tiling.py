"""Cutting a raster grid into tiles: windows with a stride, edge handling and tile ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rasterio.windows import Window

from sdrl.errors import ConfigError

__all__ = ["Tile", "check_tile_size", "tile_grid"]


def check_tile_size(tile: int | None, flag: str = "--tile") -> None:
    """Refuse a tile size that is not a positive integer (``None``, no tiling, passes).

    Raises:
        ConfigError: ``tile`` is zero, negative or not an integer.
    """
    if tile is None:
        return
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0:
        raise ConfigError(f"{flag}: expected a positive number of pixels, found {tile!r}")


@dataclass(frozen=True)
class Tile:
    """One tile of a grid.

    Attributes:
        row: Row offset of the tile's top-left pixel.
        col: Column offset of the tile's top-left pixel.
        size: Tile height and width in pixels.
    """

    row: int
    col: int
    size: int

    @property
    def window(self) -> Window:
        """The rasterio window of the tile."""
        return Window(self.col, self.row, self.size, self.size)

    def tile_id(self, prefix: str) -> str:
        """``<prefix>_<row>_<col>``, zero-padded (LEVIR-CD's naming of 256-pixel tiles)."""
        return f"{prefix}_{self.row:04d}_{self.col:04d}"

    def slices(self) -> tuple[slice, slice]:
        """Row and column slices into a full ``(H, W)`` array."""
        return slice(self.row, self.row + self.size), slice(self.col, self.col + self.size)


def _offsets(length: int, size: int, stride: int) -> list[int]:
    if length < size:
        return []
    offsets = list(range(0, length - size + 1, stride))
    if offsets[-1] != length - size:
        offsets.append(length - size)  # last tile flush with the edge: every pixel is covered
    return offsets


def tile_grid(height: int, width: int, size: int, stride: int | None = None) -> Iterator[Tile]:
    """Tiles covering an ``H × W`` grid, row by row.

    The last row and column of tiles are shifted to end at the raster edge (so they overlap
    their neighbours a little) rather than padded; a raster smaller than one tile gives none.

    Args:
        height: Grid rows ``H``.
        width: Grid columns ``W``.
        size: Tile size in pixels.
        stride: Step between tiles; ``size`` (no overlap) when ``None``.

    Yields:
        :class:`Tile` objects.
    """
    if size <= 0:
        raise ValueError(f"tile size must be positive, got {size}")
    stride = size if stride is None else stride
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    for row in _offsets(height, size, stride):
        for col in _offsets(width, size, stride):
            yield Tile(row, col, size)
