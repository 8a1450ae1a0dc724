"""The documentation's commands parse with the real parsers and run, at a tiny size.

Every fenced ``bash``/``sh``/``shell``/``console`` and ``python`` block of README.md, docs/*.md
and experiments/README.md is read. Each ``sdrl`` command (also as ``python -m sdrl`` or under
``torchrun``/``srun``) and each ``experiments/compare.py`` command is parsed by the real argument
parser, so a renamed or removed flag fails. Then every block runs, in the order of the files,
in one temporary folder:

- ``sdrl`` commands run in process (``sdrl.cli.main``) as written, except the flags of
  :data:`SHRINK` / :data:`SHRINK_IF_GIVEN`, which make them tiny;
- the inputs the docs name as placeholders (``A.tif``, ``L.geojson``, ``PAIRS.csv``, raw
  LEVIR-CD / WHU-CD / OSCD folders...) are made first by :data:`FIXTURES`;
- ``python`` blocks run with the substitutions of :data:`PYTHON_SHRINK`;
- a command that cannot run here (several GPUs, a network, a long grid with its own test) is in
  :data:`PARSE_ONLY` with the reason; other programs (pip, pytest...) are in
  :data:`OTHER_PROGRAMS` and not run.

Whatever is documented is run unless listed, and every entry of these tables must still match
the docs, so neither can drift.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import itertools
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torchvision
from affine import Affine
from rasterio.warp import transform_bounds

from sdrl.cli import build_parser, main
from sdrl.cli.config import apply_config, find_config
from sdrl.data.io import write_raster
from sdrl.data.synth import generate_dataset
from sdrl.errors import SdrlError
from tests.data.test_prep_datasets import make_levir, make_oscd, make_whu_whole
from tests.experiments_scripts import load_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "experiments/README.md"]
SHELL = {"bash", "sh", "shell", "console"}
CONTROL = {"&&", "||", ";", "|", "&"}

# Flags set on every run of a command (replaced where the docs give them, added where not).
SHRINK: dict[tuple[str, ...], dict[str, str]] = {
    ("synth",): {"--num": "24", "--size": "64"},
    ("prep", "pairs"): {"--tile": "64", "--workers": "1"},
    ("pretrain",): {
        "--max-steps": "2", "--batch-size": "2", "--num-workers": "0",
        "--hidden-dim": "32", "--output-dim": "16", "--probe": "none",
    },
    ("finetune",): {"--max-steps": "2", "--batch-size": "2", "--num-workers": "0"},
    ("synth", "crop"): {"--num": "12", "--size": "48"},  # sdrl synth --kind crop: a multiple of 3
    ("crop", "train"): {"--max-steps": "2", "--batch-size": "2", "--num-workers": "0"},
}  # fmt: skip
# Flags replaced only where the docs give them.
SHRINK_IF_GIVEN: dict[tuple[str, ...], dict[str, str]] = {
    ("prep", "oscd"): {"--tile": "16"},
}

# Training runs (by --out) that feed nothing needing their documented backbone: the test-size
# ResNet then trains instead (runs/sdrl, for one, must stay a ResNet-18: it is exported for
# torchvision and initialises the finetuning examples).
TINY_BACKBONE = {
    "runs/detcon", "runs/sdrl_long", "runs/mine", "runs/scenes_sdrl", "runs/sdrl_wandb",
    "runs/cd_random", "runs/levir256",
}  # fmt: skip

# Documented commands that are parsed but not run: a substring of the command → why.
PARSE_ONLY = {
    "experiments/compare.py": "the comparison grid: tests/experiments/test_compare.py runs it tiny",
    "experiments/oscd_folds.py": (
        "hours on real OSCD data; tests/experiments/test_oscd_folds.py tests its parts"
    ),
    "experiments/oscd_ablation.py": (
        "reads oscd_folds.py's results; tests/experiments/test_oscd_ablation.py runs it"
    ),
    "sdrl demo": "tests/cli/test_demo.py runs the demo at a tiny size (and checks its report)",
    "--devices 4": "several GPUs",
    "--devices 2,3": "several GPUs",
    "--accelerator gpu": "a GPU",
    "--device cuda": "a GPU",
    "--accelerator cpu --devices 2": (
        "DDP re-runs the command line for the second process; "
        "tests/tasks/test_pretrain_ddp.py runs it through python -m sdrl"
    ),
    "--wandb-online": "a W&B account and the network",
    "--temporal-init exports/video": (
        "a Swin-T-sized crop model; tests/tasks/crop/test_train.py and "
        "tests/models/crop/test_init.py initialise the encoders from real exports"
    ),
}
# Sub-commands without an example in the docs yet (each must be undocumented; remove it when
# its section is written).
UNDOCUMENTED: dict[str, str] = {}
# Programs of the docs that are not sdrl and are not run.
OTHER_PROGRAMS = {"pip", "pytest", "ruff", "mypy", "wandb", "sbatch"}

# Python blocks (found by a line they contain) → regex substitutions that make them tiny.
PYTHON_SHRINK: dict[str, list[tuple[str, str]]] = {
    "sdrl.generate_dataset(": [
        (r"num=\d+", "num=24"),
        (r"PretrainConfig\(", 'PretrainConfig(backbone="resnet_tiny", '),
        (r"batch_size=\d+", "batch_size=2"),
        (r"max_steps=\d+", "max_steps=2, num_workers=0"),
    ],
    'ChangeDataset("LEVIR-CD256"': [(r"num_workers=\d+", "num_workers=0")],
    'sdrl.load_torchvision("exports/video")': [(r"224, 224", "64, 64")],
}


# ------------------------------------------------------------------ reading the docs


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it is, its language and text."""

    where: str  # "docs/x.md:12" (the line of the opening fence)
    lang: str
    text: str


