"""The scripts of ``experiments/`` as modules (the folder is not a package), loaded once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_experiment(script: str) -> ModuleType:
    """``experiments/<script>.py`` as the module ``sdrl_experiments_<script>``."""
    name = f"sdrl_experiments_{script}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{script}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]
