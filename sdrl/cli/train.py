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

__all__ = ["add_parsers"]

INPUT_FIELDS = ("data", "init", "weights")
"""Config fields that name input files or folders, which ``--out`` must not be or hold."""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register one sub-command per task."""
    for spec in task_specs():
        parser = subparsers.add_parser(spec.command, help=spec.help, description=spec.description)
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
