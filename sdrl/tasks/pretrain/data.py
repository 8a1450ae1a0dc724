"""The data module of pretraining: training and validation loaders, and the probe-fit tiles."""

from __future__ import annotations

import logging

import numpy as np
from torch.utils.data import DataLoader

from sdrl.data.datasets import PretrainPairDataset
from sdrl.tasks.loading import ShardSampler, SplitDataModule

__all__ = ["PretrainDataModule"]

log = logging.getLogger(__name__)


class PretrainDataModule(SplitDataModule):
    """Training and validation loaders over a pretraining dataset folder, and the probe's tiles.

    The probe-fit tiles are not a validation loader: Lightning would read and embed them at
    every validation, while the probe is scored only at some
    (:class:`~sdrl.tasks.pretrain.module.PretrainModule`, ``probe_every``). The module asks
    for :meth:`probe_fit_dataloader` when it scores the probe.

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
        val_roles: What each validation loader is for: ``["val"]`` (the validation split), or
            ``[]`` without one.
        probe_tiles: Training tiles of :meth:`probe_fit_dataloader` (0 without validation).

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
        probe_tiles: int = 64,
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

    def probe_fit_dataloader(self) -> DataLoader | None:
        """This process's share of the probe-fit tiles, or ``None`` without a probe.

        The tiles are fixed for the run: ``probe_tiles`` spread evenly over the training split
        (the same at every validation, so probe accuracies are comparable across steps).
        """
        if not self.probe_tiles:
            return None
        rank, world = self._rank_world()
        picks = np.linspace(0, len(self.train_set) - 1, self.probe_tiles).round()
        fit = ShardSampler(sorted(set(picks.astype(int).tolist())), rank, world)
        return self._eval_loader(self.train_set, fit)
