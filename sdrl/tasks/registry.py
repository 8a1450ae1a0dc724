"""The task registry: one entry per training task, each task one folder.

A task folder (``sdrl/tasks/<name>/``) holds its config (``config.py``), LightningModule
(``module.py``), data module, loss and metrics, and its run function (``run.py``); its
``__init__.py`` declares a :class:`TaskSpec` named ``TASK``. Listing the folder's module in
:data:`TASK_MODULES` is all it takes for ``sdrl <command>`` to exist, with its flags generated
from the config. Nothing here imports Lightning or torch: the specs name their run function
by import path, loaded when the command runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TASK_MODULES", "TaskSpec", "task_specs"]

TASK_MODULES = ("sdrl.tasks.pretrain", "sdrl.tasks.change", "sdrl.tasks.crop")
"""The registered tasks, in the order of ``sdrl --help``."""


@dataclass(frozen=True)
class TaskSpec:
    """What the command line and the harness need to know of a task.

    Attributes:
        command: Sub-command name (``sdrl pretrain``); two words make it an action of a
            command group (``crop train``: ``sdrl crop train``).
        kind: Checkpoint header kind its runs write (``pretrain``, ``change``...).
        config: The config dataclass (a :class:`~sdrl.tasks.config.TrainConfig`).
        run: ``"module:function"`` of ``run(config) -> RunResult``.
        help: One line for ``sdrl --help``.
        description: The sub-command's ``--help`` text.
        done: Verb of the final message ("pretrained", "finetuned").
    """

    command: str
    kind: str
    config: type
    run: str
    help: str
    description: str
    done: str = "trained"

    def run_function(self) -> Callable[[Any], Any]:
        """Import and return the run function."""
        module, name = self.run.split(":")
        return getattr(importlib.import_module(module), name)


def task_specs() -> list[TaskSpec]:
    """The :class:`TaskSpec` of every registered task."""
    return [importlib.import_module(name).TASK for name in TASK_MODULES]
