"""The data engine: dataset folders, determinism, labels, spectra, misregistration, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdrl.cli import main
from sdrl.data.datasets import ChangeDataset, PretrainPairDataset
from sdrl.data.folder import DatasetFolder, DatasetMeta
from sdrl.data.io import read_info, read_raster
from sdrl.data.synth import CLASSES, SynthConfig, generate_dataset, generate_scene, scene_splits
from sdrl.data.synth.geometry import Rect, footprint
from sdrl.data.synth.render import cast_shadows
from sdrl.data.synth.spectra import band_set, material_spectra, transmission
from sdrl.data.synth.texture import fractal_noise
from sdrl.errors import ConfigError

SOIL, VEGETATION, FOREST, WATER, ROAD, BUILDING = range(6)
S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


@pytest.fixture(scope="module")
def scenes() -> list:
    """Eight 96-px 13-band scenes with the default settings."""
    config = SynthConfig(size=96, bands=13, seed=11)
    return [generate_scene(config, i) for i in range(8)]


def _ids(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "A").glob("*.tif"))


@pytest.mark.parametrize(
    ("bands", "names"),
    [(3, ["red", "green", "blue"]), (4, ["red", "green", "blue", "nir"]), (13, S2)],
)
def test_change_folder_loads(tmp_path: Path, bands: int, names: list[str]) -> None:
    root = tmp_path / "change"
    generate_dataset(root, "change", num=4, size=40, bands=bands, seed=1)
    meta = DatasetMeta.load(root / "dataset.json")
    assert meta.kind == "change"
    assert meta.bands == names
    assert meta.classes == ["unchanged", "changed"]
    assert meta.crs == "EPSG:32633"
    assert meta.provenance["generator"] == "sdrl.data.synth" and meta.provenance["seed"] == 1
    info = read_info(root / "A" / "000000.tif")
    assert info.band_names == tuple(names) and info.dtype == "uint16"
    assert info.crs is not None and info.crs.to_epsg() == 32633
    assert info.resolution == (meta.gsd, meta.gsd)
    dataset = ChangeDataset(root, "train")
    sample = dataset[0]
    assert sample["image_a"].shape == sample["image_b"].shape == (bands, 40, 40)
    assert sample["change"].shape == (40, 40)
    assert set(np.unique(sample["change"].numpy())) <= {0, 1}
    origins = {read_info(root / "A" / f"{i}.tif").transform.c for i in _ids(root)}
    assert len(origins) == 4  # every scene at its own place


def test_pretrain_folder_loads(tmp_path: Path) -> None:
    root = tmp_path / "pretrain"
    generate_dataset(root, "pretrain", num=3, size=48, bands=4, seed=2)
    meta = DatasetMeta.load(root / "dataset.json")
    assert meta.kind == "pretrain" and meta.classes == list(CLASSES)
    assert meta.ignore_index == 255
    assert sorted(p.name for p in root.iterdir()) == [
        "A",
        "B",
        "dataset.json",
        "label",
        "label_B",
        "list",
    ]
    sample = PretrainPairDataset(root, "train")[0]
    assert sample["image_a"].shape == (4, 48, 48)
    assert sample["mask_a"].shape == sample["mask_b"].shape == (48, 48)
    assert int(sample["mask_a"].max()) < len(CLASSES)
    assert PretrainPairDataset(root, "val")[0]["image_b"].shape == (4, 48, 48)


@pytest.mark.parametrize(
    ("num", "kind"), [(1, "change"), (3, "change"), (25, "change"), (7, "pretrain")]
)
def test_splits_disjoint_and_covering(tmp_path: Path, num: int, kind: str) -> None:
    root = tmp_path / "d"
    generate_dataset(root, kind, num=num, size=16, seed=0)  # type: ignore[arg-type]
    folder = DatasetFolder(root)
    lists = {s: folder.ids(s).tolist() for s in folder.splits() if s != "all"}
    members = [i for ids in lists.values() for i in ids]
    assert len(members) == len(set(members))
    assert sorted(members) == _ids(root)
    expected = {"change": {"train", "val", "test"}, "pretrain": {"train", "val"}}[kind]
    assert set(lists) == (expected if num >= len(expected) else {"train"})


def test_splits_are_stable_when_num_grows() -> None:
    small, large = scene_splits(20, "change"), scene_splits(100, "change")
    for name, members in small.items():
        assert set(members) <= set(large[name])
    assert [len(large[k]) for k in ("train", "val", "test")] == [80, 10, 10]


def test_deterministic_for_a_seed() -> None:
    config = SynthConfig(size=48, bands=4, seed=3)
    first, again = generate_scene(config, 5), generate_scene(config, 5)
    for name in ("image_a", "image_b", "mask_a", "mask_b", "change"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    other = generate_scene(SynthConfig(size=48, bands=4, seed=4), 5)
    assert not np.array_equal(first.image_a, other.image_a)
    assert not np.array_equal(first.image_a, generate_scene(config, 6).image_a)


def test_dataset_regenerates_identically(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", "change", num=3, size=32, seed=9)
    generate_dataset(tmp_path / "b", "change", num=5, size=32, seed=9, workers=2)
    for part in ("A", "B", "label"):
        for tile in _ids(tmp_path / "a"):
            a = read_raster(tmp_path / "a" / part / f"{tile}.tif").data
            b = read_raster(tmp_path / "b" / part / f"{tile}.tif").data
            assert np.array_equal(a, b), (part, tile)


def test_layout_does_not_depend_on_band_count() -> None:
    rgb = generate_scene(SynthConfig(size=48, bands=3, seed=5), 0)
    s2 = generate_scene(SynthConfig(size=48, bands=13, seed=5), 0)
    assert np.array_equal(rgb.mask_a, s2.mask_a) and np.array_equal(rgb.change, s2.change)


def test_every_class_appears(scenes: list) -> None:
    present = set()
    for scene in scenes:
        present |= set(np.unique(scene.mask_a).tolist()) | set(np.unique(scene.mask_b).tolist())
    assert present == set(range(len(CLASSES)))


def test_change_label_is_class_difference_on_a_grid(scenes: list) -> None:
    for scene in scenes:
        dy, dx = scene.mask_shift
        size = scene.mask_a.shape[0]
        # class of date 2 under A's pixel (y, x) is mask_b[y - dy, x - dx]
        inner = (slice(2, size - 2), slice(2, size - 2))
        back = np.roll(scene.mask_b, (dy, dx), axis=(0, 1))
        assert np.array_equal(scene.change[inner], (scene.mask_a != back)[inner])
    registered = generate_scene(SynthConfig(size=64, seed=11, misregistration=0), 1)
    assert registered.mask_shift == (0, 0) and registered.shift == (0.0, 0.0)
    assert np.array_equal(registered.change, registered.mask_a != registered.mask_b)


def test_change_fraction_and_nuisances(scenes: list) -> None:
    fractions = [float(s.change.mean()) for s in scenes]
    assert 0.01 <= np.mean(fractions) <= 0.4
    assert sum(f > 0 for f in fractions) >= len(scenes) // 2
    changed_diff, unchanged_diff = [], []
    for scene in scenes:
        diff = np.abs(scene.image_a.astype(np.float32) - scene.image_b.astype(np.float32)).mean(0)
        changed_diff.append(diff[scene.change == 1])
        unchanged_diff.append(diff[scene.change == 0])
    unchanged = float(np.concatenate(unchanged_diff).mean())
    changed = float(np.concatenate(changed_diff).mean())
    assert unchanged > 50  # nuisances: reflectance differs by more than 0.5% where nothing changed
    assert changed > 1.5 * unchanged


def test_no_change_and_no_nuisance() -> None:
    calm = generate_scene(SynthConfig(size=64, change_rate=0, nuisance=0, misregistration=0), 0)
    busy = generate_scene(SynthConfig(size=64, change_rate=0), 0)
    assert not calm.change.any() and not busy.change.any()
    assert np.array_equal(calm.mask_a, calm.mask_b)

    def diff(s):  # mean absolute difference of the two dates
        return np.abs(s.image_a.astype(np.float32) - s.image_b.astype(np.float32)).mean()

    assert diff(calm) < 0.5 * diff(busy)


@pytest.mark.parametrize(("bands", "red", "nir"), [(4, "red", "nir"), (13, "B04", "B08")])
def test_spectral_indices_behave(bands: int, red: str, nir: str) -> None:
    names = band_set(bands).names
    r, n = names.index(red), names.index(nir)
    config = SynthConfig(size=96, bands=bands, seed=11)
    pixels: dict[int, list[np.ndarray]] = {c: [] for c in range(len(CLASSES))}
    nir_values: dict[int, list[np.ndarray]] = {c: [] for c in range(len(CLASSES))}
    for i in range(6):
        scene = generate_scene(config, i)
        image = scene.image_a.astype(np.float64)
        ndvi = (image[n] - image[r]) / (image[n] + image[r] + 1e-6)
        for c in pixels:
            pixels[c].append(ndvi[scene.mask_a == c])
            nir_values[c].append(image[n][scene.mask_a == c])
    ndvi_mean = {c: np.concatenate(v).mean() for c, v in pixels.items()}
    nir_mean = {c: np.concatenate(v).mean() for c, v in nir_values.items()}
    assert ndvi_mean[VEGETATION] > 0.4
    assert ndvi_mean[VEGETATION] > ndvi_mean[WATER] + 0.3
    assert ndvi_mean[VEGETATION] > ndvi_mean[BUILDING] + 0.3
    assert ndvi_mean[FOREST] > ndvi_mean[SOIL]
    assert nir_mean[WATER] < 0.3 * nir_mean[VEGETATION]


def test_spectra_tables() -> None:
    bands = band_set(13)
    assert bands.names == tuple(S2) and bands.wavelengths[S2.index("B8A")] == 865
    assert band_set(7).names[-1] == "band_7" and band_set(7).wavelengths[-1] == 2300
    spectra = material_spectra(bands.wavelengths)
    assert spectra.shape == (15, 13) and spectra.min() >= 0 and spectra.max() < 1
    assert transmission(bands.wavelengths)[S2.index("B10")] < 0.1  # cirrus band nearly dark


def _best_shift(a: np.ndarray, b: np.ndarray, reach: int = 3) -> tuple[int, int]:
    """The whole-pixel shift (dy, dx) with ``a[y, x] ≈ b[y - dy, x - dx]`` in the interior."""
    inner = (slice(reach, -reach), slice(reach, -reach))
    scores = {}
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            moved = np.roll(b, (dy, dx), axis=(0, 1))
            scores[dy, dx] = float(np.mean(a[inner] == moved[inner]))
    return max(scores, key=lambda k: scores[k])


def test_misregistration_present_only_when_enabled(tmp_path: Path) -> None:
    for amount in (2.0, 0.0):
        root = tmp_path / f"shift{amount}"
        generate_dataset(root, "pretrain", num=4, size=64, seed=21, misregistration=amount)
        for tile in _ids(root):
            mask_a = read_raster(root / "label" / f"{tile}.tif").data[0]
            mask_b = read_raster(root / "label_B" / f"{tile}.tif").data[0]
            dy, dx = _best_shift(mask_a, mask_b)
            if amount:
                assert max(abs(dy), abs(dx)) in (1, 2)
                assert (dy, dx) == generate_scene(
                    SynthConfig(size=64, seed=21, misregistration=amount), int(tile)
                ).mask_shift
            else:
                assert (dy, dx) == (0, 0)


def test_images_are_misregistered_like_masks() -> None:
    config = SynthConfig(size=96, seed=4, change_rate=0, nuisance=0)
    for i in range(3):
        scene = generate_scene(config, i)
        a = scene.image_a.astype(np.float32).sum(0)
        b = scene.image_b.astype(np.float32).sum(0)
        inner = (slice(3, -3), slice(3, -3))
        errors = {
            (dy, dx): float(np.abs(a[inner] - np.roll(b, (dy, dx), axis=(0, 1))[inner]).mean())
            for dy in range(-3, 4)
            for dx in range(-3, 4)
        }
        best = min(errors, key=lambda k: errors[k])
        assert max(abs(best[0] - scene.mask_shift[0]), abs(best[1] - scene.mask_shift[1])) <= 1
        assert best != (0, 0)


def test_shadows_fall_away_from_the_sun() -> None:
    heights = np.zeros((20, 20), dtype=np.float32)
    heights[8:12, 8:12] = 4.0
    south = cast_shadows(heights, azimuth=np.pi, elevation=np.pi / 4)  # sun in the south
    rows = np.nonzero(south)[0]
    assert rows.size and rows.max() < 8  # shadow to the north (up)
    east = cast_shadows(heights, azimuth=np.pi / 2, elevation=np.pi / 4)
    assert np.nonzero(east)[1].max() < 8  # sun in the east: shadow to the west


@pytest.mark.parametrize("angle", [0.0, 0.5, np.pi / 2])
def test_footprint_area(angle: float) -> None:
    raster = footprint(Rect(30.0, 30.0, 20.0, 10.0, angle), 64)
    assert raster is not None
    _, inside, slope = raster
    assert abs(int(inside.sum()) - 200) <= 20
    assert 0.4 < (slope & inside).sum() / inside.sum() < 0.6  # the two roof slopes
    assert footprint(Rect(-50.0, -50.0, 10.0, 10.0, 0.0), 64) is None


def test_fractal_noise_statistics() -> None:
    rng = np.random.default_rng(0)
    field = fractal_noise(rng, 128, 32.0, 2.0)
    assert field.shape == (128, 128) and field.dtype == np.float32
    assert 0.5 < field.std() < 1.5 and abs(field.mean()) < 0.5


@pytest.mark.parametrize(
    "bad",
    [
        {"size": 8},
        {"bands": 0},
        {"seed": -1},
        {"change_rate": -1.0},
        {"misregistration": 100.0},
        {"scale": 0.0},
    ],
)
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ConfigError, match="--"):
        SynthConfig(**bad)


def test_cli_writes_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    args = ["synth", "--kind", "change", "--out", str(out), "--num", "4", "--size", "64"]
    assert main(args) == 0
    assert "wrote 4 change scenes" in capsys.readouterr().out
    assert len(ChangeDataset(out, "all")) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--bands", "0"], "--bands"), (["--num", "0"], "--num"), (["--crs", "EPSG:0"], "--crs")],
)
def test_cli_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "bad"
    assert main(["synth", "--kind", "change", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_refuses_existing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["synth", "--kind", "pretrain", "--out", str(out), "--num", "2", "--size", "32"]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "label_B").is_dir()


def test_failure_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdrl.data.synth.dataset as module

    calls = []

    def failing(config: SynthConfig, index: int):
        calls.append(index)
        if index == 2:
            raise RuntimeError("generator failed")
        return generate_scene(config, index)

    monkeypatch.setattr(module, "generate_scene", failing)
    out = tmp_path / "never"
    with pytest.raises(RuntimeError, match="generator failed"):
        main(["synth", "--kind", "change", "--out", str(out), "--num", "5", "--size", "32"])
    assert calls == [0, 1, 2]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind either
