"""Suite-wide settings: every simulation in the tests runs with the invariant checker on
(``sim/invariants.py``), including those the CLI tests start as subprocesses; fitted cost profiles
are cached in a scratch directory of the test session, never in the user's cache
(``sim/costprofile/cache.py``; subprocesses inherit it)."""

import os
import tempfile
from pathlib import Path

import pytest

from warmsim.sim.simulation import CHECK_ENV

os.environ[CHECK_ENV] = "1"
os.environ.setdefault("WARMSIM_CACHE_DIR", tempfile.mkdtemp(prefix="warmsim-test-cache-"))


@pytest.fixture(scope="session")
def installed_site(tmp_path_factory) -> Path:
    """The checkout installed as ``pip install .`` would (a copy, not editable), once per session and
    worker; tests that change it work on a copy of it."""
    from tests.exe import install_copy

    return install_copy(Path(__file__).resolve().parent.parent, tmp_path_factory.mktemp("installed"))
