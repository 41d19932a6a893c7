"""warmsim installs under one import name and lives beside other packages: a distribution that owns a
top-level ``traces`` or ``experiments`` package installs next to it without overwriting anything, both
import, and a user's own ``experiments/`` folder in the working directory shadows nothing of warmsim's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.exe import pip_install_target

#: A small distribution whose top-level names collide with the design card's folders.
OTHER_SETUP = """
from setuptools import setup
setup(name="othertraces", version="1.0", packages=["traces", "experiments"])
"""


def _other_source(tmp_path: Path) -> Path:
    src = tmp_path / "other-src"
    for pkg in ("traces", "experiments"):
        (src / pkg).mkdir(parents=True)
        (src / pkg / "__init__.py").write_text(f"OWNER = 'othertraces.{pkg}'\n")
    (src / "setup.py").write_text(OTHER_SETUP)
    return src


def _files(target: Path) -> dict[str, bytes]:
    return {str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and ".dist-info" not in str(p)}


@pytest.mark.slow
def test_one_import_name_beside_a_distribution_that_owns_traces_and_experiments(tmp_path, installed_site):
    target = tmp_path / "site"
    shutil.copytree(installed_site, target, symlinks=True)  # this test installs another package into it
    tops = sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin")
    assert tops == ["warmsim"], tops  # exactly one top-level import name
    before = _files(target)

    pip_install_target(_other_source(tmp_path), target)
    after = _files(target)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of warmsim overwritten
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin") \
        == ["experiments", "traces", "warmsim"]

    work = tmp_path / "research"  # a research repository with its own experiments/ folder
    (work / "experiments").mkdir(parents=True)
    (work / "experiments" / "__init__.py").write_text("OWNER = 'the user'\n")
    probe = ("import traces, experiments, warmsim\n"
             "from warmsim.experiments.api import compare, config\n"
             "import warmsim.traces as wt\n"
             "print(traces.OWNER, experiments.OWNER, wt.__name__, warmsim.compare is compare, "
             "callable(warmsim.config), sep='|')\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    p = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    # The other distribution's traces imports; the user's experiments/ (first on sys.path) wins the bare
    # name; warmsim's subpackages and the Python API at the top name are untouched by either.
    assert p.stdout.strip().split("|") == ["othertraces.traces", "the user", "warmsim.traces", "True", "True"]
