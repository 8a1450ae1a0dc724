"""Properties of the sdrl objective, a plain InfoNCE reference, background swap and DDP."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from sdrl.data.samples import IGNORE_INDEX
from sdrl.ssl.background_swap import background_swap, derangement, match_colour
from sdrl.ssl.region_terms import decoupling
from sdrl.ssl.sdrl_loss import SDRLLoss


def embeddings(b=4, k=5, d=16, seed=0, p_valid=0.75):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, k, d, generator=g)
    z2 = z1 + 0.5 * torch.randn(b, k, d, generator=g)
    v1 = torch.rand(b, k, generator=g) < p_valid
    v2 = torch.rand(b, k, generator=g) < p_valid
    v1[0, 0] = v2[0, 0] = True  # at least one anchor
    return z1, z2, v1, v2


def reference_info_nce(z1, z2, v1, v2, tau):
    """A plain loop over anchors: each view's anchor against every other valid region."""
    b, k, _ = z1.shape
    views = [F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)]
    valid = [v1, v2]
    candidates = [(v, i, c) for v in (0, 1) for i in range(b) for c in range(k) if valid[v][i, c]]
    terms = []
    for i in range(b):
        for c in range(k):
            if not (v1[i, c] and v2[i, c]):
                continue
            for v in (0, 1):
                q = views[v][i, c]
                pos = math.exp(float(q @ views[1 - v][i, c]) / tau)
                denom = sum(
                    math.exp(float(q @ views[u][j, m]) / tau)
                    for u, j, m in candidates
                    if (u, j, m) != (v, i, c)
                )
                terms.append(-math.log(pos / denom))
    return sum(terms) / len(terms)


def test_info_nce_matches_plain_loop():
    z1, z2, v1, v2 = embeddings(b=3, k=4, d=8, seed=1)
    for tau in (0.1, 0.5):
        out = SDRLLoss(temperature=tau, decouple_weight=0.0)(z1, z2, v1, v2)
        assert out["contrast"].item() == pytest.approx(reference_info_nce(z1, z2, v1, v2, tau))
        assert out["loss"].item() == pytest.approx(out["contrast"].item())
        assert out["num_anchors"].item() == (v1 & v2).sum().item()
        assert out["num_regions"].item() == v1.sum().item() + v2.sum().item()


def test_identical_views_score_lower_than_shuffled():
    z1, _, v1, _ = embeddings(b=8, k=4, d=32, seed=2, p_valid=1.0)
    loss_fn = SDRLLoss(decouple_weight=0.0)
    same = loss_fn(z1, z1.clone(), v1, v1)["loss"]
    shuffled = loss_fn(z1, z1[torch.roll(torch.arange(8), 1)], v1, v1)["loss"]
    assert same < shuffled


@pytest.mark.parametrize("form", ["contrastive", "predictor"])
@pytest.mark.parametrize("decouple", ["cos", "hinge", "orthogonal"])
def test_invariant_to_region_order(form, decouple):
    z1, z2, v1, v2 = embeddings(seed=3)
    perm = torch.tensor([3, 0, 4, 1, 2])
    loss_fn = SDRLLoss(form=form, decouple=decouple, margin=0.1)
    extra = {"p1": z1 * 2 + 1, "p2": z2 - 1} if form == "predictor" else {}
    a = loss_fn(z1, z2, v1, v2, **extra)
    permuted = {n: t[:, perm] for n, t in extra.items()}
    b = loss_fn(z1[:, perm], z2[:, perm], v1[:, perm], v2[:, perm], **permuted)
    for name in ("loss", "contrast", "decouple"):
        torch.testing.assert_close(a[name], b[name])


@pytest.mark.parametrize("form", ["contrastive", "predictor"])
def test_absent_regions_have_no_effect(form):
    z1, z2, v1, v2 = embeddings(seed=4)
    loss_fn = SDRLLoss(form=form, swap_weight=0.5, foreground_ids=[1, 2])

    def run(garbage):
        leaves = [t.clone() for t in (z1, z2, z1 + 0.1, z2 - 0.1, z1 * 0.9)]
        valids = [v1, v2, v1, v2, v1]
        if garbage is not None:
            for t, v in zip(leaves, valids, strict=True):
                t[~v] = garbage
        leaves = [t.requires_grad_() for t in leaves]
        extra = {"p1": leaves[2], "p2": leaves[3]} if form == "predictor" else {}
        out = loss_fn(leaves[0], leaves[1], v1, v2, z_swap=leaves[4], valid_swap=v1, **extra)
        out["loss"].backward()
        return out, [t.grad for t in leaves]

    base, base_grads = run(None)
    for garbage in (1e4, float("nan"), float("inf")):
        out, grads = run(garbage)
        for name in ("loss", "contrast", "decouple", "swap"):
            torch.testing.assert_close(out[name], base[name])
        for g, g0, v in zip(grads, base_grads, [v1, v2, v1, v2, v1], strict=True):
            if g is None:
                assert g0 is None
                continue
            torch.testing.assert_close(g, g0)
            assert torch.all(g[~v] == 0)


