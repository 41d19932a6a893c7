"""ServerlessLLM-style autoscaling baseline (OSDI'24): startup-time-optimised placement, a
concurrency autoscaler with keep-alive, and a router that only uses ready instances.

Two variants, which differ only in whether the per-node pinned host-memory cache is used:

- ``sllm``: loads come from a node's host cache when the checkpoint is there, else from its SSD
  (and the simulator then caches it, LRU);
- ``sllm_ssd``: every load comes from SSD; no host cache.

See docs/baselines.md for what is modelled, simplified and left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warmsim.policies.sllm.activator import SllmActivator
from warmsim.policies.sllm.autoscaler import SllmAutoscaler
from warmsim.policies.sllm.router import SllmRouter
from warmsim.sim.errors import UserError

#: The two ServerlessLLM variants, by name, with whether each uses the host-memory cache.
VARIANTS: dict[str, bool] = {"sllm": True, "sllm_ssd": False}


@dataclass
class SllmPolicies:
    """One ServerlessLLM bundle's policies (the autoscaler holds per-run state: one per run)."""

    activator: SllmActivator
    autoscaler: SllmAutoscaler
    router: SllmRouter
    #: Whether the simulator should keep a pinned host-memory cache on each node for this variant.
    host_cache: bool = field(default=True)


def sllm_policies(variant: str = "sllm", *, activator: dict | None = None,
                  autoscaler: dict | None = None, router: dict | None = None) -> SllmPolicies:
    """Build the policies of ``variant`` (``sllm`` or ``sllm_ssd``); the dicts override constructor
    arguments of each part. ``host_cache_enabled`` follows the variant and cannot be overridden."""
    if variant not in VARIANTS:
        raise UserError(f"unknown ServerlessLLM variant '{variant}' (known: {', '.join(VARIANTS)})")
    act_kw = dict(activator or {})
    if "host_cache_enabled" in act_kw:
        raise UserError("sllm: host_cache_enabled is set by the variant (sllm / sllm_ssd), not by a key")
    cached = VARIANTS[variant]
    return SllmPolicies(
        activator=SllmActivator(host_cache_enabled=cached, **act_kw),
        autoscaler=SllmAutoscaler(**(autoscaler or {})),
        router=SllmRouter(**(router or {})),
        host_cache=cached,
    )


__all__ = ["SllmActivator", "SllmAutoscaler", "SllmRouter", "SllmPolicies", "sllm_policies", "VARIANTS"]
