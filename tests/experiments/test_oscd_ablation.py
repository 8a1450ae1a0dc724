"""experiments/oscd_ablation.py: rows from several results.csv, paired differences."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.experiments_scripts import load_experiment


def _results(path: Path, cells: dict[tuple[str, float, int, int], float]) -> Path:
    """A results.csv of oscd_folds.py: (init, fraction, fold, seed) → pooled F1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, ["fold", "init", "head", "fraction", "seed", "f1", "metrics"])
        writer.writeheader()
        for (init, fraction, fold, seed), f1 in cells.items():
            metrics = path.parent / f"{init}_{fraction:g}_{fold}_{seed}.json"
            metrics.write_text(json.dumps({"f1": f1, "mean_image_f1": f1 / 2}))
            writer.writerow(
                {"fold": fold, "init": init, "head": "fpn", "fraction": f"{fraction:g}",
                 "seed": seed, "f1": f1, "metrics": str(metrics)}
            )  # fmt: skip
    return path


def test_paired_differences_match_on_fold_and_seed(tmp_path, capsys):
    ablation = load_experiment("oscd_ablation")
    base = _results(
        tmp_path / "results.csv",
        {("random", 1.0, 0, 0): 0.10, ("random", 1.0, 0, 1): 0.30, ("random", 1.0, 1, 0): 0.20,
         ("sdrl", 0.2, 0, 0): 0.90},
    )  # fmt: skip
    other = _results(
        tmp_path / "p100_results.csv",
        {("sdrl", 1.0, 0, 0): 0.15, ("sdrl", 1.0, 0, 1): 0.25, ("sdrl", 1.0, 1, 1): 0.50},
    )
    argv = ["--reference", f"random={base}:random:1", "--row", f"sdrl K=100={other}:sdrl:1"]
    assert ablation.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| row | n | F1 (pooled) | city F1 | AP | Δ F1 vs random")
    # pairs (0, 0): +0.05 and (0, 1): -0.05; (1, 1) has no reference cell; AP not recorded
    row = "| sdrl K=100 | 3 | 0.300 ± 0.180 | 0.150 ± 0.090 | – | +0.000 ± 0.071 (1/2) |"
    assert lines[2] == row
    out = tmp_path / "table.md"
    assert ablation.main([*argv, "--out", str(out)]) == 0
    assert out.read_text().splitlines()[2] == lines[2]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-equals", "LABEL=CSV:INIT:FRACTION"),
        ("x={base}:random:all", "a FRACTION number"),
        ("x={missing}:sdrl:1", "found no file"),
        ("x={base}:detcon:1", "expected cells of init 'detcon'"),
    ],
)
def test_bad_specs_are_usage_errors(tmp_path, capsys, spec, message):
    ablation = load_experiment("oscd_ablation")
    base = _results(tmp_path / "results.csv", {("random", 1.0, 0, 0): 0.1})
    text = spec.format(base=base, missing=tmp_path / "none.csv")
    with pytest.raises(SystemExit) as stop:
        ablation.main(["--row", text])
    assert stop.value.code == 2 and message in capsys.readouterr().err
