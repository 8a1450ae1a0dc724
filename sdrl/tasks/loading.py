"""Deterministic, resumable data loading, shared by every task.

Everything random about the data is a function of the run seed and a position, never of the
history of a process, so a run resumed from a checkpoint sees exactly the data an uninterrupted
run would have seen:

* the order of epoch ``e`` is a permutation seeded by ``(seed, e)``, split across processes;
* a random crop of tile ``i`` in epoch ``e`` is seeded by ``(seed, e, i)`` (in the worker);
* each training batch carries ``aug_seed``, from ``(seed, e, batch number, rank)``, which seeds
  the on-device augmentation and the step's other random draws;
* :class:`ResumableLoader` counts the batches it has handed out; Lightning saves that count in
  the checkpoint (``state_dict``) and, on resume, the loader skips the batches already trained.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.io import read_info
from sdrl.data.samples import collate
from sdrl.errors import ConfigError, DataError
from sdrl.tasks.seeding import mix_seed

__all__ = [
    "EpochSampler",
    "Keyed",
    "ResumableLoader",
    "ShardSampler",
    "SplitDataModule",
    "check_tile_size",
]

log = logging.getLogger(__name__)

Key = tuple[int, int]
"""What the samplers yield: ``(tile index, epoch)``."""


class Keyed(Dataset[dict[str, Any]]):
    """Read sample ``index`` with the dataset's random draws seeded by ``(seed, epoch, index)``."""

    def __init__(self, dataset: Dataset[dict[str, Any]], seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Key) -> dict[str, Any]:
        index, epoch = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed(self.seed, epoch, index))
            return self.dataset[index]