@dataclass(frozen=True)
class Command:
    """One simple command of a shell block."""

    where: str
    text: str  # the logical line, as documented
    program: str  # "sdrl", "compare" or the program's name
    argv: tuple[str, ...]  # sdrl / compare: the arguments; other programs: every token
    words: str  # the command's tokens, comments and environment assignments left out


def read_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a markdown file."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, match.start()) + 1
        where = f"{path.relative_to(ROOT).as_posix()}:{line}"
        blocks.append(Block(where, match.group(1), match.group(2)))
    return blocks


def all_blocks() -> list[Block]:
    return [block for doc in DOCS for block in read_blocks(doc)]


def logical_lines(block: Block) -> Iterator[tuple[str, str]]:
    """``(where, line)`` of a shell block: continuations joined, console output dropped."""
    path, fence = block.where.rsplit(":", 1)
    current, first, continued = "", 0, False
    for number, line in enumerate(block.text.splitlines()):
        if block.lang == "console" and not continued:
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if not current:
            first = number
        else:
            line = line.lstrip()  # a continuation line's indent
        continued = line.rstrip().endswith("\\")
        if continued:
            current += line.rstrip()[:-1].rstrip() + " "
            continue
        current += line
        if current.strip():
            yield f"{path}:{int(fence) + 1 + first}", current.strip()
        current = ""


