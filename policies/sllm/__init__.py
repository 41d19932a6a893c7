"""ServerlessLLM-style autoscaling baseline (OSDI'24): startup-time-optimised placement, a
concurrency autoscaler with keep-alive, and a router that only uses ready instances.

The system configs ``sllm`` and ``sllm_ssd`` differ only in whether the per-node pinned host-memory
cache is used (``SllmActivator.host_cache_enabled`` and the system's ``host_cache_gib``):

- ``sllm``: loads come from a node's host cache when the checkpoint is there, else from its SSD
  (and the simulator then caches it, LRU);
- ``sllm_ssd``: every load comes from SSD; no host cache.

See docs/baselines.md for what is modelled, simplified and left out.
"""

from __future__ import annotations

from warmsim.policies.sllm.activator import SllmActivator
from warmsim.policies.sllm.autoscaler import SllmAutoscaler
from warmsim.policies.sllm.router import SllmRouter

__all__ = ["SllmActivator", "SllmAutoscaler", "SllmRouter"]
