"""The training sub-commands (``sdrl pretrain``, ``sdrl finetune``...), one per registered task.

Each task's parser is generated from its config dataclass (:mod:`sdrl.cli.options`); running
it builds the config, checks that the run folder is no input and holds none
(:func:`~sdrl.data.outputs.check_output`) and calls the task's run function.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sdrl.cli.options import add_config_flags, config_from_args, tame_lightning
from sdrl.data.outputs import check_output
from sdrl.tasks.registry import TaskSpec, task_specs

__all__ = ["add_parsers", "command_group"]

INPUT_FIELDS = ("data", "init", "weights", "temporal_init", "spectral_init", "taxonomy", "stats")
"""Config fields that name input files or folders, which ``--out`` must not be or hold."""


GROUP_HELP = {"crop": "the hierarchical crop classifier: train, evaluate, predict"}
"""One line of ``sdrl --help`` per command group (a group's actions are its sub-commands)."""


def command_group(subparsers: argparse._SubParsersAction, name: str) -> argparse._SubParsersAction:
    """The actions of command group ``name`` (``sdrl crop ...``), created on first use."""
    parser = subparsers.choices.get(name)
    if parser is None:
        help_text = GROUP_HELP.get(name, "")
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.add_subparsers(dest=f"{name}_action", metavar="ACTION", required=True)
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register one sub-command per task (or an action of a command group: ``crop train``)."""
    for spec in task_specs():
        *group, command = spec.command.split()
        where = command_group(subparsers, group[0]) if group else subparsers
        parser = where.add_parser(command, help=spec.help, description=spec.description)
        add_config_flags(parser, spec.config)
        parser.set_defaults(func=_runner(spec))


def _runner(spec: TaskSpec) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from sdrl.tasks.loggers import is_global_zero

        tame_lightning(args.quiet)
        config = config_from_args(args, spec.config)
        inputs = [getattr(config, name, None) for name in INPUT_FIELDS]
        inputs = [p for p in inputs if p not in (None, "random")]
        check_output(config.out, inputs, folder=True, noun="run folder")
        result = spec.run_function()(config)
        if is_global_zero():
            print(result.summary(spec.done))
        return 0

    return run