def split_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line: tokens, comments dropped, split at ``&&``, ``|``..."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in CONTROL:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def to_command(where: str, line: str, tokens: list[str]) -> Command:
    """Classify a simple command; an unknown program fails (list it or document sdrl)."""
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]  # environment assignments
    words = " ".join(tokens)
    for i in range(len(tokens) - 1):
        if tokens[i : i + 2] == ["-m", "sdrl"]:  # python -m sdrl, torchrun / srun ... -m sdrl
            return Command(where, line, "sdrl", tuple(tokens[i + 2 :]), words)
    if tokens[0] == "sdrl":
        return Command(where, line, "sdrl", tuple(tokens[1:]), words)
    if tokens[0].startswith("python") and tokens[1:2] == ["experiments/compare.py"]:
        return Command(where, line, "compare", tuple(tokens[2:]), words)
    if tokens[0].startswith("python") and tokens[1:2] == ["experiments/oscd_folds.py"]:
        return Command(where, line, "oscd_folds", tuple(tokens[2:]), words)
    if tokens[0].startswith("python") and tokens[1:2] == ["experiments/oscd_ablation.py"]:
        return Command(where, line, "oscd_ablation", tuple(tokens[2:]), words)
    if tokens[0] in OTHER_PROGRAMS:
        return Command(where, line, tokens[0], tuple(tokens), words)
    raise AssertionError(
        f"{where}: '{line}' runs {tokens[0]!r}, which this test does not know: "
        "add it to OTHER_PROGRAMS (not run) or document an sdrl command"
    )


def commands_of(block: Block) -> list[Command]:
    return [
        to_command(where, line, tokens)
        for where, line in logical_lines(block)
        for tokens in split_commands(line)
    ]


def all_commands() -> list[Command]:
    return [c for b in all_blocks() if b.lang in SHELL for c in commands_of(b)]


def parse_only_reason(command: Command) -> str | None:
    return next((why for key, why in PARSE_ONLY.items() if key in command.words), None)


# ------------------------------------------------------------------ parsing


def _command_parser(parser: argparse.ArgumentParser, argv: tuple[str, ...]):
    """The (sub-)parser that parses the flags of ``argv`` and the sub-command path to it."""
    path: list[str] = []
    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or token.startswith("-"):
            break
        if token not in subs[0].choices:
            break
        parser = subs[0].choices[token]
        path.append(token)
    return parser, tuple(path)


@functools.cache
def sdrl_parser() -> argparse.ArgumentParser:
    """One ``sdrl`` parser, read only (:func:`parse` builds its own for ``--config``)."""
    return build_parser()


def _load_compare(script: str = "compare"):
    return load_experiment(script)


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def parse(command: Command, cwd: Path = ROOT) -> None:
    """Parse ``command`` with its real parser; a usage error fails with the parser's message.

    Flags must be spelt out (no abbreviations). compare.py's commands go through its
    ``parse_settings``, which also checks the values. A ``--config`` file is read relative to
    ``cwd``; one that does not exist yet (a run folder that an earlier command writes) only
    lifts the required flags, which it would provide.
    """
    argv = list(command.argv)
    if command.program == "oscd_ablation":
        _load_compare("oscd_ablation").build_parser().parse_args(argv)
        return
    if command.program == "oscd_folds":  # its own flags, then compare.py's after "--"
        cut = argv.index("--") if "--" in argv else len(argv)
        own, rest = argv[:cut], argv[cut + 1 :]
        _load_compare("oscd_folds").build_parser().parse_args(own)
        forwarded = ["--out", "o", "--data", "d", "--eval-data", "e", "--pretrain-data", "p"]
        argv = [*rest, *forwarded]
        command = dataclasses.replace(command, program="compare", argv=tuple(argv))
        cwd = ROOT  # its --config names a shipped file of the repository
    config = find_config(argv)
    exists = config is not None and (cwd / config).is_file()
    compare = command.program == "compare"
    if compare:
        parser = _load_compare().build_parser()
    else:
        parser = build_parser() if config is not None else sdrl_parser()
    target, path = _command_parser(parser, command.argv)
    known = {s for action in target._actions for s in action.option_strings}
    name = " ".join((command.program, *path))
    for flag in (token.split("=")[0] for token in argv if token.startswith("--")):
        # exact names: argparse would take --x for a flag renamed to --x-y (an abbreviation)
        assert flag in known, f"{command.where}: '{command.text}': {name} has no flag {flag}"
    if config is not None and not exists:
        for action in target._actions:
            action.required = False
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), _working_directory(cwd):
            if compare and (exists or config is None):
                _load_compare().parse_settings(argv)
                return
            if exists:
                apply_config(parser, argv)
            parser.parse_args(argv)
    except SystemExit:
        message = errors.getvalue().strip().splitlines()[-1:] or ["(no message)"]
        raise AssertionError(
            f"{command.where}: '{command.text}' does not parse: {message[0]}"
        ) from None
    except SdrlError as error:
        raise AssertionError(f"{command.where}: '{command.text}' is refused: {error}") from None


