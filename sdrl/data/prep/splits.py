"""Spatially blocked train/val/test split of the tiles of one raster.

Neighbouring tiles see almost the same ground, so a random split by tile leaks: a model is
validated on the ground it was trained on. :func:`blocked_split` keeps neighbours together:

1. **Blocks.** Tiles are grouped into square blocks of ``block`` tile steps (``block × step``
   pixels), by the block that holds the tile's centre. While there are fewer than
   ``ceil(1 / fraction)`` blocks for the smallest positive fraction, the block side is halved
   (in whole tile steps, down to one), so that a small raster still gets a val (and test)
   tile whenever two tiles do not share a block.
2. **Assignment.** A permutation of the blocks seeded by ``seed`` is drawn; whole blocks go
   to val, then to test, until each holds ``round(fraction × tiles)`` tiles or more (at least
   one tile for a positive fraction). At least one block always stays in train. The split is
   deterministic given the tiles and the seed.
3. **Purge.** Train tiles that overlap a val or test tile, and val tiles that overlap a test
   tile, are dropped, so no pixel is in two splits. Tiles overlap when the stride is below
   the tile size, or at the right/bottom edge, where :func:`~sdrl.data.tiling.tile_grid`
   shifts the last tile to end flush with the raster; for non-overlapping tiles the purge
   drops nothing. When it would leave no train tile (a raster barely larger than one tile),
   every tile goes to train instead, with a warning.

Several rasters (a collection of scenes, :func:`blocked_split_scenes`) get one split: blocks
are squares of one scene's grid, never straddling two scenes, and are drawn from all scenes
by one permutation, so the shares hold over the collection.

Used by ``sdrl prep pairs`` (any stride, one pair or a collection), ``sdrl prep oscd
--pretrain`` (all cities) and ``sdrl prep whu`` on the whole-image release (non-overlapping
tiles, blocks of 8, about 80/10/10 by tiles).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdrl.data.tiling import Tile
from sdrl.errors import ConfigError

__all__ = [
    "SPLITS",
    "BlockedSplit",
    "blocked_split",
    "blocked_split_scenes",
    "check_split_options",
]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class BlockedSplit:
    """The result of :func:`blocked_split`.

    Attributes:
        splits: ``train``, ``val`` and ``test`` → tiles, in input order (a split may be empty).
        dropped: Tiles in no split because they overlap a tile of another split.
        block: Block side actually used, in tile steps (below the requested one when blocks
            were halved for a small raster).
        requested_block: Block side asked for, in tile steps.
        step: Tile step in pixels.
        val_fraction: Share of tiles asked for in val.
        test_fraction: Share of tiles asked for in test.
        seed: Seed of the block permutation.
    """

    splits: dict[str, list[Tile]]
    dropped: list[Tile]
    block: int
    requested_block: int
    step: int
    val_fraction: float
    test_fraction: float
    seed: int

    def ids(self, prefix: str) -> dict[str, list[str]]:
        """Non-empty splits → tile ids ``<prefix>_<row>_<col>``, for the split lists."""
        return {name: [t.tile_id(prefix) for t in ts] for name, ts in self.splits.items() if ts}

    def record(self) -> dict[str, Any]:
        """The split's entry for ``dataset.json``'s provenance."""
        return {
            "official": False,
            "method": (
                f"NOT an official split: spatial blocks of {self.block}x{self.block} tile steps "
                f"({self.block * self.step} px), whole blocks drawn by a seeded permutation for "
                "val then test until each holds its share of the tiles; tiles overlapping a "
                "tile of another split dropped (sdrl.data.prep.splits.blocked_split)"
            ),
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "block_tiles": self.requested_block,
            "block_tiles_used": self.block,
            "seed": self.seed,
            "dropped_overlap": len(self.dropped),
        }


def _blocks(tiles: Sequence[Tile], side: int) -> list[tuple[int, int]]:
    """Block ``(row, col)`` of each tile: the block of ``side`` pixels holding its centre."""
    return [((t.row + t.size // 2) // side, (t.col + t.size // 2) // side) for t in tiles]


def _share_pixels(a: Tile, b: Tile) -> bool:
    rows = a.row < b.row + b.size and b.row < a.row + a.size
    return rows and a.col < b.col + b.size and b.col < a.col + a.size


def _overlapping(victims: Sequence[Tile], others: Sequence[Tile]) -> list[bool]:
    """Whether each of ``victims`` shares a pixel with one of ``others``.

    ``others`` are bucketed into cells of the largest tile size, so two tiles that overlap are
    at most one cell apart and each victim is compared with its 3×3 cells only.
    """
    if not others:
        return [False] * len(victims)
    cell = max(t.size for t in (*victims, *others))
    buckets: dict[tuple[int, int], list[Tile]] = {}
    for t in others:
        buckets.setdefault((t.row // cell, t.col // cell), []).append(t)
    found = []
    for t in victims:
        r, c = t.row // cell, t.col // cell
        cells = [buckets.get((r + dr, c + dc), []) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
        found.append(any(_share_pixels(t, o) for near in cells for o in near))
    return found


def check_split_options(val_fraction: float, test_fraction: float, block: int) -> None:
    """Check the options of :func:`blocked_split`, before any tile is written.

    Raises:
        ConfigError: Fractions outside ``[0, 1)`` or summing to 1 or more, or ``block`` below 1.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            "--val-fraction and --test-fraction: expected two shares in [0, 1) summing below 1, "
            f"found {val_fraction} and {test_fraction}"
        )
    if block < 1:
        raise ConfigError(f"--split-block: expected a positive number of tiles, found {block}")


