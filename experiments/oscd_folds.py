"""The development protocol on real Sentinel-2: OSCD cities, folds over held-out cities.

Few labelled cities (the 10 of ``realdata/cd/oscd_dev10``, or OSCD's 24) make one fixed
train/test split a noisy verdict: which cities are held out moves F1 as much as the method.
This script rotates them. From OSCD's raw layout it writes, once, under ``--work``:

- ``raw/``: the layout with every labelled city listed as train (symlinks, nothing copied);
- ``pretrain/``: ``sdrl prep oscd --pretrain`` of every city's pair (no change labels; masks
  from ``--masks``), shared by all folds;
- ``tiles/`` (``--tile`` px training tiles) and ``whole/`` (whole images) of every city;
- ``folds/<k>/{tiles,whole}``: symlinks to those with their own ``list/``: fold ``k`` holds
  out every ``--folds``-th city (sorted names, starting at the ``k``-th) — it finetunes on the
  tiles of the others and evaluates whole images of its own.

Then it runs ``compare.py`` once per fold (``--out WORK/<name>fold<k>``), every fold sharing the
pretraining runs (``--pretrain-dir WORK/runs_pretrain``: each method pretrains once), and
writes ``WORK/<name>results.csv`` (the folds' rows with a ``fold`` column) and
``WORK/<name>results.md``:
F1 and IoU per initialisation × label fraction, mean ± std over folds × seeds, and per fold.
Arguments after ``--`` go to ``compare.py`` (inits, fractions, seeds, budgets, options).

Normalisation statistics are those of all cities' images (held-out ones included): image
statistics, no labels; the pretraining set uses every city's images too, as the protocol
intends (self-supervised pretraining sees unlabelled scenes of the test cities). With
``--pretrain-cities train`` each fold instead pretrains on its finetuning cities only
(``folds/<k>/pretrain_train``: the shared set's lists less the held-out cities; runs in
``PRETRAIN_DIR/train_fold<k>``): the held-out cities are never seen, with fewer scenes; ``test``
pretrains on the held-out cities only (with ``train``, it separates "which scenes" from "how
many": within a fold the two sides hold different numbers of tiles).

Example (the shipped settings: ``experiments/configs/oscd_dev.yaml``)::

    python experiments/oscd_folds.py --src ../shared/realdata/cd/oscd_dev10 --work runs/oscd_dev \\
        -- --config experiments/configs/oscd_dev.yaml
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import logging
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdrl.cli import main as sdrl_main
from sdrl.data.prep.collection import parse_masks
from sdrl.data.prep.oscd import locate_oscd
from sdrl.data.prep.oscd_pretrain import DEFAULT_MASKS
from sdrl.data.staging import write_atomic, write_json_atomic

log = logging.getLogger("oscd_folds")


def write_text(path: Path, text: str) -> None:
    """``text`` into ``path`` atomically."""
    write_atomic(path, lambda file: file.write(text.encode()))


def _compare_module() -> Any:
    spec = importlib.util.spec_from_file_location("compare", Path(__file__).with_name("compare.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("compare", module)
    spec.loader.exec_module(module)
    return module


def all_train_layout(src: Path, work: Path) -> list[str]:
    """``work/raw``: OSCD's layout with every labelled city as train (symlinks); the cities."""
    images, labels, _ = locate_oscd(src, None, None, None)
    raw = work / "raw"
    (raw / "images").mkdir(parents=True, exist_ok=True)
    (raw / "labels").mkdir(exist_ok=True)
    cities = []
    for labels_dir in (labels["train"], labels["test"]):
        if labels_dir is None:
            continue
        for city in sorted(p.name for p in labels_dir.iterdir() if p.is_dir()):
            if (images / city).is_dir() and city not in cities:
                cities.append(city)
                for link, target in (
                    (raw / "images" / city, images / city),
                    (raw / "labels" / city, labels_dir / city),
                ):
                    if not link.is_symlink():
                        link.symlink_to(target.resolve(), target_is_directory=True)
    cities.sort()
    write_text(raw / "images" / "train.txt", ",".join(cities))
    write_text(raw / "images" / "test.txt", "")
    return cities


def prepare(src: Path, work: Path, tile: int, pretrain_tile: int, masks: str) -> list[str]:
    """Write raw/, pretrain/, tiles/ and whole/ (each skipped when already there)."""
    cities = all_train_layout(src, work)
    base = ["prep", "oscd", "--src", str(work / "raw"), "--images", "images"]
    base += ["--train-labels", "labels", "--test-labels", "labels"]
    plan = {
        "whole": [],
        "tiles": ["--tile", str(tile)],
        "pretrain": ["--pretrain", "--masks", masks, "--tile", str(pretrain_tile)],
    }
    _check_masks(work / "pretrain", masks)
    for name, extra in plan.items():
        done = (work / name / "dataset.json").is_file()
        if not done and sdrl_main([*base, "--out", str(work / name), "--overwrite", *extra]):
            raise SystemExit(f"oscd_folds.py: sdrl prep oscd failed for {work / name}")
    return cities


