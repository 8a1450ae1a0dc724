"""Optimisers (SGD, AdamW, lightly's LARS) and the per-step warm-up + decay schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from lightly.models.utils import get_weight_decay_parameters
from lightly.utils.lars import LARS
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from sdrl.tasks.config import OptimizerName, ScheduleName, TrainConfig

__all__ = ["OptimSettings", "WarmupDecay", "build_optimizer", "build_scheduler", "param_groups"]


def param_groups(
    modules: Iterable[nn.Module],
    weight_decay: float,
    lr_scales: Sequence[tuple[nn.Module, float]] = (),
) -> list[dict]:
    """Trainable parameters in groups: with weight decay and without it (× lr scale).

    The split is lightly's (:func:`lightly.models.utils.get_weight_decay_parameters`): biases
    and the parameters of norm layers get no weight decay; with LARS a zero weight decay also
    excludes them from the trust-ratio adaptation (SimCLR / BYOL practice). Frozen parameters
    (momentum branches) are left out and a parameter shared by several modules is taken once,
    which lightly's function does not do.

    Args:
        modules: The modules whose parameters are optimised.
        weight_decay: Decay of the first group.
        lr_scales: ``(module, scale)`` pairs: the parameters of ``module`` get the learning
            rate × ``scale`` (``lr_scale`` in their group; e.g. a pretrained encoder at 0.1
            of the head's rate). Parameters of no listed module keep scale 1.

    Returns:
        Parameter groups for a ``torch.optim`` optimiser; groups with a scale other than 1
        carry ``lr_scale``, which :func:`build_optimizer` turns into the group's ``lr``.
    """
    decay, no_decay = get_weight_decay_parameters(list(modules))
    seen: set[int] = set()

    def keep(params: list[nn.Parameter]) -> list[nn.Parameter]:
        kept = []
        for param in params:
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                kept.append(param)
        return kept

    decay, no_decay = keep(decay), keep(no_decay)
    scale_of = {id(p): scale for module, scale in lr_scales for p in module.parameters()}
    groups: list[dict] = []
    for params, decay_value in ((decay, weight_decay), (no_decay, 0.0)):
        by_scale: dict[float, list[nn.Parameter]] = {1.0: []}
        for param in params:
            by_scale.setdefault(scale_of.get(id(param), 1.0), []).append(param)
        groups.append({"params": by_scale.pop(1.0), "weight_decay": decay_value})
        groups += [
            {"params": members, "weight_decay": decay_value, "lr_scale": scale}
            for scale, members in by_scale.items()
        ]
    return groups


def build_optimizer(
    name: OptimizerName,
    groups: list[dict],
    lr: float,
    momentum: float = 0.9,
) -> Optimizer:
    """The optimiser by name.

    Args:
        name: ``sgd`` (Nesterov-free momentum SGD), ``adamw`` or ``lars``
            (:class:`lightly.utils.lars.LARS`).
        groups: Parameter groups from :func:`param_groups` (their weight decay is kept; a
            group's ``lr_scale`` multiplies ``lr`` for its parameters).
        lr: Peak learning rate (the schedule scales it per step).
        momentum: Momentum of SGD and LARS.

    Returns:
        The optimiser.
    """
    groups = [{**g, "lr": lr * g["lr_scale"]} if "lr_scale" in g else dict(g) for g in groups]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd, adamw or lars")


@dataclass
class WarmupDecay:
    """Learning-rate factor of step ``s``: linear warm-up, then cosine, poly or constant.

    ``factor(s) = (s + 1) / warmup`` for ``s < warmup``; then with ``t = (s - warmup) /
    (total - warmup)`` clamped to ``[0, 1]``: cosine ``r + (1 - r)·(1 + cos πt)/2``, poly
    ``r + (1 - r)·(1 - t)^power``, constant ``1``, where ``r`` is ``min_ratio``.

    A callable object rather than a closure, so ``LambdaLR.state_dict`` saves its settings
    (plain numbers) with the checkpoint.

    Attributes:
        total: Total optimiser steps.
        warmup: Warm-up steps.
        kind: ``cosine``, ``poly`` or ``constant``.
        min_ratio: Final factor of cosine and poly.
        power: Exponent of poly.
    """

    total: int
    warmup: int
    kind: ScheduleName = "cosine"
    min_ratio: float = 0.0
    power: float = 0.9

    def __call__(self, step: int) -> float:
        """The factor of the peak learning rate at optimiser step ``step`` (0-based)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        span = max(self.total - self.warmup, 1)
        t = min(max((step - self.warmup) / span, 0.0), 1.0)
        if self.kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * t))
        else:
            shape = (1.0 - t) ** self.power
        return self.min_ratio + (1.0 - self.min_ratio) * shape