def blocked_split(
    tiles: Sequence[Tile],
    step: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    block: int = 4,
    seed: int = 0,
) -> BlockedSplit:
    """Split the tiles of one raster into train/val/test by spatial blocks.

    See the module docstring for the three stages (blocks, assignment, purge) and their
    guarantees: at least one val (test) tile for a positive fraction when two tiles do not
    share a block, no pixel in two splits, the same split for the same tiles and seed.

    Args:
        tiles: The tiles of one raster grid (pixel offsets), in writing order.
        step: Tile stride in pixels (the tile size for non-overlapping tiles).
        val_fraction: Approximate share of tiles for val, in ``[0, 1)``.
        test_fraction: Approximate share of tiles for test, in ``[0, 1)``; the two sum below 1.
        block: Block side in tile steps, before any halving.
        seed: Seed of the block permutation.

    Returns:
        The tiles of each split and the dropped ones, in input order, with the block used.

    Raises:
        ConfigError: Options refused by :func:`check_split_options`, or ``step`` below 1.
    """
    return blocked_split_scenes([tiles], step, val_fraction, test_fraction, block, seed)[0]


def blocked_split_scenes(
    scenes: Sequence[Sequence[Tile]],
    step: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    block: int = 4,
    seed: int = 0,
) -> list[BlockedSplit]:
    """One blocked split over the tiles of several rasters (scenes), as :func:`blocked_split`.

    A block is a square of one scene's grid, so no block straddles two scenes; the blocks of
    every scene are drawn by one seeded permutation, so the shares of val and test tiles hold
    over the whole collection (one scene may hold none, another several blocks). Tiles of
    different scenes never overlap: the purge compares tiles within a scene. Block halving and
    the all-in-train fallback are decided over the collection. With one scene this is exactly
    :func:`blocked_split`.

    Args:
        scenes: The tiles of each scene's grid (pixel offsets), in writing order.
        step: Tile stride in pixels, the same for every scene.
        val_fraction: Approximate share of all tiles for val, in ``[0, 1)``.
        test_fraction: Approximate share of all tiles for test, in ``[0, 1)``.
        block: Block side in tile steps, before any halving.
        seed: Seed of the block permutation.

    Returns:
        One :class:`BlockedSplit` per scene (its tiles per split and its dropped tiles, in
        input order); ``block`` and the options are the collection's.

    Raises:
        ConfigError: Options refused by :func:`check_split_options`, or ``step`` below 1.
    """
    check_split_options(val_fraction, test_fraction, block)
    if step < 1:
        raise ConfigError(f"--tile/--stride: expected a positive tile step, found {step}")
    total = sum(len(tiles) for tiles in scenes)
    held = [f for f in (val_fraction, test_fraction) if f > 0]
    needed = math.ceil(1 / min(held)) if held and total >= 2 else 1
    used = block
    while True:
        keys = [
            [(s, *key) for key in _blocks(tiles, used * step)] for s, tiles in enumerate(scenes)
        ]
        blocks = sorted({key for scene in keys for key in scene})
        if len(blocks) >= needed or used == 1:
            break
        used = max(1, used // 2)
    counts = dict.fromkeys(blocks, 0)
    for key in (key for scene in keys for key in scene):
        counts[key] += 1
    order = [blocks[i] for i in np.random.default_rng(seed).permutation(len(blocks)).tolist()]
    assigned = dict.fromkeys(blocks, "train")
    for name, fraction in (("val", val_fraction), ("test", test_fraction)):
        target = max(1, round(fraction * total)) if fraction > 0 else 0
        got = 0
        while got < target and len(order) > 1:  # whole blocks until the share is reached
            key = order.pop()
            assigned[key] = name
            got += counts[key]
    per_scene = [
        _purge(tiles, [assigned[k] for k in ks]) for tiles, ks in zip(scenes, keys, strict=True)
    ]
    if not any(s["train"] for s, _ in per_scene) and any(d for _, d in per_scene):
        log.warning("tiles of %d px overlap too much for a leak-free split: all in train", step)
        per_scene = [({"train": list(tiles), "val": [], "test": []}, set()) for tiles in scenes]
    return [
        BlockedSplit(
            splits=splits,
            dropped=[t for t in tiles if t in dropped],
            block=used,
            requested_block=block,
            step=step,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
        )
        for tiles, (splits, dropped) in zip(scenes, per_scene, strict=True)
    ]


def _purge(tiles: Sequence[Tile], names: Sequence[str]) -> tuple[dict[str, list[Tile]], set[Tile]]:
    """The tiles of one scene per split, less those overlapping a tile of a later split."""
    splits: dict[str, list[Tile]] = {name: [] for name in SPLITS}
    for t, name in zip(tiles, names, strict=True):
        splits[name].append(t)
    dropped: set[Tile] = set()
    for victim, against in (("train", ("val", "test")), ("val", ("test",))):
        hits = _overlapping(splits[victim], [t for name in against for t in splits[name]])
        dropped.update(t for t, hit in zip(splits[victim], hits, strict=True) if hit)
        splits[victim] = [t for t, hit in zip(splits[victim], hits, strict=True) if not hit]
    return splits, dropped
