"""Region-level probe at validation: do region embeddings tell the semantic classes apart?

Shape letters: ``B`` batch, ``K`` semantic classes (regions), ``D`` embedding dim, ``N`` regions.

Each present region of an image gives one row, its embedding (the backbone features pooled
over the region, from the method's ``region_embeddings``), labelled with its class id. The probe
is fitted on the regions of a fixed set of training tiles and scored on the regions of the
validation split, with scikit-learn: a cosine k-nearest-neighbour vote (default; no training,
seconds for tens of thousands of regions) or a logistic regression on standardised features.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

__all__ = ["RegionProbe", "Role"]

Role = Literal["fit", "eval"]


class RegionProbe:
    """Collects region embeddings and scores a class probe on them.

    Args:
        kind: ``"knn"`` (cosine k-NN) or ``"logreg"`` (logistic regression).
        neighbours: ``k`` of the k-NN.
        max_regions: Rows kept per role (the first ones), bounding memory and time.

    Example::

        probe = RegionProbe()
        probe.add("fit", z_train, valid_train)   # (B, K, D), (B, K)
        probe.add("eval", z_val, valid_val)
        accuracy = probe.score()                 # None when a role has no region
    """

    def __init__(
        self, kind: Literal["knn", "logreg"] = "knn", neighbours: int = 5, max_regions: int = 20000
    ) -> None:
        if kind not in ("knn", "logreg"):
            raise ValueError(f"kind must be 'knn' or 'logreg', found {kind!r}")
        if neighbours < 1 or max_regions < 1:
            raise ValueError("neighbours and max_regions must be positive")
        self.kind = kind
        self.neighbours = neighbours
        self.max_regions = max_regions
        self.reset()

    def reset(self) -> None:
        """Forget the collected regions."""
        self._rows: dict[str, list[np.ndarray]] = {"fit": [], "eval": []}
        self._labels: dict[str, list[np.ndarray]] = {"fit": [], "eval": []}
        self._count = {"fit": 0, "eval": 0}

    def count(self, role: Role) -> int:
        """Regions collected for ``role``."""
        return self._count[role]

    def full(self, role: Role) -> bool:
        """Whether ``role`` holds ``max_regions`` rows: embedding more tiles would be wasted."""
        return self._count[role] >= self.max_regions

    def add(self, role: Role, embeddings: Tensor, valid: Tensor) -> None:
        """Add the present regions of a batch.

        Args:
            role: ``"fit"`` (training tiles) or ``"eval"`` (validation tiles).
            embeddings: ``(B, K, D)`` region embeddings.
            valid: ``(B, K)`` bool presence; absent regions are skipped.
        """
        room = self.max_regions - self._count[role]
        if room <= 0:
            return
        k = embeddings.shape[1]
        keep = valid.bool().cpu().numpy()
        rows = embeddings.detach().float().cpu().numpy()[keep][:room]
        labels = np.broadcast_to(np.arange(k), keep.shape)[keep][:room]
        self._rows[role].append(rows)
        self._labels[role].append(labels)
        self._count[role] += len(rows)

    def score(self) -> float | None:
        """Accuracy of the probe fitted on the ``fit`` regions, on the ``eval`` regions.

        Returns:
            The fraction of validation regions whose class is predicted correctly, or ``None``
            when either role has no region or the fit regions hold a single class.
        """
        if not self._count["fit"] or not self._count["eval"]:
            return None
        x_fit = np.concatenate(self._rows["fit"])
        y_fit = np.concatenate(self._labels["fit"])
        x_eval = np.concatenate(self._rows["eval"])
        y_eval = np.concatenate(self._labels["eval"])
        if len(np.unique(y_fit)) < 2 or not (
            np.isfinite(x_fit).all() and np.isfinite(x_eval).all()
        ):
            return None
        if self.kind == "knn":
            model = KNeighborsClassifier(
                n_neighbors=min(self.neighbours, len(y_fit)), metric="cosine"
            )
        else:
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        model.fit(x_fit, y_fit)
        return float((model.predict(x_eval) == y_eval).mean())
