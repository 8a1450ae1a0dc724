"""Real runs: sdrl pretrain → sdrl export → sdrl finetune --init EXPORT_DIR; the README snippet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sdrl.checkpoint import read_checkpoint
from sdrl.cli import main
from sdrl.export import load_torchvision
from tests.export.checkpoints import fake_checkpoint
from tests.runs import finetune_argv, synth_data, tiny_pretrain

pytestmark = pytest.mark.usefixtures("one_thread")

README = Path(__file__).resolve().parents[2] / "README.md"
STATS = ("running_mean", "running_var", "num_batches_tracked")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = synth_data(tmp_path_factory, "pre", "pretrain", num=4, size=64, bands=4, seed=1)
    extra = ["--max-steps", "2", "--hidden-dim", "16", "--output-dim", "8", "--probe", "none"]
    return tiny_pretrain(data, data.parent / "run", *extra)


def parameters(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The learned tensors of a finetuning checkpoint (BatchNorm statistics left out)."""
    state = read_checkpoint(checkpoint)["state_dict"]
    return {k: v for k, v in state.items() if not k.endswith(STATS)}


def test_export_then_finetune_init_changes_only_the_encoder(pretrained: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "rgbn"
    assert main(["export", "--checkpoint", str(pretrained), "--out", str(out)]) == 0
    exported = load_file(out / "weights.safetensors")
    source = read_checkpoint(pretrained)["state_dict"]
    for key, value in exported.items():
        assert torch.equal(value, source[f"method.backbone.{key}"]), key
    data = synth_data(tmp_path_factory, "cd", "change", num=6, size=64, bands=4, seed=0)
    # a learning rate too small to move float32 weights: the runs keep their initialisation
    frozen = ["--max-steps", "1", "--lr", "1e-30", "--val-split", "none", "--seed", "3"]
    runs = {}
    for init in ("random", str(out)):
        run = data.parent / ("random" if init == "random" else "export")
        assert main(finetune_argv(data, run, "--init", init, *frozen)) == 0
        runs[init] = parameters(run / "last.ckpt")
    random, initialised = runs["random"], runs[str(out)]
    changed = {k for k in random if not torch.allclose(random[k], initialised[k], atol=1e-20)}
    assert changed and all(k.startswith("model.encoder.") for k in changed)
    for key, value in initialised.items():
        if key.startswith("model.encoder."):
            expected = exported[key.removeprefix("model.encoder.")]
            torch.testing.assert_close(value, expected, atol=1e-20, rtol=0)


def test_readme_torchvision_snippet_runs(tmp_path: Path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    snippet = next(b for b in blocks if "torchvision.models.resnet18(weights=None)" in b)
    assert "strict=True" in snippet
    source = fake_checkpoint(tmp_path / "run.ckpt", "resnet18", ["red", "green", "blue", "nir"])
    out = tmp_path / "exports" / "rgbn"
    assert main(["export", "--checkpoint", str(tmp_path / "run.ckpt"), "--out", str(out)]) == 0
    namespace: dict[str, object] = {}
    exec(snippet.replace("exports/rgbn", str(out)), namespace)
    model = namespace["model"]
    assert isinstance(model, torch.nn.Module)
    image = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        features = model.eval()(image)
        torch.testing.assert_close(features, load_torchvision(out)(image))
        pooled = source(image)[3].mean(dim=(2, 3))
    torch.testing.assert_close(features, pooled, rtol=1e-4, atol=1e-5)
