"""The crop classifier: shapes, gradients, presets and input checks (tiny configs)."""

from __future__ import annotations

import pytest
import torch

from sdrl.models.crop import (
    PRESETS,
    CropModelConfig,
    build_crop_model,
    count_parameters,
    hierarchical_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = (3, 5, 8)


def inputs(size: int, *, months: int = 12, enmap: int = 218, batch: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    s2 = torch.randn(batch, months, 10, size, size, generator=gen)
    cube = torch.randn(batch, enmap, size // 3, size // 3, generator=gen) if enmap else None
    prior = torch.stack(
        [torch.randint(0, k, (batch, size, size), generator=gen) for k in CLASSES], dim=1
    )
    return s2, cube, prior


def tiny(**options) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_crop_model(CropModelConfig(CLASSES, size="tiny", **options))


@pytest.mark.parametrize(
    ("size", "options"),
    [
        (96, {}),
        (90, {}),
        (96, {"enmap_bands": 0}),
        (90, {"priors": True}),
        (90, {"enmap_bands": 0, "priors": True, "months": 7}),
        (90, {"spectral_encoder": "resnet_tiny"}),
    ],
)
def test_one_logits_map_per_level_at_the_s2_grid(size, options):
    model = tiny(**options)
    config = model.config
    s2, cube, prior = inputs(size, months=config.months, enmap=config.enmap_bands)
    logits = model(s2, cube, prior if config.priors else None)
    assert [tuple(x.shape) for x in logits] == [(2, k, size, size) for k in CLASSES]
    assert all(torch.isfinite(x).all() for x in logits)


def test_every_trainable_parameter_gets_a_gradient():
    model = tiny(priors=True)
    s2, cube, prior = inputs(64)
    label = prior.clone()
    label[:, :, :4] = 255
    loss, terms = hierarchical_loss(model(s2, cube, prior), label, ignore_index=255)
    loss.backward()
    assert len(terms) == len(CLASSES) and torch.isfinite(loss)
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing


def test_priors_and_previous_levels_feed_the_heads():
    model = tiny(priors=True, enmap_bands=0).eval()
    s2, _, prior = inputs(32, enmap=0, batch=1)
    with torch.no_grad():
        base = model(s2, None, prior)
        other = prior.clone()
        other[:, 2] = (other[:, 2] + 1) % CLASSES[2]  # only the last level's prior changes
        moved = model(s2, None, other)
    assert torch.equal(base[0], moved[0]) and torch.equal(base[1], moved[1])
    assert not torch.equal(base[2], moved[2])


def test_sizes_and_parameter_counts():
    assert count_parameters(tiny()) < 1_000_000
    with torch.device("meta"):
        paper = build_crop_model(CropModelConfig((7, 37, 83, 102), size="paper"))
        s2_only = build_crop_model(CropModelConfig((7, 37, 83, 102), size="paper", enmap_bands=0))
    with_enmap, without = count_parameters(paper), count_parameters(s2_only)
    assert 170e6 < with_enmap < 190e6  # H2Crop: about 175 M
    assert 85e6 < count_parameters(paper.temporal) < 90e6  # Swin-B
    assert paper.spectral is not None
    enmap_part = count_parameters(paper.spectral)
    assert with_enmap - without == enmap_part + 256 * 128 * 9  # the wider fusion conv
    assert PRESETS["default"].embed_dim == 96 and PRESETS["default"].depths == (2, 2, 6, 2)


def test_encoder_modules_and_input_checks():
    model = tiny()
    assert set(model.encoder_modules()) == {"temporal", "spectral"}
    assert model.encoder_modules()["temporal"] is model.temporal
    assert set(tiny(enmap_bands=0).encoder_modules()) == {"temporal"}
    backbone = tiny(spectral_encoder="resnet_tiny")
    assert backbone.encoder_modules()["spectral"] is backbone.spectral.backbone
    s2, cube, prior = inputs(32, batch=1)
    with pytest.raises(ValueError, match="T=12"):
        model(s2[:, :6], cube)
    with pytest.raises(ValueError, match="enmap must be"):
        model(s2)
    with pytest.raises(ValueError, match="without priors"):
        model(s2, cube, prior)
    with pytest.raises(ValueError, match="unknown size"):
        CropModelConfig(CLASSES, size="huge")
    with pytest.raises(ValueError, match="num_classes"):
        CropModelConfig((1, 3))