# ------------------------------------------------------------------ fixtures


def _pair(root: Path) -> None:
    """A.tif, B.tif (4 named bands, 256 px), L.tif (their classes), changes.tif, L.geojson."""
    generate_dataset(root / "_fixtures/pair", kind="pretrain", num=1, size=256, bands=4, seed=3)
    for part, name in (("A", "A.tif"), ("B", "B.tif"), ("label", "L.tif")):
        shutil.copy(root / "_fixtures/pair" / part / "000000.tif", root / name)
    with rasterio.open(root / "L.tif") as file:
        labels, crs, transform = file.read(1), file.crs, file.transform
        west, south, east, north = transform_bounds(crs, "EPSG:4326", *file.bounds)
    changes = (labels == 5).astype(np.uint8)  # buildings
    write_raster(root / "changes.tif", changes, crs=str(crs), transform=transform)
    features = []
    for i, name in enumerate(("building", "road", "building")):
        x0 = west + (east - west) * (0.1 + 0.3 * i)
        y0 = south + (north - south) * (0.1 + 0.3 * i)
        x1, y1 = x0 + (east - west) * 0.2, y0 + (north - south) * 0.2
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        geometry = {"type": "Polygon", "coordinates": [ring]}
        features.append({"type": "Feature", "properties": {"class": name}, "geometry": geometry})
    collection = {"type": "FeatureCollection", "features": features}
    (root / "L.geojson").write_text(json.dumps(collection))


def _image(seed: int, size: int = 128, bands: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 5000, (bands, size, size), dtype=np.uint16)


def _unnamed_pair(root: Path) -> None:
    """scene_2019.tif, scene_2021.tif: no band names, the second on a grid 3 px off."""
    for i, name in enumerate(("scene_2019.tif", "scene_2021.tif")):
        transform = Affine(10, 0, 500000 + 30 * i, 0, -10, 5000000)
        write_raster(root / name, _image(i), crs="EPSG:32633", transform=transform)


def _collection(root: Path) -> None:
    """PAIRS.csv as docs/own-data.md shows it, with its rasters; 2019/ and 2021/ by name."""
    blocks = [b for b in read_blocks(ROOT / "docs/own-data.md") if b.lang == "csv"]
    assert len(blocks) == 1, "docs/own-data.md: expected one csv block (PAIRS.csv)"
    (root / "PAIRS.csv").write_text(blocks[0].text)
    rows = [line.split(",") for line in blocks[0].text.splitlines()[1:]]
    paths = [p for row in rows for p in row[1:3]]
    paths += ["2019/north.tif", "2021/north.tif", "2019/south.tif", "2021/south.tif"]
    transform = Affine(10, 0, 500000, 0, -10, 5000000)
    for seed, path in enumerate(paths):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        names = ["red", "green", "blue", "nir"]
        write_raster(
            root / path, _image(seed), crs="EPSG:32633", transform=transform, band_names=names
        )


def _levir_256(root: Path) -> None:
    """A folder in the community layout, without dataset.json (computed on first use)."""
    generate_dataset(root / "LEVIR-CD256", kind="change", num=24, size=64, bands=3, seed=2)
    (root / "LEVIR-CD256/dataset.json").unlink()


def _imagenet(root: Path) -> None:
    torch.save(
        torchvision.models.resnet18(weights=None).state_dict(), root / "resnet18-imagenet.pth"
    )


