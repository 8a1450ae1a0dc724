"""One table from several runs of the development protocol: rows against paired references.

Each comparison of ``oscd_folds.py`` (``--name``) writes ``WORK/<name>results.csv``, one row per
fold × seed × initialisation × label fraction. An ablation changes one thing per comparison
(pretraining steps, masks, pooling level, finetuning recipe...), so its rows live in several
files. This script puts chosen rows side by side::

    python experiments/oscd_ablation.py --out ablation.md \\
        --reference "random=runs/oscd_dev/results.csv:random:1" \\
        --row "sdrl, 300 steps=runs/oscd_dev/results.csv:sdrl:1" \\
        --row "sdrl, 100 steps=runs/oscd_dev/p100_results.csv:sdrl:1"

A row or reference is ``LABEL=CSV:INIT:FRACTION``. For each row the table gives the cells, the
pooled F1, the mean per-city F1 and the average precision (mean ± std over folds × seeds, as in
``results.md``), then, for each reference, the **paired** difference of pooled F1: cells of the
same fold and finetuning seed share the training tiles (and the label subset) and the seed, so
their difference removes much of what the seed alone moves; given as mean ±
std over the pairs and the count of pairs the row wins. Pairs are matched on (fold, seed);
a reference without a cell of the row's (fold, seed) leaves that pair out (the count says so).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _folds_module() -> Any:
    name = "sdrl_experiments_oscd_folds"
    if name not in sys.modules:
        path = Path(__file__).with_name("oscd_folds.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass(frozen=True)
class Selection:
    """The cells of one initialisation and label fraction in one results.csv."""

    label: str
    cells: dict[tuple[str, str], dict[str, Any]]  # (fold, seed) → row

    @classmethod
    def parse(cls, text: str) -> Selection:
        """``LABEL=CSV:INIT:FRACTION`` → the selected cells.

        Raises:
            ValueError: A malformed spec, a missing file, or no cell matching.
        """
        parts = text.rsplit(":", 2)  # the label may hold ':' and '=', the path '=' not
        label, sep, csv_path = parts[0].rpartition("=")
        if not sep or not label or len(parts) != 3:
            raise ValueError(f"expected LABEL=CSV:INIT:FRACTION, found {text!r}")
        try:
            path, init, fraction = Path(csv_path), parts[1], float(parts[2])
        except ValueError:
            raise ValueError(f"expected a FRACTION number at the end, found {text!r}") from None
        if not path.is_file():
            raise ValueError(f"{path}: expected a results.csv of oscd_folds.py, found no file")
        with open(path, newline="") as file:
            rows = [
                r
                for r in csv.DictReader(file)
                if r["init"] == init and float(r["fraction"]) == fraction
            ]
        if not rows:
            raise ValueError(f"{path}: expected cells of init {init!r}, fraction {fraction:g}")
        return cls(label, {(r["fold"], r["seed"]): r for r in rows})

    def values(self, key: str) -> list[float]:
        """``f1`` from the CSV, other keys from each cell's metrics.json (where recorded)."""
        if key == "f1":
            return [float(r["f1"]) for r in self.cells.values()]
        found = (_folds_module()._recorded(r, key) for r in self.cells.values())
        return [v for v in found if v is not None]


def paired(row: Selection, reference: Selection) -> str:
    """Mean ± std of the row's pooled F1 minus the reference's over shared (fold, seed); wins."""
    shared = sorted(set(row.cells) & set(reference.cells))
    if not shared:
        return "–"
    deltas = [float(row.cells[k]["f1"]) - float(reference.cells[k]["f1"]) for k in shared]
    wins = sum(d > 0 for d in deltas)
    text = _folds_module().mean_std(deltas)
    if text.startswith(("-0.000", "0")):  # a gain, or a loss that rounds to nothing: "+"
        text = "+" + text.removeprefix("-")
    return f"{text} ({wins}/{len(shared)})"


def table(rows: Sequence[Selection], references: Sequence[Selection]) -> str:
    """The markdown table (module doc)."""
    mean_std = _folds_module().mean_std
    head = ["row", "n", "F1 (pooled)", "city F1", "AP"]
    head += [f"Δ F1 vs {r.label} (paired; wins)" for r in references]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [
            row.label,
            str(len(row.cells)),
            *(mean_std(row.values(k)) for k in ("f1", "mean_image_f1", "average_precision")),
        ]
        cells += [paired(row, r) for r in references]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The script's flags."""
    parser = argparse.ArgumentParser(
        prog="oscd_ablation.py", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--row", action="append", required=True, help="LABEL=CSV:INIT:FRACTION")
    parser.add_argument(
        "--reference", action="append", default=[], help="LABEL=CSV:INIT:FRACTION (paired Δ)"
    )
    parser.add_argument("--out", help="markdown file to write (default: print)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        rows = [Selection.parse(t) for t in a.row]
        references = [Selection.parse(t) for t in a.reference]
    except ValueError as error:
        parser.error(str(error))
    text = table(rows, references)
    if a.out:
        _folds_module().write_text(Path(a.out), text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
