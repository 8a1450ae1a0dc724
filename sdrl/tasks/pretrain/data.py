"""The data module of pretraining: training, probe-fit and validation loaders."""

from __future__ import annotations

import logging

import numpy as np
from torch.utils.data import DataLoader

from sdrl.data.datasets import PretrainPairDataset
from sdrl.tasks.loading import ShardSampler, SplitDataModule

__all__ = ["PretrainDataModule"]

log = logging.getLogger(__name__)


class PretrainDataModule(SplitDataModule):
    """Training, probe and validation loaders over a pretraining dataset folder.

    Args:
        root: The dataset folder.
        batch_size: Samples per batch and process.
        seed: Run seed.
        num_workers: Loader processes per training process.
        crop_size: Random crop of larger tiles, or ``None``.
        train_split: Split list for training.
        val_split: Split list for validation, or ``None``.
        probe_tiles: Training tiles whose regions fit the validation probe; 0 for no probe.

    Attributes:
        val_roles: What each validation loader is for, in order: ``"probe_fit"`` (training
            tiles for the probe) and ``"val"`` (the validation split).

    Raises:
        DataError: A split is missing or has fewer tiles than one batch per process.
    """

    def __init__(
        self,
        root: str,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        crop_size: int | None = None,
        train_split: str = "train",
        val_split: str | None = "val",
        probe_tiles: int = 256,
    ) -> None:
        train_set = PretrainPairDataset(root, split=train_split, crop_size=crop_size)
        val_set = None
        splits = train_set.folder.splits()
        if val_split is not None and val_split not in splits:
            log.warning(
                "%s has no split %r (splits: %s): validation is off, best.ckpt follows the "
                "training loss; pass --val-split NAME, or --val-split none to silence this",
                root,
                val_split,
                ", ".join(splits),
            )
        elif val_split is not None:
            val_set = PretrainPairDataset(root, split=val_split, crop_size=crop_size)
        super().__init__(train_set, val_set, batch_size, seed, num_workers)
        self.root = root
        self.probe_tiles = min(probe_tiles, len(self.train_set)) if self.val_set else 0
        self.val_roles = ["probe_fit", "val"] if self.probe_tiles else ["val"]
        if self.val_set is None:
            self.val_roles = []

    def val_dataloader(self) -> list[DataLoader]:
        """The probe-fit loader (training tiles, fixed) and the validation loader."""
        if self.val_set is None:
            return []
        rank, world = self._rank_world()
        loaders = []
        if self.probe_tiles:
            picks = np.linspace(0, len(self.train_set) - 1, self.probe_tiles).round()
            fit = ShardSampler(sorted(set(picks.astype(int).tolist())), rank, world)
            loaders.append(self._eval_loader(self.train_set, fit))
        return [*loaders, *super().val_dataloader()]
