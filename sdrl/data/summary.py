"""A human-readable summary of a dataset folder: splits, bands, statistics, class frequencies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.folder import DatasetFolder
from sdrl.data.io import read_info
from sdrl.data.samples import IGNORE_INDEX
from sdrl.errors import ConfigError

__all__ = ["DatasetSummary", "summarize"]


@dataclass
class DatasetSummary:
    """What :func:`summarize` found.

    Attributes:
        root: The folder.
        kind: ``change`` or ``pretrain``.
        splits: Tiles per split.
        shape: ``(C, H, W)`` of the first image.
        bands: Band names.
        mean: Per-band mean.
        std: Per-band standard deviation.
        classes: Class names.
        class_fraction: Fraction of labelled pixels per class over the sampled tiles.
        ignore_fraction: Fraction of ignored pixels over the sampled tiles.
        sampled_tiles: Tiles read for the fractions.
    """

    root: str
    kind: str
    splits: dict[str, int]
    shape: tuple[int, int, int]
    bands: list[str]
    mean: list[float]
    std: list[float]
    classes: list[str]
    class_fraction: list[float] = field(default_factory=list)
    ignore_fraction: float = 0.0
    sampled_tiles: int = 0

    def __str__(self) -> str:
        stats = zip(self.bands, self.mean, self.std, strict=True)
        lines = [
            f"dataset  {self.root}  ({self.kind})",
            "splits   " + ", ".join(f"{k}: {v}" for k, v in self.splits.items()),
            f"tiles    {self.shape[0]} bands x {self.shape[1]} x {self.shape[2]} px",
            "bands    " + " ".join(f"{b}({m:.3g}±{s:.3g})" for b, m, s in stats),
            f"classes  (pixel share over {self.sampled_tiles} tiles;"
            f" ignore {self.ignore_fraction:.1%})",
        ]
        lines += [
            f"  {i:>3} {name:<16} {frac:7.2%}"
            for i, (name, frac) in enumerate(zip(self.classes, self.class_fraction, strict=True))
        ]
        return "\n".join(lines)


def summarize(root: str, max_tiles: int = 64) -> DatasetSummary:
    """Summarise a change or pretraining dataset folder.

    Args:
        root: The dataset folder.
        max_tiles: Most tiles read to count class pixels.

    Returns:
        The :class:`DatasetSummary`.

    Raises:
        ConfigError: ``max_tiles`` below 1.
        DataError: Not a dataset folder, an invalid ``dataset.json``, or a split list naming
            tiles without files (they are not counted as tiles).
    """
    if isinstance(max_tiles, bool) or not isinstance(max_tiles, int) or max_tiles < 1:
        raise ConfigError(f"--max-tiles: expected an integer > 0, found {max_tiles!r}")
    folder = DatasetFolder(root)
    kind = folder.meta.kind if folder.meta is not None else "change"
    cls = PretrainPairDataset if kind == "pretrain" else ChangeDataset
    splits = {}
    for name in folder.splits():
        ids = folder.ids(name)
        folder.check(ids, [p for p in cls.mandatory if folder.has(p) or p == "A"])
        splits[name] = len(ids)
    dataset = cls(root, split="all")
    info = read_info(folder.path("A", str(dataset.ids[0])))
    counts = np.zeros(dataset.meta.num_classes + 1, dtype=np.int64)
    picked = np.unique(np.linspace(0, len(dataset) - 1, min(max_tiles, len(dataset))).astype(int))
    key = "mask_a" if kind == "pretrain" else "change"
    for index in picked.tolist():
        labels = dataset[index][key].numpy().ravel()
        labels = np.where(labels == IGNORE_INDEX, dataset.meta.num_classes, labels)
        counts += np.bincount(labels, minlength=len(counts))
    total = max(int(counts.sum()), 1)
    labelled = max(int(counts[:-1].sum()), 1)
    assert dataset.meta.mean is not None and dataset.meta.std is not None
    return DatasetSummary(
        root=str(root),
        kind=kind,
        splits=splits,
        shape=info.shape,
        bands=dataset.meta.bands,
        mean=dataset.meta.mean,
        std=dataset.meta.std,
        classes=dataset.meta.classes,
        class_fraction=(counts[:-1] / labelled).tolist(),
        ignore_fraction=float(counts[-1] / total),
        sampled_tiles=len(picked),
    )