def _check_masks(pretrain: Path, masks: str) -> None:
    """Refuse a pretraining set already in WORK whose masks are not ``masks``."""
    meta = pretrain / "dataset.json"
    if not meta.is_file():
        return
    source, k = parse_masks(masks)
    wanted = f"kmeans:{k}" if source == "kmeans" else source
    found = json.loads(meta.read_text()).get("provenance", {}).get("masks")
    if found != wanted:
        raise SystemExit(
            f"oscd_folds.py: {pretrain} holds masks {found}, not --masks {wanted}; "
            f"use another --work, or --masks {found}"
        )


def held_out(cities: Sequence[str], folds: int, fold: int) -> list[str]:
    """The cities fold ``fold`` evaluates: every ``folds``-th of the sorted names."""
    return sorted(cities)[fold::folds]


def _city_of(tile: str, cities: Sequence[str]) -> str:
    """The city a tile id (``<city>`` or ``<city>_<y>_<x>``) belongs to."""
    return next(c for c in cities if tile == c or tile.startswith(f"{c}_"))


def _linked(source: Path, folder: Path, provenance: dict[str, Any]) -> None:
    """``folder``: symlinks to ``source``'s raster folders and its dataset.json, re-labelled."""
    (folder / "list").mkdir(parents=True, exist_ok=True)
    for sub in ("A", "B", "label", "label_B"):
        if (source / sub).is_dir() and not (folder / sub).is_symlink():
            (folder / sub).symlink_to((source / sub).resolve(), target_is_directory=True)
    meta = json.loads((source / "dataset.json").read_text())
    meta["provenance"] = {**provenance, "from": str(source)}
    write_json_atomic(folder / "dataset.json", meta)


def write_fold(work: Path, cities: Sequence[str], folds: int, fold: int) -> Path:
    """``folds/<fold>/{tiles,whole}``: the shared folders with this fold's split lists."""
    test = held_out(cities, folds, fold)
    root = work / "folds" / str(fold)
    provenance = {"recipe": "experiments/oscd_folds.py", "fold": fold, "folds": folds}
    for name in ("tiles", "whole"):
        source, folder = work / name, root / name
        _linked(source, folder, {**provenance, "held_out": test})
        ids = sorted(p.stem for p in (source / "A").iterdir())
        split = "test" if name == "whole" else "train"
        chosen = [i for i in ids if (_city_of(i, cities) in test) == (split == "test")]
        write_text(folder / "list" / f"{split}.txt", ("\n".join(chosen) + "\n"))
    return root


def write_fold_pretrain(
    work: Path, cities: Sequence[str], folds: int, fold: int, keep: str = "train"
) -> Path:
    """``folds/<fold>/pretrain_<keep>``: the pretraining set of one side of the fold's cities.

    Its train and val lists are the shared set's, restricted to the fold's finetuning cities
    (``keep="train"``: a pretraining that never sees the cities it is evaluated on) or to its
    held-out cities (``keep="test"``: only the scenes it is evaluated on). ``--pretrain-cities``.
    """
    if keep not in ("train", "test"):
        raise ValueError(f"keep: expected train or test, found {keep!r}")
    test = held_out(cities, folds, fold)
    source, folder = work / "pretrain", work / "folds" / str(fold) / f"pretrain_{keep}"
    provenance = {"recipe": "experiments/oscd_folds.py", "fold": fold, "folds": folds}
    kept = test if keep == "test" else [c for c in cities if c not in test]
    _linked(source, folder, {**provenance, "cities": kept})
    for split in ("train", "val"):
        listed = source / "list" / f"{split}.txt"
        if not listed.is_file():
            continue
        ids = [i for i in listed.read_text().split() if _city_of(i, cities) in kept]
        if not ids:
            raise SystemExit(
                f"oscd_folds.py: no {split} tile of {source} is in fold {fold}'s {keep} cities"
            )
        write_text(folder / "list" / f"{split}.txt", ("\n".join(ids) + "\n"))
    return folder


def _recorded(row: dict[str, Any], key: str) -> float | None:
    """A value of a cell's metrics.json (``mean_image_f1``, ``average_precision``...), if there."""
    path = Path(str(row.get("metrics", "")))
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get(key)
    return float(value) if value is not None else None


