"""Moved: the runtime cost model is :mod:`warmsim.sim.costmodel`, next to the simulator's cost interfaces
(``sim/cost.py``). This name is kept only because ``docs/calibration.md`` showed
``from warmsim.calibrate.costmodel import ProfileCostModel`` before the move; new code imports
``warmsim.sim.costmodel``."""

from warmsim.sim.costmodel import ProfileCostModel

__all__ = ["ProfileCostModel"]
