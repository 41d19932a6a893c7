"""The bundle (a system: one policy per seam plus mechanism flags) and its knob table.

The contract lives in the simulator (:mod:`warmsim.sim.bundle`); policies implement it. This module re-exports
it so that policy code, the docs and user policies may keep importing it from here.
"""

from warmsim.sim.bundle import (  # noqa: F401
    MECHANISM_KNOBS,
    POLICY_FIELDS,
    Bundle,
    ShareByInverse,
)

__all__ = [
    "ShareByInverse",
    "Bundle",
    "POLICY_FIELDS",
    "MECHANISM_KNOBS",
]
