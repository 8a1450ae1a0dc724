"""The in-domain supervised baseline: loss against a plain reference, gradients, the CLI path."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn.functional as F

from sdrl.checkpoint import read_checkpoint
from sdrl.cli import main
from sdrl.data.samples import IGNORE_INDEX
from sdrl.models import build_backbone
from sdrl.ssl.methods import build_method, method_options
from sdrl.ssl.methods.supervised import SupervisedMethod
from tests.runs import finetune_argv, synth_data, tiny_pretrain

pytestmark = pytest.mark.usefixtures("one_thread")

B, K, SIZE, BANDS = 2, 3, 32, 4


def make(level: str = "p2", seed: int = 0) -> SupervisedMethod:
    torch.manual_seed(seed)
    method = build_method("supervised", build_backbone("resnet_tiny", BANDS), K, level=level)
    assert isinstance(method, SupervisedMethod)
    return method


def batch(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Two views and masks with every class and a band of ignore pixels in each view."""
    g = torch.Generator().manual_seed(seed)
    view1, view2 = torch.randn(2, B, BANDS, SIZE, SIZE, generator=g)
    mask1, mask2 = torch.randint(0, K, (2, B, SIZE, SIZE), generator=g)
    mask1[:, :5] = IGNORE_INDEX
    mask2[:, :, -3:] = IGNORE_INDEX
    return view1, view2, mask1, mask2


def reference_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean over labelled pixels of -log softmax at the true class, by a plain loop."""
    log_p = logits.double().log_softmax(dim=1)
    terms = [
        -log_p[n, masks[n, i, j], i, j]
        for n in range(masks.shape[0])
        for i in range(masks.shape[1])
        for j in range(masks.shape[2])
        if masks[n, i, j] != IGNORE_INDEX
    ]
    return torch.stack(terms).mean()


@pytest.mark.parametrize("level", ["p2", "c5"])
def test_loss_is_cross_entropy_over_labelled_pixels_of_both_views(level):
    method = make(level).eval()  # BatchNorm with running statistics: the same logits twice
    view1, view2, mask1, mask2 = batch()
    with torch.no_grad():
        out = method(view1, view2, mask1, mask2)
        logits, _ = method.logits(torch.cat([view1, view2]))
    masks = torch.cat([mask1, mask2])
    assert logits.shape == (2 * B, K, SIZE, SIZE)
    expected = F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out["loss"], expected)
    assert float(out["loss"]) == pytest.approx(float(reference_loss(logits, masks)), rel=1e-5)
    labelled = masks != IGNORE_INDEX
    assert float(out["labelled"]) == pytest.approx(float(labelled.float().mean()))
    hits = (logits.argmax(1) == masks)[labelled].float().mean()
    assert float(out["pixel_acc"]) == pytest.approx(float(hits))
    assert float(out["skipped"]) == 0.0 and 0.0 < float(out["embedding_std"]) < 1.0


def test_every_parameter_learns_and_the_backbone_moves():
    method = make().train()
    before = {k: v.clone() for k, v in method.backbone.state_dict().items()}
    out = method(*batch())
    assert out["loss"].requires_grad
    assert all(not v.requires_grad for k, v in out.items() if k != "loss")
    out["loss"].backward()
    for name, p in method.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    torch.optim.SGD(method.parameters(), lr=0.1).step()
    after = method.backbone.state_dict()
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("layer4."))


def test_unlabelled_batch_is_skipped_and_bad_input_refused():
    method = make("c5")
    view1, view2, mask1, _ = batch()
    ignore = torch.full_like(mask1, IGNORE_INDEX)
    out = method(view1, view2, ignore, ignore)
    assert float(out["loss"].detach()) == 0.0 and float(out["skipped"]) == 1.0
    out["loss"].backward()
    assert all(p.grad is None or not p.grad.any() for p in method.parameters())
    bad = mask1.clone()
    bad[0, -1, -1] = K
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        method(view1, view2, bad, mask1)
    with pytest.raises(ValueError, match="needs mask1 and mask2"):
        method(view1, view2)
    with pytest.raises(ValueError, match="level"):
        build_method("supervised", build_backbone("resnet_tiny", BANDS), K, level="c4")
    assert method_options("supervised") == {"level": "p2", "fpn_channels": 256}


@pytest.mark.parametrize(("level", "dim"), [("p2", 256), ("c5", 64)])
def test_region_embeddings_pool_the_classified_level(level, dim):
    images = torch.randn(B, BANDS, 64, 64)
    masks = torch.zeros(B, 64, 64, dtype=torch.long)
    masks[1, :, :32], masks[1, :, 32:] = 1, 2  # image 0: class 0 only; image 1: classes 1, 2
    z, valid = make(level).region_embeddings(images, masks)
    assert z.shape == (B, K, dim)
    assert valid.tolist() == [[True, False, False], [False, True, True]]


def test_pretrain_cli_then_finetune_and_export(tmp_path_factory, tmp_path):
    pre = synth_data(tmp_path_factory, "sup", "pretrain", num=8, size=64, bands=BANDS, seed=0)
    run = tmp_path / "pre"
    ckpt = tiny_pretrain(pre, run, "--method", "supervised", "--fpn-channels", "16",
                         "--max-steps", "2", "--log-every", "1")  # fmt: skip
    header = read_checkpoint(ckpt)["sdrl"]
    assert header["method"] == "supervised" and header["method_options"] == {"fpn_channels": 16}
    with open(run / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    for name in ("train/loss_step", "train/embedding_std", "train/pixel_acc", "val/probe_acc"):
        assert any(r.get(name) not in (None, "") for r in rows), name
    # The finetuned encoder (frozen by the linear head) is the pretrained backbone.
    change = synth_data(tmp_path_factory, "supch", "change", num=8, size=64, bands=BANDS, seed=0)
    ft = tmp_path / "ft"
    argv = ["--init", str(ckpt), "--head", "linear", "--max-steps", "1", "--val-split", "none"]
    assert main(finetune_argv(change, ft, *argv)) == 0
    pretrained = read_checkpoint(ckpt)["state_dict"]
    state = read_checkpoint(ft / "last.ckpt")["state_dict"]
    keys = [k for k in state if k.startswith("model.encoder.")]
    assert keys
    for key in keys:
        assert torch.equal(state[key], pretrained[key.replace("model.encoder", "method.backbone")])
    export = tmp_path / "export"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(export)]) == 0
    meta = json.loads((export / "meta.json").read_text())
    assert meta["method"] == "supervised" and (export / "weights.safetensors").is_file()