# Placeholder inputs the docs name → what makes them (in the temporary folder).
FIXTURES: dict[str, Callable[[Path], object]] = {
    "A.tif": _pair,
    "scene_2019.tif": _unnamed_pair,
    "PAIRS.csv": _collection,
    "LEVIR-CD256": _levir_256,
    "LEVIR-CD": lambda root: make_levir(
        root / "LEVIR-CD", {"train": ["train_1"], "val": ["val_1"], "test": ["test_1"]}
    ),
    "WHU-CD": lambda root: make_whu_whole(root / "WHU-CD"),
    "OSCD": lambda root: make_oscd(root / "OSCD"),
    "resnet18-imagenet.pth": _imagenet,
}


# ------------------------------------------------------------------ running


def shrink_key(command: Command) -> tuple[str, ...]:
    """The sub-command path of ``command``; ``("synth", "crop")`` for crop patches."""
    _, path = _command_parser(sdrl_parser(), command.argv)
    argv = list(command.argv)
    if path == ("synth",) and "--kind" in argv[:-1] and argv[argv.index("--kind") + 1] == "crop":
        return ("synth", "crop")
    return path


def shrink(command: Command) -> list[str]:
    """The argv that runs ``command`` at a tiny size (:data:`SHRINK`, :data:`SHRINK_IF_GIVEN`)."""
    path = shrink_key(command)
    argv = list(command.argv)
    tiny_backbone = {"--backbone": "resnet_tiny"} if _out(command) in TINY_BACKBONE else {}
    for table, add in ((SHRINK, True), (SHRINK_IF_GIVEN, False), ({path: tiny_backbone}, True)):
        for flag, value in table.get(path, {}).items():
            if flag in argv:
                argv[argv.index(flag) + 1] = value
            elif add:
                argv += [flag, value]
    return argv


def _out(command: Command) -> str | None:
    argv = list(command.argv)
    return argv[argv.index("--out") + 1] if "--out" in argv[:-1] else None


def python_source(block: Block) -> str:
    """A python block with the substitutions of :data:`PYTHON_SHRINK` applied."""
    keys = [key for key in PYTHON_SHRINK if key in block.text]
    assert len(keys) <= 1, f"{block.where}: several PYTHON_SHRINK keys match: {keys}"
    source = block.text
    for pattern, replacement in PYTHON_SHRINK[keys[0]] if keys else []:
        source, count = re.subn(pattern, replacement, source)
        assert count, f"{block.where}: PYTHON_SHRINK pattern {pattern!r} no longer matches"
    return source


def run_sdrl(command: Command, capsys: pytest.CaptureFixture) -> None:
    argv = shrink(command)
    capsys.readouterr()
    status = main(argv)
    if status != 0:
        err = capsys.readouterr().err.strip().splitlines()[-5:]
        pytest.fail(
            f"{command.where}: '{command.text}' failed (exit {status}) at a tiny size as "
            f"sdrl {shlex.join(argv)}:\n" + "\n".join(err)
        )


# ------------------------------------------------------------------ tests


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The sub-command paths of ``parser`` that take no further sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {path}
    return {leaf for name, sub in subs[0].choices.items() for leaf in _leaves(sub, (*path, name))}


def test_docs_have_commands_and_python():
    blocks = all_blocks()
    commands = all_commands()
    assert {"sdrl", "compare"} <= {c.program for c in commands}
    documented = {
        _command_parser(sdrl_parser(), c.argv)[1] for c in commands if c.program == "sdrl"
    }
    leaves = {leaf for leaf in _leaves(sdrl_parser()) if leaf[0] not in UNDOCUMENTED}
    missing = sorted(" ".join(leaf) for leaf in leaves - documented)
    assert not missing, f"sub-commands without an example in the docs: {missing}"
    for name in UNDOCUMENTED:
        assert all(path[:1] != (name,) for path in documented), (
            f"sdrl {name} is documented now: drop it from UNDOCUMENTED"
        )
    assert sum(b.lang == "python" for b in blocks) >= 5
    for block in blocks:  # a command in an unmarked block would be neither parsed nor run
        assert block.lang in {*SHELL, "python", "csv", "yaml", "text", ""}, block.where
        if block.lang not in SHELL:
            assert not re.search(r"^\s*(\$ )?(sdrl|python -m sdrl) ", block.text, re.M), (
                f"{block.where}: a command in a ```{block.lang} block: mark it ```bash"
            )


