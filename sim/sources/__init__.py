"""Weight sources: where the weights of a new instance or a prewarmed replica come from.

One :class:`WeightSource` per name a policy or config may use, in one table, :data:`SOURCES`. A
source says which links a load crosses (the flow network shares them), the link kinds of that path
(for the start-up cost estimate of ``warmsim estimate``), whether a policy may name it as a storage
tier, whether it copies from a running instance's GPUs (a peer) and whether it reads the node's
pinned host-memory checkpoint cache. A new source is one new module here plus one entry in
:data:`SOURCES` (``docs/extending.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from warmsim.sim.sources.host import HOST_PAGEABLE, HOST_PINNED
from warmsim.sim.sources.page_cache import PAGE_CACHE
from warmsim.sim.sources.peer import PEER_NVLINK, PEER_RDMA
from warmsim.sim.sources.prewarmed import PREWARMED
from warmsim.sim.sources.remote import REMOTE
from warmsim.sim.sources.sleep_backup import SLEEP_BACKUP
from warmsim.sim.sources.ssd import SSD


class WeightSource(Protocol):
    """Where weights come from, and the path a load from there takes."""

    # Read-only attributes (the sources are frozen dataclasses), hence properties here.
    @property
    def name(self) -> str:
        """The name policies and configs use (``Activate.source``, ``Prewarm.source``)."""
        ...

    @property
    def storage(self) -> bool:
        """A storage tier a policy may name without a replica or a peer (``sim.cost.STORAGE_SOURCES``)."""
        ...

    @property
    def peer(self) -> bool:
        """Copies from the GPUs of a running instance of the same model (``Activate.peer``)."""
        ...

    @property
    def same_node(self) -> bool | None:
        """Peer sources only: whether the peer must sit on the destination's node (None otherwise)."""
        ...

    @property
    def reads_host_cache(self) -> bool:
        """The load needs the checkpoint in the node's pinned host-memory cache (every non-peer load
        puts the checkpoint there afterwards, whatever its source)."""
        ...

    @property
    def link_kinds(self) -> tuple[str | None, str] | None:
        """(node-level link kind shared by all shards or None, per-GPU link kind); None: nothing moves."""
        ...

    def ceiling(self, bandwidth: Mapping[str, float]) -> float:
        """The rate one flow from here cannot exceed, whatever its links offer (``inf``: none), from
        the cluster's link capacities by kind (:meth:`warmsim.sim.cluster.ClusterSpec.link_bandwidth`).
        The simulator and the start-up estimate both read it here."""
        ...

    def path(self, cluster, gpu: int, peer_gpu: int | None = None) -> tuple[tuple, float]:
        """The links (``sim.flows.Link``) a load onto ``gpu`` crosses, and the flow's own rate
        ceiling (:meth:`ceiling`); ``KeyError`` if the source cannot reach ``gpu`` that way."""
        ...


#: Every weight source by name, in the order ``sim.cost.SOURCES`` lists them.
SOURCES: dict[str, WeightSource] = {s.name: s for s in (HOST_PINNED, HOST_PAGEABLE, PAGE_CACHE, SSD, REMOTE,
                                                        PREWARMED, PEER_NVLINK, PEER_RDMA, SLEEP_BACKUP)}