def assert_finite_with_grad(out, *leaves):
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    for leaf in leaves:
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all()


def test_edge_cases_are_finite():
    loss_fn = SDRLLoss(swap_weight=1.0, foreground_ids=[0])
    # One region only (K = 1), B = 1: the positive is the only other candidate.
    z1, z2 = torch.randn(1, 1, 8, requires_grad=True), torch.randn(1, 1, 8, requires_grad=True)
    v = torch.ones(1, 1, dtype=torch.bool)
    out = loss_fn(z1, z2, v, v, z_swap=z1.detach() * 2, valid_swap=v)
    assert out["contrast"].item() == pytest.approx(0.0, abs=1e-6)  # log(1) with one candidate
    assert out["decouple"].item() == 0.0 and out["skipped"].item() == 0.0
    assert_finite_with_grad(out, z1, z2)
    # B = 1 with several regions.
    z1, z2, v1, v2 = embeddings(b=1, k=4, seed=5)
    z1.requires_grad_()
    assert_finite_with_grad(loss_fn(z1, z2, v1, v2, z_swap=z2, valid_swap=v2), z1)


@pytest.mark.parametrize("case", ["no_pair", "one_view_absent", "all_absent"])
def test_batch_without_anchor_is_skipped_with_exact_zero(case):
    z1, z2, v1, v2 = embeddings(seed=6)
    if case == "no_pair":
        v1 = torch.zeros_like(v1)
        v1[:, 0] = True
        v2 = ~v1
    elif case == "one_view_absent":
        v2 = torch.zeros_like(v2)
    else:
        v1 = v2 = torch.zeros_like(v1)
    z1 = z1.clone()
    z1[~v1] = float("nan")
    z1.requires_grad_()
    out = SDRLLoss()(z1, z2, v1, v2)
    assert out["skipped"].item() == 1.0 and out["num_anchors"].item() == 0
    assert out["loss"].item() == 0.0 and not torch.signbit(out["loss"])
    assert out["loss"].requires_grad
    assert_finite_with_grad(out, z1)
    assert torch.all(z1.grad == 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"decouple_weight": -1.0}, "decouple_weight"),
        ({"swap_weight": -0.5}, "swap_weight"),
        ({"margin": 1.0}, "margin"),
        ({"form": "byol"}, "form"),
        ({"decouple": "l2"}, "decouple"),
        ({"anchors": "background"}, "anchors"),
        ({"swap_weight": 0.5}, "foreground_ids"),
        ({"anchors": "foreground"}, "foreground_ids"),
        ({"foreground_ids": []}, "foreground_ids"),
        ({"foreground_ids": [IGNORE_INDEX]}, "foreground_ids"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SDRLLoss(**kwargs)


def test_bad_inputs_raise():
    z1, z2, v1, v2 = embeddings()
    with pytest.raises(ValueError, match="z2 must be"):
        SDRLLoss()(z1, z2[:, :3], v1, v2)
    with pytest.raises(ValueError, match="bool"):
        SDRLLoss()(z1, z2, v1.float(), v2)
    with pytest.raises(ValueError, match="p1 and p2"):
        SDRLLoss(form="predictor")(z1, z2, v1, v2)
    with pytest.raises(ValueError, match="only used by"):
        SDRLLoss()(z1, z2, v1, v2, p1=z1, p2=z2)
    with pytest.raises(ValueError, match="z_swap"):
        SDRLLoss(swap_weight=1.0, foreground_ids=[1])(z1, z2, v1, v2)
    with pytest.raises(ValueError, match="< K"):
        SDRLLoss(swap_weight=1.0, foreground_ids=[9])(z1, z2, v1, v2, z_swap=z1, valid_swap=v1)


def test_decoupling_variants():
    valid = torch.ones(1, 3, dtype=torch.bool)
    orthogonal = torch.eye(3).unsqueeze(0) * 5
    identical = torch.ones(1, 3, 4)
    value = {}
    for name, z in (("orthogonal", orthogonal), ("identical", identical)):
        for mode in ("cos", "hinge", "orthogonal"):
            total, count = decoupling(z, valid, mode, margin=0.2)
            assert count.item() == 3
            value[name, mode] = total.item() / count.item()
    assert value["orthogonal", "orthogonal"] == pytest.approx(0.0)
    assert value["orthogonal", "cos"] == pytest.approx(1.0)
    assert value["orthogonal", "hinge"] == pytest.approx(0.0)
    assert value["identical", "cos"] == pytest.approx(2.0)
    assert value["identical", "hinge"] == pytest.approx(0.8)
    assert value["identical", "orthogonal"] == pytest.approx(1.0)
    # Opposite regions: the paper's form reaches its minimum 0.
    opposite = torch.stack([torch.ones(4), -torch.ones(4)]).unsqueeze(0)
    total, count = decoupling(opposite, torch.ones(1, 2, dtype=torch.bool), "cos")
    assert total.item() == pytest.approx(0.0, abs=1e-6) and count.item() == 1
    # Only pairs within an image and between valid regions count.
    valid = torch.tensor([[True, False, True], [True, False, False]])
    _, count = decoupling(torch.randn(2, 3, 4), valid, "cos")
    assert count.item() == 1


def test_predictor_form():
    z1, _, v1, _ = embeddings(seed=7, p_valid=1.0)
    target1, target2 = z1.clone().requires_grad_(), z1.clone().requires_grad_()
    p1, p2 = z1.clone().requires_grad_(), z1.clone().requires_grad_()
    loss_fn = SDRLLoss(form="predictor", decouple_weight=0.0)
    out = loss_fn(target1, target2, v1, v1, p1=p1, p2=p2)
    assert out["contrast"].item() == pytest.approx(0.0, abs=1e-5)
    shuffled = loss_fn(target1, target2[torch.roll(torch.arange(4), 1)], v1, v1, p1=p1, p2=p2)
    assert shuffled["contrast"] > 0.5
    shuffled["loss"].backward()
    assert p1.grad is not None and p1.grad.abs().sum() > 0
    for target in (target1, target2):  # the stop-gradient branch gets nothing
        assert target.grad is None or torch.all(target.grad == 0)


def test_foreground_anchors_and_swap_term():
    z1, z2, v1, v2 = embeddings(seed=8, p_valid=1.0)
    fg = [1, 3]
    out = SDRLLoss(anchors="foreground", foreground_ids=fg)(z1, z2, v1, v2)
    assert out["num_anchors"].item() == 2 * 4
    loss_fn = SDRLLoss(swap_weight=0.5, foreground_ids=fg)
    same = loss_fn(z1, z2, v1, v2, z_swap=z1.clone(), valid_swap=v1)
    assert same["swap"].item() == pytest.approx(0.0, abs=1e-6)
    moved = z1.clone()
    moved[:, [0, 2, 4]] = torch.randn(4, 3, 16)  # background changes do not count
    assert loss_fn(z1, z2, v1, v2, z_swap=moved, valid_swap=v1)["swap"].item() == pytest.approx(
        0.0, abs=1e-6
    )
    other = loss_fn(z1, z2, v1, v2, z_swap=torch.randn(4, 5, 16), valid_swap=v1)
    assert other["swap"] > 0.5
    assert other["loss"].item() == pytest.approx(
        other["contrast"].item() + other["decouple"].item() + 0.5 * other["swap"].item(), rel=1e-5
    )


# --- background swap -----------------------------------------------------------------------


def swap_batch(b=4, c=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(b, c, size, size, generator=g) * torch.rand(b, c, 1, 1, generator=g) * 3
    masks = torch.randint(0, 3, (b, size // 4, size // 4), generator=g)
    masks = masks.repeat_interleave(4, 1).repeat_interleave(4, 2)
    masks[:, :2] = IGNORE_INDEX
    return images, masks


def test_derangement_has_no_fixed_points():
    for n in range(2, 12):
        donors = derangement(n, torch.Generator().manual_seed(n))
        assert sorted(donors.tolist()) == list(range(n))
        assert not torch.any(donors == torch.arange(n))
    assert derangement(1).tolist() == [0]


def test_swap_keeps_foreground_and_takes_donor_background():
    images, masks = swap_batch()
    view = background_swap(images, masks, [1], feather_sigma=0.0, colour_match=False)
    fg = masks == 1
    donor_bg = ((masks != 1) & (masks != IGNORE_INDEX))[view.donors]
    for i in range(4):
        j = int(view.donors[i])
        assert j != i
        assert torch.equal(view.images[i][:, fg[i]], images[i][:, fg[i]])
        pasted = ~fg[i] & donor_bg[i]
        assert torch.equal(view.images[i][:, pasted], images[j][:, pasted])
        assert torch.equal(view.images[i][:, ~pasted], images[i][:, ~pasted])
    assert torch.equal(view.masks, torch.where(fg, masks, IGNORE_INDEX))
    assert view.masks.dtype == torch.int64


def test_swap_feathers_outwards_only():
    images, _ = swap_batch(b=2, c=2)
    masks = torch.zeros(2, 32, 32, dtype=torch.long)
    masks[:, 4:12, 4:12] = 1
    view = background_swap(images, masks, [1], feather_sigma=1.5, colour_match=False)
    fg = masks[0] == 1
    assert torch.equal(view.images[0][:, fg], images[0][:, fg])  # foreground exact
    far = torch.zeros(32, 32, dtype=torch.bool)
    far[20:, 20:] = True
    assert torch.equal(view.images[0][:, far], images[1][:, far])  # background from the donor
    seam = view.images[0][:, 12, 5:11]  # just outside the square: a blend of both
    assert not torch.equal(seam, images[0][:, 12, 5:11])
    assert not torch.equal(seam, images[1][:, 12, 5:11])


def test_colour_matched_background_statistics():
    images, masks = swap_batch(b=3, c=4, seed=1)
    view = background_swap(images, masks, [7], feather_sigma=0.0)  # receivers: no foreground
    background = masks != IGNORE_INDEX
    for i in range(3):
        j = int(view.donors[i])
        region = background[j]  # the donor's pasted background
        receiver = images[i][:, background[i]]
        pasted = view.images[i][:, region]
        torch.testing.assert_close(pasted.mean(1), receiver.mean(1), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            pasted.std(1, unbiased=False), receiver.std(1, unbiased=False), atol=1e-4, rtol=1e-4
        )
    flat = torch.ones(1, 2, 4, 4)
    out = match_colour(flat, torch.ones(1, 4, 4, dtype=torch.bool), flat * 3, flat[:, 0] > 0)
    assert torch.equal(out, flat * 3)  # a flat band is only shifted


def test_swap_is_deterministic_with_a_generator():
    images, masks = swap_batch(b=6)
    a = background_swap(images, masks, [1, 2], generator=torch.Generator().manual_seed(3))
    b = background_swap(images, masks, [1, 2], generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.donors, b.donors) and torch.equal(a.images, b.images)
    single = background_swap(images[:1], masks[:1], [1])
    assert torch.equal(single.images, images[:1]) and single.donors.tolist() == [0]
    with pytest.raises(ValueError, match="foreground_ids"):
        background_swap(images, masks, [])
    with pytest.raises(ValueError, match="same grid"):
        background_swap(images, masks[:, :8], [1])


# --- distributed ---------------------------------------------------------------------------

WORLD = 2
LOSS_KWARGS = {"decouple_weight": 0.5, "swap_weight": 0.5, "foreground_ids": [1]}
SCENARIOS = ("uneven", "empty_rank")


def ddp_batch(scenario):
    z1, z2, v1, v2 = embeddings(b=6, k=4, d=8, seed=11, p_valid=0.6)
    if scenario == "uneven":
        v1[3:, 2:] = False  # the second process holds fewer regions: counts differ by rank
    else:
        v2[3:] = False  # the second process has no anchor at all, only negatives
    zs = z1 + 0.3 * torch.randn(z1.shape, generator=torch.Generator().manual_seed(12))
    return z1, z2, v1, v2, zs


def ddp_run(tensors):
    """The loss on (a slice of) a batch; returns the named terms and the leaves' gradients."""
    z1, z2, v1, v2, zs = (t.clone() for t in tensors)
    leaves = [z1.requires_grad_(), z2.requires_grad_(), zs.requires_grad_()]
    out = SDRLLoss(**LOSS_KWARGS)(z1, z2, v1, v2, z_swap=zs, valid_swap=v1)
    out["loss"].backward()
    result = {name: value.detach() for name, value in out.items()}
    result["grads"] = [leaf.grad for leaf in leaves]
    return result


def ddp_worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        for scenario in SCENARIOS:
            tensors = ddp_batch(scenario)
            per = tensors[0].shape[0] // WORLD
            result = ddp_run([t[rank * per : (rank + 1) * per] for t in tensors])
            torch.save(result, os.path.join(out_dir, f"{scenario}{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gathered_loss_equals_single_process(tmp_path):
    mp.spawn(ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    for scenario in SCENARIOS:
        ranks = [torch.load(tmp_path / f"{scenario}{r}.pt") for r in range(WORLD)]
        tensors = ddp_batch(scenario)
        single = ddp_run(tensors)
        assert single["skipped"] == 0 and ranks[1]["num_regions"] > 0
        # DDP averages the processes' gradients: the mean of the rank losses is the batch
        # loss, and each rank's gradient is WORLD times its slice of the single-process one.
        for name in ("loss", "contrast", "decouple", "swap"):
            mean = sum(r[name] for r in ranks) / WORLD
            torch.testing.assert_close(mean, single[name], rtol=1e-5, atol=1e-6)
        assert all(r["num_anchors"] == single["num_anchors"] for r in ranks)
        per = tensors[0].shape[0] // WORLD
        for rank, result in enumerate(ranks):
            for grad, full in zip(result["grads"], single["grads"], strict=True):
                expected = full[rank * per : (rank + 1) * per]
                torch.testing.assert_close(grad / WORLD, expected, rtol=1e-5, atol=1e-6)
