"""The one inference step of predict and evaluate: precision policy, checks, same maps."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch
from torch import nn

from sdrl.predict import predict_change
from sdrl.predict.inference import resolve_device, resolve_precision, tile_probabilities
from sdrl.predict.plan import TilePlan
from sdrl.predict.windows import StitchedImage, predict_windows
from tests.predict.test_predict import BANDS, MEAN, STD, DiffConv, pair

pytestmark = pytest.mark.usefixtures("one_thread")


class Recording(DiffConv):
    """:class:`DiffConv` that records the dtype of its logits (what autocast made of them)."""

    def __init__(self, k: int = 2) -> None:
        super().__init__(k)
        self.dtypes: list[torch.dtype] = []

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = super().forward(a, b)
        self.dtypes.append(logits.dtype)
        return logits


def tiles(batch: int = 3, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, T, T)`` float32 normalised-looking tiles of both dates."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, BANDS, size, size, generator=generator)
    b = a + 0.5 * torch.randn(batch, BANDS, size, size, generator=generator)
    return a, b


def test_importing_predict_and_evaluate_does_not_import_lightning():
    code = (
        "import sdrl.predict, sdrl.predict.from_checkpoint, sdrl.evaluation, sys; "
        "found = sorted(m for m in sys.modules "
        "if m.startswith(('pytorch_lightning', 'lightning'))); "
        "assert not found, found"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_precision_policy():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "32"
    for explicit in ("32", "bf16", "16"):
        assert resolve_precision(explicit, cpu) == explicit
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("64", cpu)
    assert resolve_device("cpu") == cpu and resolve_device(cpu) is cpu


@pytest.mark.parametrize("bf16", [True, False])
def test_precision_auto_on_cuda(monkeypatch, bf16):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    cuda = torch.device("cuda")
    assert resolve_precision("auto", cuda) == ("bf16" if bf16 else "16")
    assert resolve_precision("16", cuda) == "16"
    if bf16:
        assert resolve_precision("bf16", cuda) == "bf16"
    else:
        with pytest.raises(ValueError, match="does not support bfloat16"):
            resolve_precision("bf16", cuda)


@pytest.mark.parametrize("k", [1, 2])
def test_tile_probabilities_fp32_on_cpu(k):
    model = Recording(k).eval()
    a, b = tiles()
    prob = tile_probabilities(model, a, b)  # auto on CPU: float32, no autocast
    assert model.dtypes == [torch.float32]
    assert prob.shape == (3, 32, 32) and prob.dtype == torch.float32 and prob.device.type == "cpu"
    with torch.no_grad():
        logits = model.conv((a - b).abs())
    expected = torch.sigmoid(logits[:, 0]) if k == 1 else torch.softmax(logits, 1)[:, 1]
    torch.testing.assert_close(prob, expected, rtol=0, atol=1e-6)
    assert not prob.requires_grad and torch.equal(
        tile_probabilities(model, a, b, "cpu", "32"), prob
    )


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("16", torch.float16)])
def test_half_precision_on_cpu_is_autocast_and_close_to_fp32(precision, dtype):
    model = Recording().eval()
    a, b = tiles()
    exact = tile_probabilities(model, a, b, "cpu", "32")
    half = tile_probabilities(model, a, b, "cpu", precision)
    assert model.dtypes == [torch.float32, dtype]  # the model ran under CPU autocast
    assert half.dtype == torch.float32 and half.shape == exact.shape
    error = (half - exact).abs()
    assert 0 < error.max() < (2e-2 if precision == "bf16" else 2e-3)


@pytest.mark.parametrize(
    ("output", "match"),
    [
        (lambda n: torch.zeros(n, 3, 32, 32), "1 or 2"),
        (lambda n: torch.zeros(n, 2, 16, 16), "full resolution"),
        (lambda n: {"out": torch.zeros(n, 2, 32, 32)}, "logits tensor"),
    ],
)
def test_model_output_is_checked(output, match):
    class Bad(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor):
            return output(a.shape[0])

    with pytest.raises(ValueError, match=match):
        tile_probabilities(Bad(), *tiles())
    a, b = tiles()
    with pytest.raises(ValueError, match="same shape"):
        tile_probabilities(DiffConv(), a, b[:, :2])


@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_evaluate_and_predict_paths_give_the_same_probabilities(make_tif, tmp_path, precision):
    """In-memory windows (evaluate) and the raster engine (predict) share one inference step.

    Same tiles, same batches, centre stitching: the maps agree to float32 rounding, also in
    bf16, where both differ from float32 far more than from each other.
    """
    a, b = pair(96, 130, seed=3)
    path_a, path_b = make_tif("a.tif", a), make_tif("b.tif", b)
    mean = np.asarray(MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(STD, dtype=np.float32)[:, None, None]
    norm_a, norm_b = ((d.astype(np.float32) - mean) / std for d in (a, b))  # as the reader
    model = DiffConv().eval()
    plan = TilePlan.build(96, 130, 64, 16)
    image = StitchedImage("x", norm_a, norm_b, plan, "centre")
    [(_, windows)] = predict_windows(model, [image], batch_size=2, precision=precision)
    out = tmp_path / f"{precision}.tif"
    result = predict_change(
        model,
        path_a,
        path_b,
        out,
        mean=MEAN,
        std=STD,
        tile=64,
        overlap=16,
        batch_size=2,
        stitch="centre",
        outputs=["probability"],
        precision=precision,
        progress=False,
    )
    with rasterio.open(out) as src:
        engine = src.read(1)
        assert src.tags()["precision"] == result.precision == precision
    np.testing.assert_allclose(engine, windows, rtol=0, atol=1e-7)
    if precision == "bf16":
        image = StitchedImage("x", norm_a, norm_b, plan, "centre")
        [(_, exact)] = predict_windows(model, [image], batch_size=2, precision="32")
        assert np.abs(windows - exact).max() > 100 * np.abs(engine - windows).max() + 1e-4


def test_cli_precision_choices_match_the_policy():
    from sdrl.cli.types import PRECISION_CHOICES
    from sdrl.predict.inference import PRECISIONS

    assert PRECISION_CHOICES == PRECISIONS
