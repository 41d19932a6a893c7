"""What one instance start costs, piece by piece, from a cost model.

Used by the simulator (which replaces the transfer term by its flow network when loads overlap) and
by ``warmsim estimate`` (one load alone on an idle node), so both answer from the same formulas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from warmsim.sim.cost import CostModel
from warmsim.sim.memswitch import MEMSWITCHES, get_memswitch
from warmsim.sim.models import ServedModel
from warmsim.sim.sources import SOURCES

#: Link kinds a weight load from each source crosses: (node-level link shared by all shards, or
#: None; per-GPU link), from the source table (:mod:`warmsim.sim.sources`). A peer copy over NVLink has a
#: link pair per GPU pair and nothing shared; one over RDMA crosses both nodes' NICs (same
#: capacity) and the destination GPU's PCIe link.
SOURCE_PATHS: dict[str, tuple[str | None, str] | None] = {name: s.link_kinds for name, s in SOURCES.items()}

#: Memory-switch mechanisms: how a GPU's memory is made ready for new weights (:mod:`warmsim.sim.memswitch`).
MEMSWITCH = tuple(MEMSWITCHES)


@dataclass(frozen=True)
class StartupBreakdown:
    """Seconds spent in each phase of a cold (or warm) start, in order."""

    process_s: float  # process spawn, import, CUDA context (0 with device prewarm)
    memory_s: float  # cudaMalloc of fresh buffers, or VMM mapping not hidden behind the copy
    transfer_s: float  # moving the weight bytes (0 when prewarmed)
    load_overhead_s: float  # fixed per-load cost of the source (file open, per-tensor launches)
    engine_init_s: float  # engine construction, TP communicator, KV allocation (0 with engine prewarm)

    @property
    def total_s(self) -> float:
        return self.process_s + self.memory_s + self.transfer_s + self.load_overhead_s + self.engine_init_s

    def as_dict(self) -> dict[str, float]:
        d = asdict(self)
        d["total_s"] = self.total_s
        return d


def isolated_transfer_s(model: ServedModel, source: str, bandwidth: Callable[[str], float]) -> float:
    """Time to move all TP shards of ``model`` from ``source`` when nothing else is moving.

    The shards travel in parallel over one PCIe link per GPU but share the node's source link.
    """
    if source not in SOURCE_PATHS:
        raise KeyError(source)
    path = SOURCE_PATHS[source]
    if path is None:
        return 0.0
    node_link, gpu_link = path
    per_gpu = model.shard_bytes / bandwidth(gpu_link)
    if node_link is None:
        return per_gpu
    return max(model.shard_bytes * model.tp / bandwidth(node_link), per_gpu)


def memory_prep_s(cost: CostModel, nbytes: int, memswitch: str, transfer_s: float) -> float:
    """Memory preparation time not hidden behind the copy.

    ``free_malloc`` allocates fresh buffers before copying (blocking). ``vmm_pool`` maps kept 2 MiB
    handles in a background thread ahead of the copy, so only the part of the mapping longer than
    the copy shows.
    """
    return get_memswitch(memswitch).prep_s(cost, nbytes, transfer_s)


def startup_breakdown(cost: CostModel, model: ServedModel, source: str, *, device_prewarmed: bool = False,
                      engine_prewarmed: bool = False, memswitch: str = "free_malloc",
                      bandwidth: Callable[[str], float] | None = None) -> StartupBreakdown:
    """Phases of one instance start of ``model`` with weights from ``source``, alone on its node.

    ``bandwidth`` maps a link kind to its capacity; it defaults to the cost model's own numbers.
    """
    bw = bandwidth or cost.link_bandwidth
    transfer = isolated_transfer_s(model, source, bw)
    loaded = SOURCE_PATHS[source] is not None
    return StartupBreakdown(
        process_s=0.0 if device_prewarmed else cost.process_start_s(),
        memory_s=memory_prep_s(cost, model.shard_bytes, memswitch, transfer) if loaded else 0.0,
        transfer_s=transfer,
        load_overhead_s=cost.load_overhead_s(source, model.shard_bytes) if loaded else 0.0,
        engine_init_s=0.0 if engine_prewarmed else cost.engine_init_s(model),
    )
