"""The crop data engine: folder, HDF5 format, determinism, clouds, priors, sibling classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdrl.bands import preset_bands
from sdrl.cli import main
from sdrl.data.crop.augment import CropAugment
from sdrl.data.crop.dataset import CropDataset
from sdrl.data.crop.folder import crop_folder_info
from sdrl.data.crop.h5 import read_patch
from sdrl.data.crop.signatures import signatures
from sdrl.data.crop.synth import CropSynthConfig, SynthPatch, generate_patch
from sdrl.data.crop.synth_folder import crop_splits, generate_crop_dataset
from sdrl.data.crop.taxonomy import Taxonomy, builtin_taxonomy, load_taxonomy
from sdrl.data.samples import collate
from sdrl.errors import ConfigError
from tests.conftest import realdata

WHEAT, BARLEY, SPRING_BARLEY, GRAIN_MAIZE, SILAGE_MAIZE = 1, 2, 3, 4, 5
ENMAP_NM = np.array([b.nm for b in preset_bands("enmap")])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crop") / "synth"
    code = main(["synth", "--kind", "crop", "--out", str(out), "--num", "8", "--size", "48",
                 "--seed", "1"])  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="module")
def patches() -> list[SynthPatch]:
    """24 patches of 48 px: enough parcels of every built-in class."""
    config = CropSynthConfig(size=48, seed=3)
    return [generate_patch(config, i) for i in range(24)]


def test_folder_layout_and_format(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [
        "dataset.json", "h5_data", "taxonomy.csv", "test.txt", "train.txt", "val.txt"
    ]  # fmt: skip
    assert not list(folder.parent.glob(".*partial*"))
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["kind"] == "crop" and meta["months"] == 12 and meta["size"] == [48, 48]
    assert meta["s2_bands"] == [b.name for b in preset_bands("sentinel2-10")]
    assert len(meta["enmap_bands"]) == len(meta["enmap_mean"]) == 218
    assert Taxonomy.from_dict(meta["taxonomy"]) == builtin_taxonomy()
    assert load_taxonomy(folder / "taxonomy.csv") == builtin_taxonomy()
    assert (folder / "train.txt").read_text().split() == [f"patch_{i:06d}" for i in range(6)]
    assert crop_splits(40) == {
        "train": [i for i in range(40) if i % 20 < 14],
        "val": [14, 15, 16, 34, 35, 36],
        "test": [17, 18, 19, 37, 38, 39],
    }
    info = crop_folder_info(folder)
    assert info.taxonomy == builtin_taxonomy() and info.enmap_bands is not None
    assert info.enmap_wavelengths is not None and info.enmap_wavelengths[0] == 418.4
    config = CropSynthConfig(size=48, seed=1)
    for i in range(8):
        path = folder / "h5_data" / f"patch_{i:06d}.h5"
        patch = read_patch(path, 12, priors=True)
        expected = generate_patch(config, i)  # patch i depends only on (seed, i)
        np.testing.assert_array_equal(patch.s2, expected.s2)
        np.testing.assert_array_equal(patch.enmap, expected.enmap)
        np.testing.assert_array_equal(patch.prior, expected.prior)
        assert patch.s2.shape == (12, 10, 48, 48) and patch.enmap is not None
        assert patch.enmap.shape == (218, 16, 16) and patch.label.shape == (4, 48, 48)


def test_dataset_and_augment_on_generated_data(folder: Path) -> None:
    dataset = CropDataset(folder, "train", months=8, priors=True)
    batch = collate([dataset[i] for i in range(4)])
    assert batch["s2"].shape == (4, 8, 10, 48, 48) and batch["enmap"].shape == (4, 218, 16, 16)
    assert abs(float(batch["enmap"].mean())) < 0.5 and 0.5 < float(batch["enmap"].std()) < 2
    out = CropAugment(crop_size=24)(batch, torch.Generator().manual_seed(0))
    assert out["label"].shape == (4, 4, 24, 24) and out["enmap"].shape == (4, 218, 8, 8)


def test_determinism_and_labels(patches: list[SynthPatch]) -> None:
    config = CropSynthConfig(size=48, seed=3)
    again = generate_patch(config, 5)
    for key in ("s2", "enmap", "label", "prior"):
        assert np.array_equal(getattr(again, key), getattr(patches[5], key))
    other = generate_patch(CropSynthConfig(size=48, seed=4), 5)
    assert not np.array_equal(other.s2, patches[5].s2)
    taxonomy = builtin_taxonomy()
    labels = np.stack([p.label for p in patches])
    priors = np.stack([p.prior for p in patches])
    assert labels.dtype == np.uint8 and patches[0].s2.dtype == np.int16
    background = labels[:, 0] == 0
    assert (
        0.1 < background.mean() < 0.5
        and (labels[:, 1:][background[:, None].repeat(3, 1)] == 0).all()
    )
    assert (priors[:, 0][background] == 0).all()  # background stays background
    crop = ~background
    kept = (priors[:, 3] == labels[:, 3])[crop].mean()
    assert 0.15 < kept < 0.5  # most parcels rotate, some keep their class
    leaves = labels[:, 3][crop]
    assert set(np.unique(leaves)) == set(range(1, 11))
    for level in range(1, 4):  # every map is the parent of the finer one
        assert np.array_equal(taxonomy.parent(level)[labels[:, level]], labels[:, level - 1])


def test_clouds_are_bright(patches: list[SynthPatch]) -> None:
    cloudy = np.stack([p.cloudy for p in patches])
    assert 0.05 < cloudy.mean() < 0.4
    blue = np.stack([p.s2[:, 0] for p in patches])  # (patches, T, H, W)
    assert np.percentile(blue[cloudy], 99) > 3500  # bright cloud cores
    assert np.percentile(blue[~cloudy], 99) < 2000  # reflectance 0.2 at most in the blue


def _sibling_groups(taxonomy: Taxonomy) -> list[np.ndarray]:
    return [
        np.flatnonzero(taxonomy.paths[:, 2] == group)
        for group in np.unique(taxonomy.paths[:, 2])
        if (taxonomy.paths[:, 2] == group).sum() > 1
    ]


def _check_siblings(taxonomy: Taxonomy) -> None:
    sig = signatures(taxonomy)
    leaves = len(taxonomy.paths)
    groups = _sibling_groups(taxonomy)
    assert groups
    for group in groups:
        first, rest = group[0], group[1:]
        for row in (first, first + leaves):  # green and senescent canopy
            others = rest + (row - first)
            np.testing.assert_allclose(sig.s2[others], sig.s2[[row] * len(rest)], atol=1e-5)
            change = np.abs(sig.enmap[others] - sig.enmap[row]) / sig.enmap[row]
            assert (change.max(axis=1) > 0.1).all()  # EnMAP sees a >10 % difference
        assert len(set(sig.dips_nm[group].tolist())) == len(group)
        np.testing.assert_array_equal(sig.phenology.green_up[group], sig.phenology.green_up[first])


def test_siblings_differ_only_for_enmap_by_design() -> None:
    _check_siblings(builtin_taxonomy())


@pytest.mark.realdata
def test_siblings_of_the_real_taxonomy() -> None:
    _check_siblings(load_taxonomy(realdata("crop", "h2crop_taxonomy", "cascade_labels.csv")))


def _s2_mean(patches: list[SynthPatch], leaf: int) -> np.ndarray:
    """``(12 * 10,)`` mean of a class's pixels over the cloud-free months."""
    total, count = np.zeros((12, 10)), np.zeros(12)
    for patch in patches:
        mask = patch.label[3] == leaf
        for t in np.flatnonzero(~patch.cloudy):
            total[t] += patch.s2[t][:, mask].sum(axis=1)
            count[t] += mask.sum()
    return (total / count[:, None]).ravel()


