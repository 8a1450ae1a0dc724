"""The settings of a training run, checked once and saved as ``RUN/config.yaml``.

:class:`TrainConfig` holds what every training command shares (data, run folder, backbone,
steps, optimiser and schedule, devices, logging, resume); :class:`PretrainConfig` and
:class:`~sdrl.train.finetune_config.FinetuneConfig` add their own fields. Each field is one
flag of the command (same names, ``_`` for ``-``); option dicts (pretraining method options,
``--temperature``, ``--decouple-weight``...) are saved flat, next to the other keys, so that
the saved file is a valid ``--config`` for the same command.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import yaml

from sdrl.errors import ConfigError

__all__ = [
    "METHOD_NAMES",
    "METHOD_OPTIONS",
    "OptimizerName",
    "PretrainConfig",
    "ScheduleName",
    "TrainConfig",
    "default_lr",
    "default_weight_decay",
    "resolve_precision",
]

OptimizerName = Literal["sgd", "adamw", "lars"]
ScheduleName = Literal["cosine", "poly", "constant"]
ViewsKind = Literal["dates", "single"]
AugmentKind = Literal["full", "geometric", "none"]
ProbeKind = Literal["knn", "logreg", "none"]
LoggerKind = Literal["csv", "wandb"]

METHOD_NAMES = ("sdrl", "simclr", "moco", "byol", "detcon")
"""The methods of :data:`sdrl.ssl.methods.METHODS`, listed here for a light command line."""

METHOD_OPTIONS: dict[str, str] = {
    "temperature": "InfoNCE / NT-Xent temperature",
    "decouple": "decoupling variant: cos, hinge or orthogonal (sdrl)",
    "decouple_weight": "weight λ of the decoupling term (sdrl)",
    "margin": "hinge margin of the decoupling term (sdrl)",
    "swap_weight": "weight μ of the background-swap term; > 0 adds a third view (sdrl)",
    "foreground_ids": "foreground class ids, e.g. 4,5 (sdrl swap term and anchors)",
    "anchors": "cross-view anchors: all or foreground (sdrl)",
    "level": "pooled feature level: p2 (FPN) or c5 (sdrl)",
    "form": "loss form: contrastive or predictor (sdrl)",
    "target": "target of the predictor form: momentum or stopgrad (sdrl)",
    "rule": "region pooling rule (sdrl, detcon)",
    "hidden_dim": "hidden width of the projection head",
    "output_dim": "projection (embedding) dim",
    "momentum": "start momentum of the target branch (byol, moco, sdrl predictor form)",
    "memory_bank_size": "negatives kept in the memory bank (moco)",
    "variant": "DetCon variant: s (SimCLR-like) or b (BYOL-like) (detcon)",
    "fpn_channels": "channels of the FPN whose P2 is pooled (sdrl, level p2)",
}
"""Method options with a flag of their own; any other goes through ``--method-option K=V``."""

_DEFAULT_LR = {"sgd": 0.05, "adamw": 1e-3, "lars": 0.3}
_DEFAULT_WD = {"sgd": 1e-4, "adamw": 0.05, "lars": 1e-6}


def default_lr(optimizer: str) -> float:
    """The learning rate used when ``--lr`` is not given (absolute; not scaled by batch)."""
    return _DEFAULT_LR[optimizer]


def default_weight_decay(optimizer: str) -> float:
    """The weight decay used when ``--weight-decay`` is not given."""
    return _DEFAULT_WD[optimizer]


def resolve_precision(precision: str, accelerator: str) -> str:
    """Turn ``"auto"`` into a Lightning precision for the device.

    ``"auto"`` is ``"bf16-mixed"`` on a CUDA GPU that supports bfloat16 (no loss scaling, the
    float32 exponent range, so contrastive logits at low temperature do not overflow),
    ``"16-mixed"`` on older GPUs and ``"32-true"`` on CPU and other devices.

    Args:
        precision: A Lightning precision string or ``"auto"``.
        accelerator: The ``--accelerator`` value (``"auto"``, ``"cpu"``, ``"gpu"``...).

    Returns:
        The precision to pass to ``pl.Trainer``.
    """
    if precision != "auto":
        return precision
    import torch  # only here: the command line imports this module and stays light

    cuda = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if not cuda:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def _check_choice(name: str, value: Any, choices: Any) -> None:
    allowed = get_args(choices)
    if value not in allowed:
        found = f"{value!r}"
        raise ConfigError(f"--{name.replace('_', '-')}: expected one of {allowed}, found {found}")


def _check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    if value is None:
        return
    low_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low_ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"--{name.replace('_', '-')}: expected a number {bound}, found {value!r}")


@dataclass
class TrainConfig:
    """The settings every training run shares (``sdrl pretrain`` and ``sdrl finetune``).

    Each field is a flag of both commands (same name, ``_`` for ``-``). Subclasses add their
    own fields, say which settings must not change on ``--resume``
    (:attr:`RESUME_MUST_MATCH`) and which kind of checkpoint their run folder holds
    (:attr:`RUN_KIND`, the ``kind`` in ``checkpoint["sdrl"]``).

    Attributes:
        data: Dataset folder.
        out: Run folder (config.yaml, last.ckpt, best.ckpt, metrics.csv, wandb/).
        backbone: A registered backbone (``resnet18``, ``resnet50``, ``swin_t``...).
        max_epochs: Epochs to train; 100 when neither this nor ``max_steps`` is given.
        max_steps: Optimiser steps to train (wins over ``max_epochs`` when both are given).
        batch_size: Samples per process and step (before gradient accumulation).
        seed: Seed of the initialisation, data order and augmentation.
        optimizer: ``sgd``, ``adamw`` or ``lars`` (lightly's LARS).
        lr: Peak learning rate; per-optimiser default when ``None``.
        weight_decay: Weight decay (not applied to biases and norm layers).
        sgd_momentum: Momentum of SGD and LARS.
        warmup_steps: Linear warm-up steps; ``None`` uses ``warmup_fraction``.
        warmup_fraction: Warm-up as a fraction of the total steps.
        schedule: Decay after warm-up: ``cosine``, ``poly`` or ``constant``, applied per step.
        min_lr_ratio: Final learning rate as a fraction of ``lr`` (cosine and poly).
        poly_power: Exponent of the poly decay.
        grad_clip: Gradient norm clipping; ``None`` for none.
        precision: Lightning precision or ``auto`` (see :func:`resolve_precision`).
        accumulate_grad_batches: Batches whose gradients make one optimiser step.
        accelerator: ``auto``, ``cpu``, ``gpu``... (passed to ``pl.Trainer``).
        devices: ``auto``, a count or a list such as ``0,1`` (passed to ``pl.Trainer``).
        num_nodes: Machines (passed to ``pl.Trainer``).
        strategy: ``auto``, ``ddp``, ``ddp_spawn``... (passed to ``pl.Trainer``).
        num_workers: Data-loader processes per training process; ``None`` picks up to 4.
        crop_size: Random crop read from larger tiles (a multiple of 32).
        train_split: Split list used for training.
        val_split: Split list for validation; ``None`` for no validation.
        augment: ``full``, ``geometric`` (no photometric change) or ``none``.
        val_every: Validate every this many steps (and at the end); ``None``: each epoch.
        checkpoint_every: Write ``last.ckpt`` every this many steps (and each epoch, at the end).
        log_every: Log training metrics every this many steps.
        logger: ``csv`` (always on) or ``wandb`` (CSV plus Weights & Biases).
        wandb_online: Sync W&B online instead of the default offline mode.
        wandb_project: W&B project name.
        resume: Continue from ``out/last.ckpt``.
        overwrite: Start afresh in an ``out`` that already holds a run.
        deterministic: Ask PyTorch for deterministic algorithms (slower on GPU).
        progress_bar: Show Lightning's progress bar; ``None``: when stderr is a terminal.
    """

    RESUME_MUST_MATCH: ClassVar[tuple[str, ...]] = ("backbone",)
    RUN_KIND: ClassVar[str] = ""

    data: str
    out: str
    backbone: str | None = "resnet18"
    max_epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 32
    seed: int = 0
    optimizer: OptimizerName = "adamw"
    lr: float | None = None
    weight_decay: float | None = None
    sgd_momentum: float = 0.9
    warmup_steps: int | None = None
    warmup_fraction: float = 0.05
    schedule: ScheduleName = "cosine"
    min_lr_ratio: float = 0.0
    poly_power: float = 0.9
    grad_clip: float | None = None
    precision: str = "auto"
    accumulate_grad_batches: int = 1
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int | None = None
    crop_size: int | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    augment: AugmentKind = "full"
    val_every: int | None = None
    checkpoint_every: int = 500
    log_every: int = 10
    logger: LoggerKind = "csv"
    wandb_online: bool = False
    wandb_project: str = "sdrl"
    resume: bool = False
    overwrite: bool = False
    deterministic: bool = False
    progress_bar: bool | None = None

    def __post_init__(self) -> None:
        self.data, self.out = str(self.data), str(self.out)
        if self.val_split in ("", "none", "None"):
            self.val_split = None
        self.devices = str(self.devices)
        for name, choices in (
            ("optimizer", OptimizerName),
            ("schedule", ScheduleName),
            ("augment", AugmentKind),
            ("logger", LoggerKind),
        ):
            _check_choice(name, getattr(self, name), choices)
        for name in ("batch_size", "accumulate_grad_batches", "num_nodes"):
            _check_positive(name, getattr(self, name))
        for name in ("max_epochs", "max_steps", "checkpoint_every", "log_every", "val_every"):
            _check_positive(name, getattr(self, name))
        for name in ("lr", "grad_clip", "poly_power"):
            _check_positive(name, getattr(self, name))
        for name in ("weight_decay", "warmup_steps", "num_workers", "sgd_momentum"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"--warmup-fraction: expected [0, 1), found {self.warmup_fraction}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"--min-lr-ratio: expected [0, 1], found {self.min_lr_ratio}")
        if self.crop_size is not None and (self.crop_size < 32 or self.crop_size % 32):
            raise ConfigError(
                f"--crop-size: expected a multiple of 32 (backbones downsample by 32), "
                f"found {self.crop_size}"
            )
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")

    @property
    def run_dir(self) -> Path:
        """The run folder ``out``."""
        return Path(self.out)

    @property
    def workers(self) -> int:
        """Data-loader processes: ``num_workers``, or up to 4 by the CPU count."""
        if self.num_workers is not None:
            return self.num_workers
        return min(4, max((os.cpu_count() or 1) - 1, 0))

    @property
    def resolved_lr(self) -> float:
        """``lr`` or the optimiser's default."""
        return self.lr if self.lr is not None else default_lr(self.optimizer)

    @property
    def resolved_weight_decay(self) -> float:
        """``weight_decay`` or the optimiser's default."""
        if self.weight_decay is not None:
            return self.weight_decay
        return default_weight_decay(self.optimizer)

    def to_flat(self) -> dict[str, Any]:
        """The config as flag-name keys (``max-steps``): a valid ``--config`` of the command."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, dict):  # option dicts are inlined by subclasses
                out[f.name.replace("_", "-")] = value
        # Actions, not settings: a saved config starts a run; resuming is asked for each time.
        out["resume"] = out["overwrite"] = False
        return out

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_flat` as YAML (atomically)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(yaml.safe_dump(self.to_flat(), sort_keys=False))
        os.replace(tmp, path)


@dataclass
class PretrainConfig(TrainConfig):
    """Everything a pretraining run needs; see ``sdrl pretrain --help`` for each field.

    The shared fields are those of :class:`TrainConfig`; ``data`` is a pretraining dataset
    folder (A/, label/, optionally B/, label_B/) and ``val_split`` feeds the probe and the
    validation loss.

    Attributes:
        method: ``sdrl``, ``simclr``, ``moco``, ``byol`` or ``detcon``.
        weights: Initial backbone weights: a local file or sdrl export folder.
        views: ``dates`` (one view from A, one from B) or ``single`` (two views of A).
        probe: Region probe at validation: ``knn``, ``logreg`` or ``none``.
        probe_tiles: Training tiles whose regions the probe is fitted on.
        method_options: Keyword options of the method (``temperature``, ``level``...).
    """

    RESUME_MUST_MATCH: ClassVar[tuple[str, ...]] = ("method", "backbone")
    RUN_KIND: ClassVar[str] = "pretrain"

    backbone: str = "resnet18"
    method: str = "sdrl"
    weights: str | None = None
    views: ViewsKind = "dates"
    probe: ProbeKind = "knn"
    probe_tiles: int = 256
    method_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weights is not None:
            self.weights = str(self.weights)
        for name, choices in (("views", ViewsKind), ("probe", ProbeKind)):
            _check_choice(name, getattr(self, name), choices)
        _check_positive("probe_tiles", self.probe_tiles)

    def to_flat(self) -> dict[str, Any]:
        """The config as flag-name keys (``max-steps``), method options inlined: a ``--config``."""
        out = super().to_flat()
        options = dict(self.method_options)
        extra = {k: v for k, v in options.items() if k not in METHOD_OPTIONS}
        for key in METHOD_OPTIONS:
            if key in options:
                value = options[key]
                out[key.replace("_", "-")] = list(value) if isinstance(value, tuple) else value
        if extra:
            out["method-option"] = [f"{k}={yaml.safe_dump(v).strip()}" for k, v in extra.items()]
        return out