class EpochSampler(Sampler[Key]):
    """This process's share of a seeded permutation per epoch, whole batches only.

    Args:
        size: Tiles in the split.
        batch_size: Samples per batch and process.
        seed: Run seed.
        rank: This process's global rank.
        world: Number of processes.

    Every process gets the same number of whole batches (the remainder of the permutation is
    dropped), so distributed steps stay in lock-step.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1
    ) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world = rank, world
        self.per_rank = size // (batch_size * world) * batch_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` (Lightning calls this each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[Key]:
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator)[: self.per_rank * self.world]
        mine = order[self.rank :: self.world].tolist()
        for index in mine[self.start_batch * self.batch_size :]:
            yield int(index), self.epoch


class ShardSampler(Sampler[Key]):
    """A fixed list of tiles split across processes (padded by repetition to equal shares).

    Args:
        indices: Tile indices, in order.
        rank: This process's global rank.
        world: Number of processes.
    """

    def __init__(self, indices: Sequence[int], rank: int = 0, world: int = 1) -> None:
        padded = list(indices)
        while padded and len(padded) % world:
            padded.append(padded[len(padded) % len(indices)])
        self.indices = padded[rank::world]

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[Key]:
        return iter([(i, 0) for i in self.indices])


class ResumableLoader(DataLoader):
    """The training loader: counts the batches handed out and skips them again on resume.

    Lightning treats a loader with ``state_dict``/``load_state_dict`` as resumable: it stores
    the state in each checkpoint and loads it before iterating again. Each batch gets
    ``aug_seed`` (an ``int``) for the on-device augmentation.

    Args:
        dataset: The training dataset, read through :class:`Keyed`.
        sampler: The :class:`EpochSampler`.
        seed: Run seed.
        **kwargs: Further :class:`~torch.utils.data.DataLoader` arguments (workers...).
    """

    def __init__(self, dataset: Keyed, sampler: EpochSampler, seed: int, **kwargs: Any) -> None:
        super().__init__(
            dataset,
            batch_size=sampler.batch_size,
            sampler=sampler,
            drop_last=True,
            collate_fn=collate,
            **kwargs,
        )
        self.seed = seed
        self.consumed = 0
        self._pending: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        # A generator: the body runs at the first batch, after Lightning's set_epoch.
        sampler = self.sampler
        assert isinstance(sampler, EpochSampler)
        skip = 0
        if self._pending is not None and self._pending[0] == sampler.epoch:
            skip = min(self._pending[1], len(self))
        self._pending = None
        sampler.start_batch = skip
        self.consumed = skip
        for batch in super().__iter__():
            batch["aug_seed"] = mix_seed(self.seed, sampler.epoch, self.consumed, sampler.rank)
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Epoch and batches handed out so far in it."""
        sampler = self.sampler
        assert isinstance(sampler, EpochSampler)
        return {"epoch": sampler.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Skip ``consumed`` batches when epoch ``epoch`` is iterated next."""
        self._pending = (int(state["epoch"]), int(state["consumed"]))


class SplitDataModule(pl.LightningDataModule):
    """Training and validation loaders over two folder datasets (pretraining or change).

    Args:
        train_set: The training dataset (``folder``, ``split`` and ``__len__`` are used).
        val_set: The validation dataset, or ``None``.
        batch_size: Samples per batch and process.
        seed: Run seed.
        num_workers: Loader processes per training process.

    Attributes:
        val_roles: What each validation loader is for, in order (here ``["val"]``, or ``[]``
            without a validation set).
    """

    def __init__(
        self,
        train_set: Any,
        val_set: Any | None,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.train_set, self.val_set = train_set, val_set
        self.root = str(train_set.folder.root)
        self.batch_size, self.seed = batch_size, seed
        self.num_workers = num_workers
        self.val_roles: list[str] = ["val"] if val_set is not None else []

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader_args(self) -> dict[str, Any]:
        workers = self.num_workers
        return {
            "num_workers": workers,
            "persistent_workers": workers > 0,
            "pin_memory": torch.cuda.is_available(),
        }

    def train_dataloader(self) -> ResumableLoader:
        """The training loader (see :class:`ResumableLoader`)."""
        rank, world = self._rank_world()
        sampler = EpochSampler(len(self.train_set), self.batch_size, self.seed, rank, world)
        if sampler.per_rank == 0:
            raise DataError(
                self.root,
                f"at least --batch-size x processes = {self.batch_size * world} tiles in split "
                f"{self.train_set.split!r}",
                f"{len(self.train_set)} tiles",
                "Lower --batch-size or add tiles",
            )
        keyed = Keyed(self.train_set, self.seed)
        return ResumableLoader(keyed, sampler, self.seed, **self._loader_args())

    def val_dataloader(self) -> list[DataLoader]:
        """The validation loader (every tile once, split across processes)."""
        if self.val_set is None:
            return []
        rank, world = self._rank_world()
        shard = ShardSampler(range(len(self.val_set)), rank, world)
        return [self._eval_loader(self.val_set, shard)]

    def _eval_loader(self, dataset: Any, sampler: ShardSampler) -> DataLoader:
        args = self._loader_args()
        args["persistent_workers"] = False
        return DataLoader(
            Keyed(dataset, self.seed),
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate,
            **args,
        )


def check_tile_size(
    dataset: PretrainPairDataset | ChangeDataset, crop_size: int | None
) -> tuple[int, int]:
    """The ``(H, W)`` the model will see, checked to be multiples of 32.

    Raises:
        ConfigError: The tiles (or crops) are not multiples of 32, or crops exceed the tiles.
    """
    first = str(dataset.ids[0])
    info = read_info(dataset.folder.path("A", first))
    height, width = info.height, info.width
    if crop_size is not None:
        if crop_size > min(height, width):
            raise ConfigError(
                f"--crop-size {crop_size} is larger than the tiles ({height}x{width} px, "
                f"e.g. A/{first}); use at most {min(height, width) // 32 * 32}"
            )
        return crop_size, crop_size
    if height % 32 or width % 32:
        size = max(min(height, width) // 32 * 32, 32)
        raise ConfigError(
            f"{dataset.folder.path('A', first)}: the backbones need tiles whose sides are "
            f"multiples of 32, found {height}x{width} px; pass --crop-size {size} to train on "
            f"random {size}x{size} crops"
        )
    return height, width
