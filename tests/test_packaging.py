"""The wheel ships every module of sdrl (a plain ``pip install .`` works, not only -e)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_holds_every_module(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "sdrl", source / "sdrl", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps"]
    command += ["--no-build-isolation", "--no-index", "-q", "-w", str(out)]
    subprocess.run(command, check=True, cwd=tmp_path)
    (wheel,) = out.glob("sdrl-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(source).as_posix() for p in (source / "sdrl").rglob("*.py")}
    assert modules and modules <= shipped, sorted(modules - shipped)
    packages = {p.parent for p in (source / "sdrl").rglob("*.py")}
    assert all((p / "__init__.py").is_file() for p in packages)