def build_scheduler(
    optimizer: Optimizer,
    total_steps: int,
    kind: ScheduleName = "cosine",
    warmup_steps: int | None = None,
    warmup_fraction: float = 0.05,
    min_ratio: float = 0.0,
    power: float = 0.9,
) -> LambdaLR:
    """A per-step ``LambdaLR`` with :class:`WarmupDecay`.

    Args:
        optimizer: The optimiser.
        total_steps: Optimiser steps of the whole run.
        kind: Decay after warm-up.
        warmup_steps: Warm-up steps; ``None`` uses ``warmup_fraction`` of ``total_steps``.
        warmup_fraction: Warm-up fraction when ``warmup_steps`` is ``None``.
        min_ratio: Final factor of cosine and poly.
        power: Exponent of poly.

    Returns:
        The scheduler; step it after every optimiser step.
    """
    total = max(int(total_steps), 1)
    if warmup_steps is None:
        warmup_steps = round(warmup_fraction * total)
    schedule = WarmupDecay(total, min(int(warmup_steps), total), kind, min_ratio, power)
    return LambdaLR(optimizer, schedule)


@dataclass(frozen=True)
class OptimSettings:
    """Optimiser and schedule settings of a run (see :class:`~sdrl.tasks.config.TrainConfig`).

    Attributes:
        optimizer: ``sgd``, ``adamw`` or ``lars``.
        lr: Peak learning rate.
        weight_decay: Weight decay of the weights (not of biases and norm layers).
        momentum: Momentum of SGD and LARS.
        schedule: ``cosine``, ``poly`` or ``constant`` after the warm-up.
        warmup_steps: Warm-up steps, or ``None`` for ``warmup_fraction``.
        warmup_fraction: Warm-up as a fraction of the total steps.
        min_lr_ratio: Final factor of cosine and poly.
        poly_power: Exponent of poly.
    """

    optimizer: OptimizerName = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    schedule: ScheduleName = "cosine"
    warmup_steps: int | None = None
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.0
    poly_power: float = 0.9

    @classmethod
    def from_config(cls, config: TrainConfig) -> OptimSettings:
        """The settings of a run's config (per-optimiser defaults resolved)."""
        return cls(
            config.optimizer,
            config.resolved_lr,
            config.resolved_weight_decay,
            config.sgd_momentum,
            config.schedule,
            config.warmup_steps,
            config.warmup_fraction,
            config.min_lr_ratio,
            config.poly_power,
        )

    def build(
        self,
        modules: Iterable[nn.Module],
        total_steps: int,
        lr_scales: Sequence[tuple[nn.Module, float]] = (),
    ) -> tuple[Optimizer, LambdaLR]:
        """The optimiser over ``modules`` and its per-step scheduler for ``total_steps``.

        ``lr_scales`` as in :func:`param_groups`.
        """
        groups = param_groups(modules, self.weight_decay, lr_scales)
        optimizer = build_optimizer(self.optimizer, groups, self.lr, self.momentum)
        scheduler = build_scheduler(
            optimizer,
            total_steps,
            self.schedule,
            self.warmup_steps,
            self.warmup_fraction,
            self.min_lr_ratio,
            self.poly_power,
        )
        return optimizer, scheduler
