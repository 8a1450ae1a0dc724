"""YAML config values pass the flags' own checks (types first, then ranges and choices)."""

from __future__ import annotations

import argparse

import pytest

from sdrl.cli import build_parser, main
from sdrl.cli.config import apply_config, config_value
from sdrl.cli.types import positive_int, probability
from sdrl.errors import ConfigError


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    subs = parser.add_subparsers(dest="command")
    run = subs.add_parser("run")
    run.add_argument("--data")
    run.add_argument("--max-steps", type=int, default=10)
    run.add_argument("--lr", type=float)
    run.add_argument("--tile", type=positive_int)
    run.add_argument("--fraction", type=probability)
    run.add_argument("--mode", choices=("a", "b"))
    run.add_argument("--precision", choices=("32", "16"))
    run.add_argument("--ids", type=_ints)
    run.add_argument("--option", action="append")
    run.add_argument("--fast", action="store_true")
    run.add_argument("--sizes", type=int, nargs="+")
    run.add_argument("--config")
    return parser


def _load(tmp_path, text: str) -> argparse.Namespace:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    parser = _parser()
    argv = ["run", "--config", str(config)]
    apply_config(parser, argv)
    return parser.parse_args(argv)


def test_typed_values_parse_as_on_the_command_line(tmp_path):
    args = _load(
        tmp_path,
        "max-steps: 7\nlr: 1e-3\ntile: 64\nfraction: 1\nmode: b\nprecision: 16\nids: [1, 2]\n"
        "option: [k=1, j=c5]\nfast: true\nsizes: [3, 4]\ndata: 2020\n",
    )
    assert args.max_steps == 7 and args.lr == 0.001 and args.tile == 64 and args.fraction == 1.0
    assert args.mode == "b" and args.precision == "16" and args.ids == [1, 2]
    assert args.option == ["k=1", "j=c5"] and args.fast is True and args.sizes == [3, 4]
    assert args.data == "2020"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max-steps: [1, 2]", "'max-steps': expected an integer for --max-steps, found [1, 2]"),
        ("max-steps: 2.5", "expected an integer for --max-steps, found 2.5"),
        ("max-steps: true", "expected an integer for --max-steps, found True"),
        ("lr: fast", "expected a number for --lr, found 'fast'"),
        ("lr: {a: 1}", "expected a number for --lr, found {'a': 1}"),
        ("tile: 0", "'tile': --tile: expected an integer > 0, found '0'"),
        ("fraction: 1.5", "--fraction: expected a number in [0, 1], found '1.5'"),
        ("mode: c", "expected one of a, b for --mode, found 'c'"),
        ("ids: [1, x]", "for --ids, found"),
        ("fast: 1", "expected true or false for --fast, found 1"),
        ("sizes: [3, x]", "expected an integer for --sizes, found 'x'"),
        ("data: 2020-01-01", "for --data, found datetime.date(2020, 1, 1)"),
    ],
)
def test_wrong_types_and_ranges_are_one_line_naming_the_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text + "\n")
    assert message in str(error.value) and str(error.value).startswith(str(tmp_path / "c.yaml"))
    assert "\n" not in str(error.value)


def test_config_value_of_a_generated_training_flag():
    parser = build_parser()
    finetune = parser._subparsers._group_actions[0].choices["finetune"]  # type: ignore[union-attr]
    by_dest = {a.dest: a for a in finetune._actions}
    assert config_value(by_dest["max_steps"], 30, "c.yaml") == 30
    with pytest.raises(ConfigError, match="expected an integer for --max-steps"):
        config_value(by_dest["max_steps"], [30], "c.yaml")
    with pytest.raises(ConfigError, match="expected one of cosine, poly, constant for --schedule"):
        config_value(by_dest["schedule"], "linear", "c.yaml")


def test_invalid_yaml_is_one_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("max-steps: [1,\n  2\nlr: 3\n")
    assert main(["finetune", "--config", str(config), "--data", "d", "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "c.yaml: expected a readable YAML file" in err
    assert "at line 3, column" in err
    config.write_text("max-steps: [1, 2]\n")
    assert main(["finetune", "--config", str(config), "--data", "d", "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected an integer for --max-steps" in err
