"""The semantic-decoupled (sdrl) objective on region embeddings.

Shape letters: ``B`` batch (this process), ``K`` regions (semantic classes), ``D`` embedding dim.

Region ``k`` of sample ``b`` in view 1 and region ``k`` of sample ``b`` in view 2 are the same
semantic class of the same place (two dates, or two augmentations of one image): a positive
pair when the region is present (valid) in both views. The terms live in
:mod:`sdrl.ssl.region_terms`; this module validates, combines and normalises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import lightly.utils.dist as lightly_dist
import torch
from torch import Tensor, nn
from torch import distributed as torch_dist

from sdrl.data.samples import IGNORE_INDEX
from sdrl.ssl.region_terms import (
    DecoupleMode,
    decoupling,
    predictor_consistency,
    region_info_nce,
    swap_consistency,
)

__all__ = ["AnchorRegions", "LossForm", "SDRLLoss"]

LossForm = Literal["contrastive", "predictor"]
"""``"contrastive"``: region InfoNCE; ``"predictor"``: BYOL/SimSiam stop-gradient form."""

AnchorRegions = Literal["all", "foreground"]
"""Which regions are anchors of the cross-view term: all, or the foreground classes only."""


def _check_embeddings(name: str, z: Tensor, valid: Tensor, ref: Tensor) -> None:
    if z.dim() != 3 or z.shape != ref.shape:
        raise ValueError(
            f"{name} must be (B, K, D) like z1 {tuple(ref.shape)}, found {tuple(z.shape)}"
        )
    if valid.dtype != torch.bool or valid.shape != z.shape[:2]:
        raise ValueError(
            f"the validity mask of {name} must be a (B, K) = {tuple(z.shape[:2])} bool tensor, "
            f"found {tuple(valid.shape)} {valid.dtype}"
        )


class SDRLLoss(nn.Module):
    """Cross-view region contrast + λ · decoupling + μ · background-swap consistency.

    ``loss = contrast + decouple_weight · decouple + swap_weight · swap``, each term a mean
    over its items in the whole batch (all processes under DDP):

    - ``contrast``: with ``form="contrastive"``, the symmetric region InfoNCE of
      :func:`~sdrl.ssl.region_terms.region_info_nce` (positive: the same region in the other
      view; negatives: every other valid region of the batch in both views, gathered across
      processes). With ``form="predictor"``, ``2 - 2·cos(p, sg(z))`` of
      :func:`~sdrl.ssl.region_terms.predictor_consistency`: the caller applies its predictor
      module (and, for BYOL, a momentum branch for ``z``) and passes the tensors.
    - ``decouple``: distinct valid regions of the same image pushed apart, in each view, on the
      online embeddings (``z`` in the contrastive form, ``p`` in the predictor form).
    - ``swap``: the foreground regions of a background-swapped view
      (:func:`~sdrl.ssl.background_swap.background_swap`) pulled to view 1's, view 1 held fixed.

    **Absent regions** (``valid`` false) take no part in any term. **Skipped batches**: when no
    region is valid in both views anywhere in the batch (all processes), there is nothing to
    contrast; ``loss`` is then an exact 0 that is still attached to the inputs' graph (zero
    gradients, so DDP and optimisers step normally) and ``skipped`` is 1, for the trainer to
    log. A term without items (no region pairs in an image, no foreground) is 0.

    **Distributed**: with ``gather_distributed`` under an initialised process group, each
    term's sum is divided by the item count of all processes and multiplied by the world size,
    so that DDP's gradient averaging yields exactly the gradient of the single-process loss on
    the concatenated batch, and the mean of the processes' ``loss`` values equals it. All
    processes must pass the same ``B`` and ``K`` (use ``drop_last=True``). Without a process
    group this is a no-op.

    Args:
        form: ``"contrastive"`` (default) or ``"predictor"``.
        temperature: InfoNCE temperature τ > 0 (DetCon's 0.1).
        decouple: Decoupling variant: ``"cos"`` (the paper's ``cos + 1``), ``"hinge"`` or
            ``"orthogonal"``, see :func:`~sdrl.ssl.region_terms.decoupling`.
        decouple_weight: λ >= 0 (SaDL weights its ``cos + 1`` push by 1).
        margin: Hinge margin in ``[-1, 1)``.
        swap_weight: μ >= 0; 0 (default) turns the background-swap term off. SaDL uses 0.5.
        foreground_ids: Class ids that count as foreground: the regions of the swap term and,
            with ``anchors="foreground"``, the only anchors. Required when ``swap_weight > 0``
            or ``anchors="foreground"``.
        anchors: ``"all"`` (default) or ``"foreground"``: restrict the cross-view anchors to
            the foreground classes (background regions still serve as negatives).
        gather_distributed: Gather negatives and counts across processes under DDP.

    Raises:
        ValueError: An argument is out of range or inconsistent.

    Example::

        loss_fn = SDRLLoss(temperature=0.1, decouple_weight=1.0)
        terms = loss_fn(z1, z2, valid1, valid2)  # (B, K, D) x2, (B, K) x2
        terms["loss"].backward()
    """

    def __init__(
        self,
        *,
        form: LossForm = "contrastive",
        temperature: float = 0.1,
        decouple: DecoupleMode = "cos",
        decouple_weight: float = 1.0,
        margin: float = 0.0,
        swap_weight: float = 0.0,
        foreground_ids: Sequence[int] | None = None,
        anchors: AnchorRegions = "all",
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        if form not in get_args(LossForm):
            raise ValueError(f"form must be one of {get_args(LossForm)}, found {form!r}")
        if decouple not in get_args(DecoupleMode):
            raise ValueError(
                f"decouple must be one of {get_args(DecoupleMode)}, found {decouple!r}"
            )
        if anchors not in get_args(AnchorRegions):
            raise ValueError(f"anchors must be one of {get_args(AnchorRegions)}, found {anchors!r}")
        if not temperature > 0.0:
            raise ValueError(f"temperature must be > 0, found {temperature}")
        if not decouple_weight >= 0.0:
            raise ValueError(f"decouple_weight (λ) must be >= 0, found {decouple_weight}")
        if not swap_weight >= 0.0:
            raise ValueError(f"swap_weight (μ) must be >= 0, found {swap_weight}")
        if not -1.0 <= margin < 1.0:
            raise ValueError(f"margin must lie in [-1, 1), found {margin}")
        ids = [int(i) for i in foreground_ids] if foreground_ids is not None else None
        if ids is not None and (not ids or any(i < 0 or i == IGNORE_INDEX for i in ids)):
            raise ValueError(
                f"foreground_ids must be a non-empty list of class ids >= 0 other than the "
                f"ignore index {IGNORE_INDEX}, found {foreground_ids}"
            )
        if ids is None and (swap_weight > 0 or anchors == "foreground"):
            raise ValueError(
                "foreground_ids are needed when swap_weight > 0 or anchors='foreground'"
            )
        if gather_distributed and not torch_dist.is_available():
            raise ValueError("gather_distributed=True needs a torch built with distributed")
        self.form = form
        self.temperature = temperature
        self.decouple = decouple
        self.decouple_weight = decouple_weight
        self.margin = margin
        self.swap_weight = swap_weight
        self.foreground_ids = ids
        self.anchors = anchors
        self.gather_distributed = gather_distributed

    def _foreground(self, k: int, device: torch.device) -> Tensor:
        """``(K,)`` bool, the foreground classes."""
        fg = torch.zeros(k, dtype=torch.bool, device=device)
        if self.foreground_ids is not None:
            if max(self.foreground_ids) >= k:
                raise ValueError(f"foreground_ids {self.foreground_ids} must be < K = {k} regions")
            fg[self.foreground_ids] = True
        return fg

    def forward(
        self,
        z1: Tensor,
        z2: Tensor,
        valid1: Tensor,
        valid2: Tensor,
        *,
        p1: Tensor | None = None,
        p2: Tensor | None = None,
        z_swap: Tensor | None = None,
        valid_swap: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Compute the objective and its named terms.

        Args:
            z1: ``(B, K, D)`` region embeddings of view 1 (projections; in the predictor form
                the targets, stop-gradient applied here).
            z2: ``(B, K, D)`` region embeddings of view 2.
            valid1: ``(B, K)`` bool, regions present in view 1 (from
                :func:`~sdrl.ssl.pooling.region_pool`).
            valid2: ``(B, K)`` bool, regions present in view 2.
            p1: ``(B, K, D)`` predictor outputs of view 1; required by the predictor form.
            p2: ``(B, K, D)`` predictor outputs of view 2; required by the predictor form.
            z_swap: ``(B, K, D)`` online embeddings of the background-swapped view (the
                predictor output in the predictor form); required when ``swap_weight > 0``.
            valid_swap: ``(B, K)`` bool presence in the swapped view.

        Returns:
            ``loss`` (scalar with gradient) and, detached for logging: ``contrast``,
            ``decouple``, ``swap`` (unweighted term values), ``num_anchors`` (regions valid in
            both views, all processes), ``num_regions`` (valid regions of both views, this
            process), ``skipped`` (1.0 when the batch had no anchor, else 0.0).

        Raises:
            ValueError: Shapes or dtypes do not match, or an input the configuration needs is
                missing.
        """
        _check_embeddings("z1", z1, valid1, z1)
        _check_embeddings("z2", z2, valid2, z1)
        inputs = [(z1, valid1), (z2, valid2)]
        online = [z1, z2]
        if self.form == "predictor":
            if p1 is None or p2 is None:
                raise ValueError("form='predictor' needs the predictor outputs p1 and p2")
            _check_embeddings("p1", p1, valid1, z1)
            _check_embeddings("p2", p2, valid2, z1)
            inputs += [(p1, valid1), (p2, valid2)]
            online = [p1, p2]
        elif p1 is not None or p2 is not None:
            raise ValueError("p1 and p2 are only used by form='predictor'")
        if (z_swap is None) != (valid_swap is None):
            raise ValueError("z_swap and valid_swap must be given together")
        if self.swap_weight > 0 and z_swap is None:
            raise ValueError("swap_weight > 0 needs z_swap and valid_swap")
        fg = self._foreground(z1.shape[1], z1.device)
        anchors = valid1 & valid2
        if self.anchors == "foreground":
            anchors = anchors & fg
        if self.form == "contrastive":
            contrast = region_info_nce(
                z1, z2, valid1, valid2, anchors, self.temperature, self.gather_distributed
            )
        else:
            assert p1 is not None and p2 is not None
            contrast = predictor_consistency(p1, p2, z1, z2, anchors)
        d1 = decoupling(online[0], valid1, self.decouple, self.margin)
        d2 = decoupling(online[1], valid2, self.decouple, self.margin)
        swap = (contrast[0].new_zeros(()), anchors.new_zeros((), dtype=torch.long))
        if z_swap is not None and valid_swap is not None:
            _check_embeddings("z_swap", z_swap, valid_swap, z1)
            swap = swap_consistency(z_swap, z1, valid1 & valid_swap & fg)
            inputs.append((z_swap, valid_swap))
        totals = [contrast[0], d1[0] + d2[0], swap[0]]
        counts = torch.stack([contrast[1], d1[1] + d2[1], swap[1]]).to(torch.float32)

        world = 1
        if self.gather_distributed and lightly_dist.world_size() > 1:
            torch_dist.all_reduce(counts)
            world = lightly_dist.world_size()
        num_anchors, num_pairs, num_swap = counts.tolist()
        skipped = num_anchors == 0
        # An exact zero tied to every input's graph (absent slots are selected away, so garbage
        # there cannot turn it into NaN): a skipped term still back-propagates zeros.
        zero = torch.stack([torch.where(v.unsqueeze(-1), z, 0.0).float().sum() for z, v in inputs])
        zero = zero.sum() * 0.0 + 0.0  # + 0.0: a clean +0, not -0
        terms = {}
        for name, total, count in zip(
            ("contrast", "decouple", "swap"),
            totals,
            (2 * num_anchors, num_pairs, num_swap),
            strict=True,
        ):
            terms[name] = zero if skipped or count == 0 else total.float() * (world / count)
        loss = (
            terms["contrast"]
            + self.decouple_weight * terms["decouple"]
            + self.swap_weight * terms["swap"]
        )
        out = {name: value.detach() for name, value in terms.items()}
        out["loss"] = loss
        out["num_anchors"] = counts[0]
        out["num_regions"] = (valid1.sum() + valid2.sum()).float()
        out["skipped"] = counts.new_tensor(float(skipped))
        return out
