"""The settings of a pretraining run (``sdrl pretrain``): the one place that names its options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from sdrl.models.names import BACKBONE_NAMES
from sdrl.tasks.config import (
    OptionSpec,
    OptionTable,
    TrainConfig,
    _check_positive,
    option,
)

__all__ = ["METHOD_NAMES", "METHOD_OPTIONS", "MethodName", "PretrainConfig"]

MethodName = Literal["sdrl", "simclr", "moco", "byol", "detcon", "supervised"]
METHOD_NAMES: tuple[str, ...] = get_args(MethodName)
"""The methods of :data:`sdrl.ssl.methods.METHODS` (a test checks that they agree)."""

ViewsKind = Literal["dates", "single"]
ProbeKind = Literal["knn", "logreg", "none"]

METHOD_OPTIONS: dict[str, OptionSpec] = {
    "temperature": OptionSpec("InfoNCE / NT-Xent temperature", float),
    "decouple": OptionSpec("decoupling variant (sdrl)", str, ("cos", "hinge", "orthogonal")),
    "decouple_weight": OptionSpec("weight λ of the decoupling term (sdrl)", float),
    "margin": OptionSpec("hinge margin of the decoupling term (sdrl)", float),
    "swap_weight": OptionSpec(
        "weight μ of the background-swap term; > 0 adds a third view (sdrl)", float
    ),
    "foreground_ids": OptionSpec(
        "foreground class ids, e.g. 4,5 (sdrl swap term and anchors)", list
    ),
    "anchors": OptionSpec("cross-view anchors (sdrl)", str, ("all", "foreground")),
    "level": OptionSpec(
        "pooled or classified feature level: FPN P2 or C5 (sdrl, supervised)", str, ("p2", "c5")
    ),
    "form": OptionSpec("loss form (sdrl)", str, ("contrastive", "predictor")),
    "target": OptionSpec("target of the predictor form (sdrl)", str, ("momentum", "stopgrad")),
    "rule": OptionSpec(
        "region pooling rule (sdrl, detcon)", str, ("soft", "majority", "min_fraction")
    ),
    "hidden_dim": OptionSpec("hidden width of the projection head", int),
    "output_dim": OptionSpec("projection (embedding) dim", int),
    "momentum": OptionSpec(
        "start momentum of the target branch (byol, moco, sdrl predictor form)", float
    ),
    "memory_bank_size": OptionSpec("negatives kept in the memory bank (moco)", int),
    "variant": OptionSpec("DetCon variant: SimCLR-like or BYOL-like (detcon)", str, ("s", "b")),
    "fpn_channels": OptionSpec(
        "channels of the FPN whose P2 is used (sdrl, supervised; level p2)", int
    ),
}
"""Method options with a flag of their own; any other goes through ``--method-option K=V``."""


@dataclass
class PretrainConfig(TrainConfig):
    """Everything a pretraining run needs; see ``sdrl pretrain --help`` for each field.

    The shared fields are those of :class:`~sdrl.tasks.config.TrainConfig`; ``data`` is a
    pretraining dataset folder (A/, label/, optionally B/, label_B/) and ``val_split`` feeds
    the probe and the validation loss. ``method_options`` holds the method's keyword options
    (:data:`METHOD_OPTIONS` and any other the method takes).

    The validation defaults keep validation under a tenth of a default run (a validation per
    epoch). Every validation logs ``val/loss``; the region probe, which picks ``best.ckpt``,
    embeds its fit tiles and the validation split on both dates, so it runs at the first
    validation (a baseline), every ``probe_every``-th (5th) and the last one, fitted on
    ``probe_tiles`` (64) training tiles: about as many regions as a validation split of 70
    tiles gives. On 700
    13-band tiles of 128 px (19 steps per epoch, 2 CPU cores) validation takes 7 % of a
    default run, against 20 % with the probe on 256 tiles at every validation; 64 tiles score
    about 1 point below 256 (0.927 against 0.941 on the same weights) at 40 % of the probe's
    cost (experiments/BENCHMARKS.md, "Validation").
    """

    RESUME_MUST_MATCH: ClassVar[tuple[str, ...]] = ("method", "backbone")
    RUN_KIND: ClassVar[str] = "pretrain"
    OPTION_TABLES: ClassVar[dict[str, OptionTable]] = {
        "method_options": OptionTable(
            "--method-option",
            "method options (each method's default when omitted)",
            METHOD_OPTIONS,
            "min_area=2",
        )
    }

    backbone: str = option(
        "resnet18", f"backbone: {', '.join(BACKBONE_NAMES)}", group="model", metavar="NAME"
    )
    method: MethodName = option("sdrl", "pretraining method", group="model")
    weights: str | None = option(
        None,
        "initial backbone weights: a local state dict, checkpoint, .safetensors or sdrl export; "
        "3-band weights are adapted to the data's band count",
        group="model",
        metavar="PATH",
    )
    views: ViewsKind = option(
        "dates", "dates: view 1 from A, view 2 from B; single: two views of A", group="data"
    )
    probe: ProbeKind = option(
        "knn", "region probe at validation", group="validation, checkpoints and logs"
    )
    probe_tiles: int = option(
        64, "training tiles the probe is fitted on", group="validation, checkpoints and logs"
    )
    probe_every: int = option(
        5,
        "score the probe at the first, every N-th and the last validation (the others log "
        "val/loss only; best.ckpt follows the probe)",
        group="validation, checkpoints and logs",
        metavar="N",
    )
    method_options: dict[str, Any] = option(default_factory=dict, flag=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weights is not None:
            self.weights = str(self.weights)
        _check_positive("probe_tiles", self.probe_tiles)
        _check_positive("probe_every", self.probe_every)
