"""The installed ``warmsim`` console script for the tests that run it as users do."""

from __future__ import annotations

import shutil

import pytest


def warmsim_exe() -> str:
    """The path of ``warmsim`` on PATH; a clear test failure (not a ``TypeError`` from subprocess) when
    the package is not installed in the environment running the tests."""
    exe = shutil.which("warmsim")
    if exe is None:
        pytest.fail("the `warmsim` console script is not on PATH: install the package in the environment that "
                    "runs pytest (pip install -e '.[test]'), or activate that environment", pytrace=False)
    return exe
