"""The installed ``warmsim`` console script for the tests that run it as users do, and a non-editable
install of the checkout for the tests of what ``pip install .`` ships (built once per test session and
worker: the ``installed_site`` fixture of tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def warmsim_exe() -> str:
    """The path of ``warmsim`` on PATH; a clear test failure (not a ``TypeError`` from subprocess) when
    the package is not installed in the environment running the tests."""
    exe = shutil.which("warmsim")
    if exe is None:
        pytest.fail("the `warmsim` console script is not on PATH: install the package in the environment that "
                    "runs pytest (pip install -e '.[test]'), or activate that environment", pytrace=False)
    return exe


#: The folders of a checkout that ``pip install .`` packages (setup.py maps them under ``warmsim``).
PACKAGE_DIRS = ("warmsim", "sim", "policies", "traces", "calibrate", "experiments", "figures")


def pip_install_target(src: Path, target: Path) -> None:
    """``pip install --no-deps --target target src`` (without build isolation when the isolated build
    cannot fetch setuptools, e.g. offline); skips the calling test when pip cannot build here."""
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(src)]
    r = subprocess.run(pip, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        r = subprocess.run([*pip[:4], "--no-build-isolation", *pip[4:]], capture_output=True, text=True,
                           timeout=600)
    if r.returncode != 0:
        pytest.skip(f"pip cannot build {src.name} here: {r.stderr.strip().splitlines()[-1:]}")


def install_copy(root: Path, work: Path) -> Path:
    """A copy of the checkout at ``root`` installed as ``pip install .`` would (not editable) into
    ``work/site``; returns that directory, to put on PYTHONPATH."""
    src = work / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(root / name, src / name)
    for pkg in PACKAGE_DIRS:
        shutil.copytree(root / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "out"))
    target = work / "site"
    pip_install_target(src, target)
    return target
