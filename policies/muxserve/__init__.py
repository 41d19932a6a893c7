"""MuxServe-style GPU-sharing baseline (ICML'24), as WarmServe's artifact emulates it: a static
colocated placement at time 0 (several models' engines per GPU, compute split by MPS shares, memory
split between their KV caches), colocated step slowdown, least-loaded routing with a per-engine cap,
and no autoscaling (use ``policies.autoscale.NoAutoscaler``).

See docs/baselines.md for what is modelled, simplified and left out.
"""

from __future__ import annotations

from warmsim.policies.muxserve.mesh import MuxServeMeshPlacer
from warmsim.policies.muxserve.placement import MuxEngine, MuxPlan, MuxServePlacer
from warmsim.policies.muxserve.router import MuxServeRouter
from warmsim.policies.muxserve.slowdown import ColocationSlowdown, MpsSlowdownTable, colocated_step_time

__all__ = ["MuxServeMeshPlacer", "MuxServePlacer", "MuxPlan", "MuxEngine", "MuxServeRouter", "ColocationSlowdown",
           "MpsSlowdownTable", "colocated_step_time"]
