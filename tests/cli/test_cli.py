"""The command line frame: help, YAML configs, error reporting, `sdrl info`."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sdrl.cli import build_parser, main
from sdrl.cli.config import apply_config, resolved_config
from sdrl.errors import ConfigError
from tests.data.test_datasets import make_change_folder


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        with pytest.raises(SystemExit) as stop:
            main([name, "--help"])
        assert stop.value.code == 0, name
        assert "--config" in capsys.readouterr().out


def test_abbreviated_flags_are_refused(capsys):
    """Every level of the parser: a unique prefix is not taken for the flag."""
    for argv in (
        ["pretrain", "--data", "d", "--out", "o", "--max-step", "5"],
        ["crop", "train", "--data", "d", "--out", "o", "--max-step", "5"],
        ["prep", "oscd", "--src", "s", "--out", "o", "--til", "64"],
        ["--quie", "info", "d"],
    ):
        with pytest.raises(SystemExit) as stop:
            build_parser().parse_args(argv)
        assert stop.value.code == 2, argv
        assert "unrecognized arguments" in capsys.readouterr().err, argv
    full = build_parser().parse_args(["pretrain", "--data", "d", "--out", "o", "--max-steps", "5"])
    assert full.max_steps == 5


def _toy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    subs = parser.add_subparsers(dest="command")
    run = subs.add_parser("run")
    run.add_argument("--data", required=True)
    run.add_argument("--max-steps", type=int, default=10)
    run.add_argument("--config")
    return parser


def test_config_sets_defaults_and_flags_override(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: /some/dir\nmax-steps: 50\n")
    parser = _toy_parser()
    argv = ["run", "--config", str(config), "--max-steps", "7"]
    apply_config(parser, argv)
    args = parser.parse_args(argv)
    assert args.data == "/some/dir" and args.max_steps == 7
    argv = ["run", f"--config={config}"]
    parser = _toy_parser()
    apply_config(parser, argv)
    assert parser.parse_args(argv).max_steps == 50
    assert resolved_config(parser.parse_args(argv))["max-steps"] == 50


def test_config_unknown_key_is_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("max_stepz: 3\n")
    with pytest.raises(
        ConfigError, match="unknown key 'max_stepz'; this command takes: data, max-steps"
    ):
        apply_config(_toy_parser(), ["run", "--config", str(config)])
    config.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        apply_config(_toy_parser(), ["run", "--config", str(config)])


def test_info_prints_summary(tmp_path, capsys):
    root = make_change_folder(tmp_path / "d")
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "splits   train: 4, val: 2, all: 6" in out
    assert "changed" in out


def test_bad_input_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sdrl", "info", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "expected a dataset folder, found no such folder" in result.stderr
    assert "Traceback" not in result.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "sdrl", "--debug", "info", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_resume_takes_the_saved_run_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: /saved/dir\nmax-steps: 50\n")
    parser = _toy_parser()
    sub = parser._subparsers._group_actions[0].choices["run"]
    sub.add_argument("--out")
    sub.add_argument("--resume", action="store_true")
    (run / "config.yaml").write_text("data: /saved/dir\nmax-steps: 50\nout: x\n")
    argv = ["run", "--out", str(run), "--resume", "--max-steps", "60"]
    apply_config(parser, argv)
    args = parser.parse_args(argv)
    assert args.data == "/saved/dir" and args.max_steps == 60 and args.out == str(run)
    fresh = _toy_parser()
    fresh._subparsers._group_actions[0].choices["run"].add_argument("--out")
    with pytest.raises(SystemExit):  # without --resume the saved config is not used
        apply_config(fresh, ["run", "--out", str(run)])
        fresh.parse_args(["run", "--out", str(run)])


def test_help_does_not_import_torch():
    # `sdrl --help` builds every parser, generated from the task configs: it stays light.
    import subprocess
    import sys

    code = (
        "import sys\nfrom sdrl.cli import build_parser\nbuild_parser()\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("command", [["evaluate"], ["predict"], ["crop", "evaluate"]])
@pytest.mark.parametrize(
    ("flags", "tty", "expected"),
    [
        ([], False, False),
        ([], True, True),
        (["-q"], True, False),
        (["--progress-bar"], False, True),  # asked for: drawn even when stderr is a file
        (["--no-progress-bar"], True, False),
    ],
)
def test_inference_commands_share_the_progress_rule(command, flags, tty, expected, monkeypatch):
    from sdrl.cli.types import show_progress

    quiet = ["-q"] if "-q" in flags else []
    own = [f for f in flags if f != "-q"]
    required = {
        "evaluate": ["--data", "d", "--checkpoint", "c", "--out", "o"],
        "predict": ["--before", "a", "--after", "b", "--checkpoint", "c", "--out", "o"],
        "crop": ["--data", "d", "--checkpoint", "c", "--out", "o"],
    }[command[0]]
    args = build_parser().parse_args([*quiet, *command, *required, *own])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert show_progress(args) is expected
    assert args.batch_size == 4
