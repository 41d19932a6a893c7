"""Suite-wide settings: every simulation in the tests runs with the invariant checker on
(``sim/invariants.py``), including those the CLI tests start as subprocesses."""

import os

from warmsim.sim.simulation import CHECK_ENV

os.environ[CHECK_ENV] = "1"