def _dip_ratio(patches: list[SynthPatch], leaf: int, nm: float) -> float:
    """Mean EnMAP band at ``nm`` over the mean of the bands 30 nm either side, pure pixels."""
    band, low, high = (int(np.abs(ENMAP_NM - w).argmin()) for w in (nm, nm - 30, nm + 30))
    values = []
    for patch in patches:
        blocks = patch.label[3].reshape(16, 3, 16, 3).transpose(0, 2, 1, 3).reshape(16, 16, 9)
        pure = (blocks == leaf).all(axis=-1)
        cube = patch.enmap[:, pure].astype(np.float64)
        values.append(cube[band] / (0.5 * (cube[low] + cube[high])))
    return float(np.concatenate(values).mean())


def test_siblings_alike_in_s2_separable_in_enmap(patches: list[SynthPatch]) -> None:
    means = {leaf: _s2_mean(patches, leaf) for leaf in range(1, 11)}
    siblings = np.linalg.norm(means[WHEAT] - means[BARLEY])
    others = [
        np.linalg.norm(means[a] - means[b])
        for a in (WHEAT, BARLEY)
        for b in (SPRING_BARLEY, GRAIN_MAIZE, SILAGE_MAIZE)
    ]
    assert siblings < 0.6 * min(others)
    dips = signatures(builtin_taxonomy()).dips_nm
    for a, b in ((WHEAT, BARLEY), (GRAIN_MAIZE, SILAGE_MAIZE)):
        for own, other in ((a, b), (b, a)):
            nm = dips[own - 1]  # the class's own absorption feature
            assert _dip_ratio(patches, own, nm) < _dip_ratio(patches, other, nm) - 0.04


def test_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x")
    assert main(["synth", "--kind", "crop", "--out", out, "--size", "50"]) == 2
    assert "multiple of 3" in capsys.readouterr().err
    assert main(["synth", "--kind", "crop", "--out", out, "--bands", "13"]) == 2
    assert "10 Sentinel-2 and 218 EnMAP" in capsys.readouterr().err
    assert main(["synth", "--kind", "change", "--out", out, "--taxonomy", "t.csv"]) == 2
    assert "only for --kind crop" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--seed"):
        generate_crop_dataset(out, num=2, size=12, seed=-1)
    assert not (tmp_path / "x").exists()
