"""The contract between a pretraining method and the training harness.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` image rows/columns, ``K`` semantic classes
(regions), ``D`` embedding dim, ``N`` embeddings (rows) of a batch.

A method owns everything between the augmented views and the loss: the backbone (the encoder
that is exported and finetuned later), necks, heads, momentum branches and the criterion. The
harness owns the data, the optimiser, the schedule and the logging; it calls
:meth:`PretrainMethod.forward` once per step and :meth:`PretrainMethod.momentum_update` after
each optimiser step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar, get_args

import torch
import torch.nn.functional as F
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor, nn

from sdrl.data.samples import IGNORE_INDEX
from sdrl.models.base import Backbone
from sdrl.ssl.pooling import PoolingRule, region_pool

__all__ = [
    "PretrainMethod",
    "check_choice",
    "check_int",
    "check_pooling",
    "check_real",
    "ema_update",
    "embedding_std",
    "frozen_copy",
    "momentum_at",
]

ModuleT = TypeVar("ModuleT", bound=nn.Module)

_SCHEDULE_STEPS = 1_000_000
"""Resolution of the progress in [0, 1] handed to lightly's step-based cosine schedule."""


def check_choice(name: str, value: Any, choices: Any) -> None:
    """Raise a ValueError unless ``value`` is one of ``choices`` (a ``Literal`` or a sequence)."""
    allowed = get_args(choices) or tuple(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; found {value!r}")


def check_int(name: str, value: Any, low: int = 1) -> None:
    """Raise a ValueError unless ``value`` is an integer (not a bool) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; found {value!r}")


def check_real(
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
) -> None:
    """Raise a ValueError unless ``value`` is a real number in ``[low, high]`` (``(low, high]``).

    Args:
        name: Option name for the message.
        value: The value to check.
        low: Lower bound.
        high: Upper bound (inclusive).
        low_open: Exclude ``low`` itself.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{']' if math.isfinite(high) else ')'}"
        raise ValueError(f"{name} must be a real number in {interval}; found {value!r}")


def check_pooling(rule: PoolingRule, min_fraction: float, min_area: float) -> None:
    """Validate the region-pooling options of :func:`~sdrl.ssl.pooling.region_pool` early."""
    check_choice("rule", rule, PoolingRule)
    check_real("min_fraction", min_fraction, 0.0, 1.0, low_open=True)
    check_real("min_area", min_area, 0.0, low_open=True)


def embedding_std(z: Tensor) -> Tensor:
    """Collapse monitor: std over rows of the L2-normalised embeddings, averaged over dims.

    Args:
        z: ``(N, D)`` embeddings (projections).

    Returns:
        A detached float32 scalar: about ``1/sqrt(D)`` for spread embeddings, 0 for collapsed
        ones; 0 when there are fewer than two rows (nothing to spread).
    """
    z = z.detach().float()
    if z.shape[0] < 2:
        return z.new_zeros(())
    return F.normalize(z, dim=-1).std(dim=0).mean()


def frozen_copy(module: ModuleT) -> ModuleT:
    """A deep copy of ``module`` without gradients: the start of a momentum (target) branch."""
    target = copy.deepcopy(module)
    deactivate_requires_grad(target)
    return target


def momentum_at(progress: float, start: float, end: float = 1.0) -> float:
    """The momentum of the target branch at ``progress``: cosine from ``start`` to ``end``.

    BYOL's schedule ``end - (end - start)·(cos(π·progress) + 1)/2``, through lightly's
    :func:`~lightly.utils.scheduler.cosine_schedule`.

    Args:
        progress: Training progress; clamped to ``[0, 1]``.
        start: Momentum at progress 0.
        end: Momentum at progress 1.

    Raises:
        ValueError: ``progress`` is not a finite number.
    """
    if not isinstance(progress, (int, float)) or not math.isfinite(progress):
        raise ValueError(f"progress must be a finite number in [0, 1]; found {progress!r}")
    step = round(min(max(float(progress), 0.0), 1.0) * _SCHEDULE_STEPS)
    return float(cosine_schedule(step, _SCHEDULE_STEPS, start, end))


@torch.no_grad()
def ema_update(pairs: Sequence[tuple[nn.Module, nn.Module]], momentum: float) -> None:
    """``target = m·target + (1 - m)·online`` for each ``(online, target)`` pair (parameters)."""
    for online, target in pairs:
        update_momentum(online, target, momentum)


def _check_finite(name: str, view: Tensor) -> None:
    if not bool(torch.isfinite(view).all()):
        nan, inf = int(torch.isnan(view).sum()), int(torch.isinf(view).sum())
        raise ValueError(
            f"{name} holds {nan} NaN and {inf} infinite values (of {view.numel()}); fix the "
            f"nodata handling or the normalisation statistics (dataset.json mean/std) of the data"
        )


class PretrainMethod(nn.Module):
    """A self-supervised objective around a backbone, called by the training harness.

    Subclasses set :attr:`name` and :attr:`needs_masks`, implement :meth:`forward`, and override
    :meth:`momentum_update` when they hold a momentum branch and :meth:`region_embeddings` when
    they pool another level than C5.

    Args:
        backbone: The encoder (:class:`~sdrl.models.base.Backbone`) to pretrain.
        num_classes: ``K``, semantic classes of the masks (class ids ``0..K-1``, plus
            :data:`~sdrl.data.samples.IGNORE_INDEX`); used by region pooling.

    Attributes:
        name: Registry name (``"sdrl"``, ``"simclr"``, ``"moco"``, ``"byol"``, ``"detcon"``,
            ``"supervised"``).
        needs_masks: Whether :meth:`forward` needs ``mask1`` and ``mask2``.
        skip_reason: Why :meth:`forward` may skip a batch (``skipped`` = 1), for the log.
        backbone: The encoder that is exported and finetuned later.
        num_classes: ``K``.
    """

    name: ClassVar[str]
    needs_masks: ClassVar[bool] = False
    skip_reason: ClassVar[str] = "no region is present in both views"
    backbone: Backbone

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        if not isinstance(backbone, Backbone):
            raise ValueError(
                f"backbone must be an sdrl.models Backbone (build_backbone), found "
                f"{type(backbone).__name__}"
            )
        check_int("num_classes", num_classes)
        if num_classes > IGNORE_INDEX:
            raise ValueError(f"num_classes must be <= {IGNORE_INDEX}; found {num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes

    def forward(
        self,
        view1: Tensor,
        view2: Tensor,
        mask1: Tensor | None = None,
        mask2: Tensor | None = None,
    ) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """One training step's objective.

        Args:
            view1: ``(B, C, H, W)`` float, the first augmented view.
            view2: ``(B, C, H, W)`` float, the second view (its own geometry).
            mask1: ``(B, H, W)`` int64 class ids of view 1 or ``IGNORE_INDEX``; ``None`` for
                methods without :attr:`needs_masks` (ignored by them when given).
            mask2: ``(B, H, W)`` int64 class ids of view 2.

        Returns:
            ``loss`` (scalar with gradient, never NaN), ``embedding_std`` (detached collapse
            monitor, see :func:`embedding_std`), ``skipped`` (detached, 1.0 when the batch had
            nothing to learn from and ``loss`` is an exact 0 with zero gradients) and further
            detached scalar terms for logging.

        Raises:
            ValueError: A view holds NaN or infinite values, or shapes do not match.
        """
        raise NotImplementedError

    def momentum_update(self, progress: float) -> None:
        """Move momentum (target) branches towards the online weights; a no-op without them.

        Args:
            progress: Training progress in ``[0, 1]`` (step / total steps), for the momentum
                schedule; call after each optimiser step.
        """

    def region_embeddings(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Backbone (pre-head) region embeddings for the validation probe.

        The default pools the backbone's last level C5 with the ``"soft"`` rule. Gradients
        follow the caller's grad mode.

        Args:
            images: ``(B, C, H, W)`` float images.
            masks: ``(B, H, W)`` integer class ids or ``IGNORE_INDEX``.

        Returns:
            ``(B, K, D)`` region means (zero rows where absent) and ``(B, K)`` bool presence.
        """
        self.check_views(images)
        return region_pool(self.backbone(images)[-1], masks, self.num_classes)

    def check_views(self, *views: Tensor) -> None:
        """Raise a ValueError unless the views are finite ``(B, C, H, W)`` floats of one shape."""
        for i, view in enumerate(views, start=1):
            if view.dim() != 4 or not view.dtype.is_floating_point:
                raise ValueError(
                    f"{self.name}: view{i} must be a (B, C, H, W) float tensor; found "
                    f"{tuple(view.shape)} {view.dtype}"
                )
            if view.shape != views[0].shape:
                raise ValueError(
                    f"{self.name}: the views must have one shape; found "
                    f"{tuple(views[0].shape)} and {tuple(view.shape)}"
                )
            _check_finite(f"view{i}", view)

    def require_masks(
        self, view: Tensor, mask1: Tensor | None, mask2: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """The two masks, checked against the view's ``(B, H, W)``.

        Raises:
            ValueError: A mask is missing, not integer or not on the view's grid.
        """
        if mask1 is None or mask2 is None:
            raise ValueError(
                f"method {self.name!r} pools semantic regions and needs mask1 and mask2; give "
                f"the dataset masks (label/) or pseudo-masks (e.g. k-means)"
            )
        expected = (view.shape[0], *view.shape[2:])
        for i, mask in enumerate((mask1, mask2), start=1):
            if mask.dtype.is_floating_point or mask.dtype == torch.bool:
                raise ValueError(f"mask{i} must hold integer class ids; found {mask.dtype}")
            if tuple(mask.shape) != expected:
                raise ValueError(
                    f"mask{i} must be (B, H, W) = {expected} like the views; found "
                    f"{tuple(mask.shape)}"
                )
        return mask1, mask2