def mean_std(values: list[float]) -> str:
    """``mean ± std`` to 3 decimals (the value alone for one, ``–`` for none)."""
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "–"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def aggregate(
    work: Path, name: str, folds: int, cities: Sequence[str], compare_argv: Sequence[str]
) -> None:
    """WORK/<name>results.csv (rows of every fold) and WORK/<name>results.md (mean ± std)."""
    rows = []
    for fold in range(folds):
        path = work / f"{name}fold{fold}" / "results.csv"
        if path.is_file():
            with open(path, newline="") as file:
                rows += [{"fold": fold, **r} for r in csv.DictReader(file)]
    if not rows:
        return
    columns = ["fold", *[c for c in rows[0] if c != "fold"]]
    text = (
        ",".join(columns)
        + "\n"
        + "".join(",".join(str(r[c]) for c in columns) + "\n" for r in rows)
    )
    write_text(work / f"{name}results.csv", text)
    groups: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["init"], r["head"], r["fraction"]), []).append(r)

    def _values(cells: list[dict[str, Any]], key: str) -> list[float]:
        return [v for v in (_recorded(c, key) for c in cells) if v is not None]

    lines = [
        "# OSCD development protocol: folds over held-out cities",
        "",
        f"Cities: {', '.join(cities)}; {folds} folds, fold k holds out "
        + "; ".join(f"{k}: {', '.join(held_out(cities, folds, k))}" for k in range(folds)),
        "",
        f"compare.py arguments: `{' '.join(compare_argv)}`",
        "",
        "F1 / IoU of the change class on whole images of the held-out cities, pooled over "
        "their pixels, mean ± std over folds × seeds (n = cells); city F1: the mean over the "
        "held-out cities of each city's F1 (pooled F1 weighs cities by size: one large city "
        "with seasonal differences everywhere can decide it); AP: average precision of the "
        "change class, pooled (threshold-free: ranking, not calibration; – where the cell "
        "was evaluated before sdrl recorded it).",
        "",
        "| init | head | fraction | n | F1 | IoU | city F1 | AP | F1 per fold (mean over seeds) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (init, head, fraction), cells in sorted(groups.items()):
        per_fold = []
        for fold in range(folds):
            f1 = [float(c["f1"]) for c in cells if c["fold"] == fold]
            per_fold.append(f"{statistics.mean(f1):.3f}" if f1 else "–")
        lines.append(
            f"| {init} | {head} | {fraction} | {len(cells)} | "
            f"{mean_std([float(c['f1']) for c in cells])} | "
            f"{mean_std([float(c['iou']) for c in cells])} | "
            f"{mean_std(_values(cells, 'mean_image_f1'))} | "
            f"{mean_std(_values(cells, 'average_precision'))} | "
            f"{' / '.join(per_fold)} |"
        )
    write_text(work / f"{name}results.md", ("\n".join(lines) + "\n"))


def build_parser() -> argparse.ArgumentParser:
    """The flags before ``--`` (those after it are compare.py's)."""
    parser = argparse.ArgumentParser(prog="oscd_folds.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True, help="OSCD's raw layout (e.g. oscd_dev10)")
    parser.add_argument("--work", required=True, help="folder for data, folds and results")
    parser.add_argument("--folds", type=int, default=2, help="folds over cities (default 2)")
    parser.add_argument("--only-folds", help="run only these folds, e.g. 0 (default all)")
    parser.add_argument("--tile", type=int, default=96, help="finetuning tile side (96)")
    parser.add_argument("--pretrain-tile", type=int, default=128, help="pretraining tile (128)")
    parser.add_argument(
        "--masks", default=DEFAULT_MASKS, help=f"pretraining masks (default {DEFAULT_MASKS})"
    )
    parser.add_argument(
        "--name",
        default="",
        help="prefix of this comparison's folders and results in WORK (several comparisons, "
        "e.g. finetuning recipes, share the data and the pretraining runs)",
    )
    parser.add_argument(
        "--pretrain-dir", help="pretraining runs (default WORK/runs_pretrain), shared by folds"
    )
    parser.add_argument(
        "--pretrain-cities",
        choices=("all", "train", "test"),
        default="all",
        help="all (default): pretrain once on every city's pair, held-out cities included "
        "(unlabelled); train: each fold pretrains on its finetuning cities only, the held-out "
        "cities never seen; test: on its held-out cities only (train and test: one run per "
        "fold, in PRETRAIN_DIR/<train|test>_fold<k>)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, compare_argv = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if ("--" in argv) else (argv, [])
    )
    parser = build_parser()
    a = parser.parse_args(own)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    work = Path(a.work)
    cities = prepare(Path(a.src), work, a.tile, a.pretrain_tile, a.masks)
    if a.folds < 2 or a.folds > len(cities):
        parser.error(f"--folds: expected 2..{len(cities)} (the cities), found {a.folds}")
    compare = _compare_module()
    todo = range(a.folds) if not a.only_folds else [int(k) for k in a.only_folds.split(",")]
    for fold in todo:
        root = write_fold(work, cities, a.folds, fold)
        log.info("fold %d: held out %s", fold, ", ".join(held_out(cities, a.folds, fold)))
        pretrain_data = work / "pretrain"
        pretrain_dir = Path(a.pretrain_dir or work / "runs_pretrain")
        if a.pretrain_cities != "all":
            pretrain_data = write_fold_pretrain(work, cities, a.folds, fold, a.pretrain_cities)
            pretrain_dir = pretrain_dir / f"{a.pretrain_cities}_fold{fold}"
        code = compare.main(
            [
                *compare_argv,
                "--data", str(root / "tiles"),
                "--eval-data", str(root / "whole"),
                "--eval-split", "test",
                "--pretrain-data", str(pretrain_data),
                "--pretrain-dir", str(pretrain_dir),
                "--out", str(work / f"{a.name}fold{fold}"),
            ]
        )  # fmt: skip
        if code != 0:
            return code
        aggregate(work, a.name, a.folds, cities, compare_argv)
    log.info("results: %s, %s", work / f"{a.name}results.csv", work / f"{a.name}results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
