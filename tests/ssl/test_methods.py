"""Pretraining methods: the harness contract, gradients, momentum branches, edge cases."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from sdrl.data.samples import IGNORE_INDEX
from sdrl.models import build_backbone
from sdrl.ssl.methods import METHODS, build_method, method_names, method_options
from sdrl.ssl.methods.base import embedding_std, momentum_at
from sdrl.ssl.methods.detcon import DetConMethod, fill_absent
from sdrl.ssl.methods.heads import apply_to_valid, projection_head

B, K, SIZE, BANDS = 4, 4, 64, 4
SMALL = {"hidden_dim": 32, "output_dim": 16}
P2 = {"fpn_channels": 16, **SMALL}
BYOL_FORM = {"form": "predictor", "predictor_hidden_dim": 32}
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "sdrl": ("sdrl", P2),
    "sdrl-c5": ("sdrl", {"level": "c5", **SMALL}),
    "sdrl-swap": ("sdrl", {"swap_weight": 0.5, "foreground_ids": [1], **P2}),
    "sdrl-byol": ("sdrl", {**BYOL_FORM, **P2}),
    "sdrl-simsiam": ("sdrl", {"level": "c5", "target": "stopgrad", **BYOL_FORM, **SMALL}),
    "sdrl-byol-swap": ("sdrl", {"swap_weight": 1.0, "foreground_ids": [0, 2], **BYOL_FORM, **P2}),
    "simclr": ("simclr", SMALL),
    "moco": ("moco", {"memory_bank_size": 32, **SMALL}),
    "byol": ("byol", {"predictor_hidden_dim": 32, **SMALL}),
    "detcon": ("detcon", SMALL),
    "detcon-b": ("detcon", {"variant": "b", "predictor_hidden_dim": 32, **SMALL}),
}
MOMENTUM = ["sdrl-byol", "sdrl-byol-swap", "moco", "byol", "detcon-b"]


def make(config: str, seed: int = 0):
    name, options = CONFIGS[config]
    torch.manual_seed(seed)
    return build_method(name, build_backbone("resnet_tiny", BANDS), K, **options)


def batch(seed: int = 0):
    """Two views (view 2 = flipped view 1 + noise) with quadrant masks: every class in each view."""
    g = torch.Generator().manual_seed(seed)
    view1 = torch.randn(B, BANDS, SIZE, SIZE, generator=g)
    view2 = view1.flip(-1) + 0.1 * torch.randn(B, BANDS, SIZE, SIZE, generator=g)
    half = SIZE // 2
    mask1 = torch.empty(B, SIZE, SIZE, dtype=torch.long)
    for i in range(B):
        ids = torch.randperm(K, generator=g)
        for q, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            mask1[i, r * half : (r + 1) * half, c * half : (c + 1) * half] = ids[q]
    return view1, view2, mask1, mask1.flip(-1)


def params(method: nn.Module, target: bool):
    return [(n, p) for n, p in method.named_parameters() if n.startswith("target_") == target]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_forward_contract_and_gradients(config):
    method = make(config)
    out = method(*batch())
    loss = out["loss"]
    assert loss.dim() == 0 and loss.requires_grad and torch.isfinite(loss)
    for key in ("embedding_std", "skipped"):
        assert key in out
    for key, value in out.items():
        assert value.dim() == 0 and torch.isfinite(value), key
        if key != "loss":
            assert not value.requires_grad, key
    assert 0.05 < float(out["embedding_std"]) < 1.0
    assert float(out["skipped"]) == 0.0
    loss.backward()
    # No exemptions: the sdrl FPN drops its unused P3-P5 output convolutions, so every online
    # parameter takes part (DDP without find_unused_parameters).
    for name, p in params(method, target=False):
        assert p.requires_grad, name
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    for name, p in params(method, target=True):
        assert not p.requires_grad and p.grad is None, name
    assert bool(params(method, target=True)) == (config in MOMENTUM)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_momentum_update_moves_target_towards_online(config):
    method = make(config)
    online = {n.removeprefix("target_"): p for n, p in params(method, target=False)}
    targets = params(method, target=True)
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    opt = torch.optim.SGD([p for _, p in params(method, target=False)], lr=0.5)
    method(*batch())["loss"].backward()
    opt.step()

    def distance():
        pairs = [(p, online[n.removeprefix("target_")]) for n, p in targets]
        return sum(float((t - o).detach().norm()) for t, o in pairs)

    far = distance()
    method.momentum_update(1.0)  # momentum 1: the target stays
    assert distance() == far
    method.momentum_update(0.0)
    if config not in MOMENTUM:
        return
    assert distance() < far
    moved = [n for n, p in targets if not torch.equal(p, before[n])]
    assert any(n.startswith("target_backbone.") for n in moved)


def test_sdrl_two_steps_reduce_loss():
    method = make("sdrl")
    data = batch()
    opt = torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = method(*data)["loss"]
        losses.append(float(loss.detach()))
        loss.backward()
        opt.step()
    assert losses[2] < losses[0]


@pytest.mark.parametrize(("config", "dim"), [("sdrl", 16), ("sdrl-c5", 64), ("simclr", 64)])
def test_region_embeddings(config, dim):
    method = make(config)
    view1, _, mask1, _ = batch()
    z, valid = method.region_embeddings(view1, mask1)
    assert z.shape == (B, K, dim) and valid.shape == (B, K) and bool(valid.all())


@pytest.mark.parametrize("config", ["sdrl-swap", "sdrl-byol-swap"])
def test_sdrl_swap_term(config):
    out = make(config)(*batch())
    assert float(out["swap"]) > 0
    assert float(make("sdrl")(*batch())["swap"]) == 0


def test_sdrl_identical_views_lower_contrast_than_shuffled_masks():
    method = make("sdrl")
    view1, _, mask1, _ = batch()
    with torch.no_grad():
        same = method(view1, view1, mask1, mask1)["contrast"]
        shuffled = method(view1, view1, mask1, (mask1 + 1) % K)["contrast"]
    assert same < shuffled


@pytest.mark.parametrize("config", ["sdrl", "sdrl-swap", "detcon"])
def test_invariant_to_the_order_of_class_ids(config):
    method = make(config)
    view1, view2, mask1, mask2 = batch()
    perm = torch.tensor([2, 1, 3, 0])  # keeps the foreground class 1 of "sdrl-swap"
    with torch.no_grad():
        torch.manual_seed(3)  # the same donors for the background swap
        a = method(view1, view2, mask1, mask2)
        torch.manual_seed(3)
        b = method(view1, view2, perm[mask1], perm[mask2])
    for key in ("loss", "contrast", "decouple", "swap"):
        if key in a:
            assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-6), key


@pytest.mark.parametrize("config", ["sdrl", "sdrl-byol", "detcon"])
def test_one_class_and_empty_masks(config):
    method = make(config)
    view1, view2, _, _ = batch()
    one = torch.zeros(B, SIZE, SIZE, dtype=torch.long)
    out = method(view1, view2, one, one)
    assert torch.isfinite(out["loss"]) and float(out["skipped"]) == 0
    if "decouple" in out:
        assert float(out["decouple"]) == 0  # one region per image: no pair to push apart
    empty = torch.full_like(one, IGNORE_INDEX)
    out = method(view1, view2, empty, empty)
    assert float(out["skipped"]) == 1 and float(out["loss"].detach()) == 0
    out["loss"].backward()
    grads = [p.grad for _, p in params(method, target=False) if p.grad is not None]
    assert all(torch.isfinite(g).all() and not g.any() for g in grads)


@pytest.mark.parametrize("config", ["sdrl", "simclr", "detcon"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_views_raise(config, bad):
    method = make(config)
    view1, view2, mask1, mask2 = batch()
    view2[1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match=r"view2 holds (1 NaN|0 NaN and 1 infinite)"):
        method(view1, view2, mask1, mask2)


@pytest.mark.parametrize("config", ["sdrl", "detcon"])
def test_mask_methods_need_masks(config):
    view1, view2, mask1, _ = batch()
    with pytest.raises(ValueError, match="needs mask1 and mask2"):
        make(config)(view1, view2, mask1, None)
    with pytest.raises(ValueError, match="mask2 must be"):
        make(config)(view1, view2, mask1, mask1[:, :32])


def test_global_methods_ignore_masks():
    method = make("simclr")
    view1, view2, mask1, mask2 = batch()
    torch.manual_seed(1)
    a = method(view1, view2, mask1, mask2)["loss"]
    b = method(view1, view2)["loss"]
    assert torch.allclose(a, b)


def test_fill_absent_copies_present_regions():
    z = torch.arange(2 * 4 * 1, dtype=torch.float).reshape(2, 4, 1)
    valid = torch.tensor([[False, True, False, True], [False, False, False, False]])
    filled, ids = fill_absent(z, valid, id_offset=8)
    assert ids.tolist() == [[1, 1, 3, 3], [8, 9, 10, 11]]
    assert filled[0, :, 0].tolist() == [1, 1, 3, 3]
    assert not filled[1].any()


@pytest.mark.parametrize("variant", ["s", "b"])
def test_detcon_absent_regions_have_no_effect(variant):
    method = make("detcon" if variant == "s" else "detcon-b")
    assert isinstance(method, DetConMethod)
    g = torch.Generator().manual_seed(0)
    p = (torch.randn(B, K, 8, generator=g), torch.randn(B, K, 8, generator=g))
    t = (torch.randn(B, K, 8, generator=g), torch.randn(B, K, 8, generator=g))
    v1 = torch.ones(B, K, dtype=torch.bool)
    v2 = v1.clone()
    v2[:, 3] = False  # class 3 present in view 1, missing in view 2
    v2[0, 1] = v1[1, 2] = False
    loss = method.region_loss(p, t, (v1, v2))

    def garbage(x, valid):
        return torch.where(valid.unsqueeze(-1), x, 1e3 * torch.randn(x.shape, generator=g))

    for _ in range(3):
        p_bad = (garbage(p[0], v1), garbage(p[1], v2))
        t_bad = (garbage(t[0], v1), garbage(t[1], v2))
        assert torch.allclose(method.region_loss(p_bad, t_bad, (v1, v2)), loss)
    # Class 3 of view 1 is a real region: it still matters, as a negative (a key: the target
    # for DetCon-B, the projection itself for DetCon-S).
    p_moved, t_moved = (p[0].clone(), p[1]), (t[0].clone(), t[1])
    p_moved[0][:, 3] = t_moved[0][:, 3] = torch.randn(B, 8, generator=g)
    assert not torch.allclose(method.region_loss(p_moved, t_moved, (v1, v2)), loss)


def test_detcon_region_missing_in_one_view_runs():
    method = make("detcon")
    view1, view2, mask1, mask2 = batch()
    mask2 = torch.where(mask2 == 3, IGNORE_INDEX, mask2)
    out = method(view1, view2, mask1, mask2)
    assert float(out["num_anchors"]) == B * (K - 1) and torch.isfinite(out["loss"])


def first_batchnorm(module: nn.Module) -> Any:
    return next(m for m in module.modules() if isinstance(m, nn.BatchNorm1d))


def test_apply_to_valid_batchnorm_sees_valid_rows_only():
    torch.manual_seed(0)
    head = projection_head("simclr", 8, 16, 4)
    z = torch.randn(3, 5, 8)
    valid = torch.rand(3, 5) < 0.6
    valid[0, :2] = True
    z_garbage = torch.where(valid.unsqueeze(-1), z, 1e4)
    out = apply_to_valid(head, z_garbage, valid)
    bn = first_batchnorm(head)
    mean = bn.running_mean.clone()
    torch.manual_seed(0)
    reference = projection_head("simclr", 8, 16, 4)
    assert torch.allclose(out[valid], reference(z[valid]), atol=1e-6)
    assert torch.allclose(mean, first_batchnorm(reference).running_mean)
    assert not out[~valid].any()
    one = torch.zeros(3, 5, dtype=torch.bool)
    one[1, 1] = True
    out = apply_to_valid(head, z, one)  # one row: eval-mode BatchNorm, no error, no update
    assert head.training and torch.equal(bn.running_mean, mean) and out[1, 1].abs().sum() > 0


def test_build_method_errors():
    backbone = build_backbone("resnet_tiny", BANDS)
    with pytest.raises(ValueError, match="choose one of sdrl, simclr, moco, byol, detcon"):
        build_method("swav", backbone, K)
    with pytest.raises(ValueError, match=r"no option tau; its options: .*temperature"):
        build_method("simclr", backbone, K, tau=0.1)
    bad: list[tuple[str, dict[str, Any]]] = [
        ("sdrl", {"level": "p3"}),
        ("sdrl", {"temperature": 0.0}),
        ("sdrl", {"temperature": "0.1"}),
        ("sdrl", {"decouple": "l2"}),
        ("sdrl", {"swap_weight": 0.5}),  # needs foreground_ids
        ("sdrl", {"foreground_ids": [K]}),
        ("sdrl", {"rule": "max"}),
        ("sdrl", {"hidden_dim": 0}),
        ("sdrl", {"momentum": 1.5}),
        ("moco", {"memory_bank_size": -1}),
        ("detcon", {"variant": "c"}),
        ("byol", {"output_dim": 2.5}),
        ("simclr", {"temperature": "0.1"}),
    ]
    for name, options in bad:
        with pytest.raises(ValueError):
            build_method(name, backbone, K, **options)
    with pytest.raises(ValueError, match="num_classes"):
        build_method("simclr", backbone, 0)
    with pytest.raises(ValueError, match="Backbone"):
        build_method("simclr", nn.Linear(2, 2), K)  # type: ignore[arg-type]


def test_registry_and_options():
    assert method_names() == ["sdrl", "simclr", "moco", "byol", "detcon", "supervised"]
    assert {m.name for m in METHODS.values()} == set(method_names())
    assert {n for n, m in METHODS.items() if m.needs_masks} == {"sdrl", "detcon", "supervised"}
    assert method_options("sdrl")["level"] == "p2"
    assert method_options("moco")["memory_bank_size"] == 4096


def test_moco_memory_bank_is_checkpointed():
    method = make("moco")
    method(*batch())
    state = method.state_dict()
    assert state["criterion.memory_bank.bank"].shape == (32, 16)
    assert int(state["criterion.memory_bank.bank_ptr"]) == B


def test_momentum_schedule_and_embedding_std():
    assert momentum_at(0.0, 0.99) == pytest.approx(0.99)
    assert momentum_at(0.5, 0.99) == pytest.approx(0.995)
    assert momentum_at(1.0, 0.99) == momentum_at(2.0, 0.99) == 1.0
    with pytest.raises(ValueError):
        momentum_at(float("nan"), 0.99)
    assert float(embedding_std(torch.ones(8, 16))) == 0
    assert float(embedding_std(torch.ones(1, 16))) == 0
    spread = float(embedding_std(torch.randn(4096, 64)))
    assert spread == pytest.approx(1 / math.sqrt(64), rel=0.05)
