"""vLLM sleep mode as an autoscaled system: wake a sleeping engine of the model before starting a new one.

The mechanism (engines that sleep instead of stopping, the cost of a wake) is the simulator's
``sleep`` mechanism (``sim/mechanisms/sleep.py``); this is the decision: where an instance of a model
comes from when the autoscaler wants one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from warmsim.policies.types import Activate, Snapshot
from warmsim.sim.cost import check_source
from warmsim.sim.knobs import bounded, text


@dataclass(frozen=True)
@bounded(source=text("where a cold start loads weights from (a storage tier, sim/sources/)"),
         reload_source=text("where a level-2 wake reloads weights from (a storage tier, sim/sources/)"))
class SleepActivator:
    """Wake before starting.

    1. A sleeping engine of the model (``snap.asleep``) whose GPUs serve no instance and have room for
       its shard: wake it; level 1 before level 2, then the one asleep longest, then the lowest id.
       A level-1 sleeper comes back from its pinned backup (``sleep_backup``); a level-2 sleeper
       reloads from ``reload_source`` (vLLM's ``reload_weights`` reads the checkpoint again).
    2. Else a cold start from ``source`` on ``tp`` free GPUs of one node, choosing the GPUs with the
       fewest sleepers on them (so that the sleepers stay wakeable), then the lowest node and GPU ids
       [ours: vLLM has no placement of its own].
    """

    #: Where a cold start's weights come from. Default ``page_cache``: vLLM's default loader reads the
    #: safetensors files from the page cache (the blog's setup reloads from local disk).
    source: str = "page_cache"
    #: Where a level-2 wake reloads the weights from (the same loader as a cold start).
    reload_source: str = "page_cache"

    def __post_init__(self) -> None:
        check_source(self.source, "SleepActivator.source")
        check_source(self.reload_source, "SleepActivator.reload_source")

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        busy = snap.busy_gpus()
        shard = snap.models[model].shard_bytes
        asleep = [s for s in snap.asleep if s.model == model and not busy.intersection(s.gpus)
                  and all(snap.gpu(g).free_bytes >= shard for g in s.gpus)]
        if asleep:
            s = min(asleep, key=lambda s: (s.level, s.since_s, s.id))
            return Activate(model, s.gpus, source="sleep_backup" if s.level == 1 else self.reload_source, wake=s.id)
        tp = snap.models[model].tp
        sleepers = Counter(g for s in snap.asleep for g in s.gpus)
        best = None
        for node, free in enumerate(snap.free_gpus_by_node()):
            if len(free) < tp:
                continue
            gpus = sorted(sorted(free, key=lambda g: (sleepers[g], g))[:tp])
            key = (sum(sleepers[g] for g in gpus), node)
            if best is None or key < best[0]:
                best = (key, gpus)
        return None if best is None else Activate(model, tuple(best[1]), source=self.source)