def test_every_documented_command_parses():
    for command in all_commands():
        if command.program in ("sdrl", "compare", "oscd_folds", "oscd_ablation"):
            parse(command)


def test_tables_match_the_docs():
    commands = all_commands()
    texts = [c.words for c in commands]
    for key in PARSE_ONLY:
        assert any(key in t for t in texts), f"PARSE_ONLY entry {key!r} matches no command"
    paths = {shrink_key(c) for c in commands if c.program == "sdrl"}
    for table in (SHRINK, SHRINK_IF_GIVEN):
        for path in table:
            assert path in paths, f"no documented command 'sdrl {' '.join(path)}' to shrink"
    python = [b.text for b in all_blocks() if b.lang == "python"]
    for key in PYTHON_SHRINK:
        assert sum(key in text for text in python) == 1, f"PYTHON_SHRINK {key!r}: not one block"
    documented = "\n".join(texts + python)
    for name in FIXTURES:
        assert name in documented, f"fixture {name!r}: the docs no longer name it"
    outs = {_out(c) for c in commands if c.program == "sdrl"}
    for run in TINY_BACKBONE:
        assert run in outs, f"TINY_BACKBONE {run!r}: no documented command writes it"


def test_inline_commands_use_existing_flags():
    """``sdrl ...`` in the prose (`code` spans) names sub-commands and flags that exist."""
    for doc in DOCS:
        name = doc.relative_to(ROOT).as_posix()
        text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.S | re.M)
        for span in re.findall(r"`(sdrl [^`]+)`", text):
            words = " ".join(span.split()).replace("\\|", "|").split()[1:]
            # sub-command words: lower case (`sdrl prep levir|whu`); `COMMAND`, `DIR` are not
            names = list(itertools.takewhile(re.compile(r"[a-z][a-z0-9|-]*").fullmatch, words))
            if not names:  # `sdrl COMMAND --help`
                continue
            for choice in itertools.product(*(word.split("|") for word in names)):
                target, path = _command_parser(sdrl_parser(), choice)
                assert path == choice, f"{name}: `{span}`: no sub-command sdrl {' '.join(choice)}"
                known = {s for a in target._actions for s in a.option_strings}
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", span):
                    assert flag in known, f"{name}: `{span}`: sdrl {' '.join(path)} has no {flag}"


def _slug(heading: str) -> str:
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


def test_links_between_docs_resolve():
    for doc in DOCS:
        name = doc.relative_to(ROOT).as_posix()
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            assert path.exists(), f"{name}: link to a missing {target}"
            if anchor and path.suffix == ".md":
                code_free = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
                slugs = {_slug(h) for h in re.findall(r"^#+ (.*)$", code_free, re.M)}
                assert anchor in slugs, f"{name}: no heading #{anchor} in {file or name}"


@pytest.mark.slow
def test_documented_commands_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # offline W&B; nothing listens
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for make in FIXTURES.values():
        make(tmp_path)
    ran = []
    for block in all_blocks():
        if block.lang == "python":
            code = compile(python_source(block), block.where, "exec")
            exec(code, {"__name__": "__docs__"})
            ran.append(block.where)
            continue
        if block.lang not in SHELL:
            continue
        for command in commands_of(block):
            if command.program not in ("sdrl", "compare") or parse_only_reason(command):
                continue
            parse(command, cwd=tmp_path)
            assert command.program == "sdrl", f"{command.where}: compare.py runs only if listed"
            run_sdrl(command, capsys)
            ran.append(command.where)
    assert len(ran) >= 40, ran
