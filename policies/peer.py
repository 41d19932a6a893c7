"""Scale-up from a running peer (BlitzScale-style weight source): a new instance copies its weights
from the GPUs of an instance of the same model already serving, over NVLink inside a node or
GPUDirect RDMA across nodes, instead of reading them from host memory or disk.

Modelled: the copy itself, on the flow network (NVLink per GPU pair, or both NICs and the PCIe
link). Not modelled: BlitzScale's multicast chains and its "live" scaling, in which a loading
instance serves layers before all weights arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from warmsim.policies.types import ACTIVE, Activate, Snapshot
from warmsim.sim.cost import check_source
from warmsim.sim.knobs import bounded, flag, text


@dataclass(frozen=True)
@bounded(fallback_source=text("weight source when no instance of the model runs (a storage tier)"),
         rdma=flag("copy across nodes when no free GPUs share a node with a peer"))
class PeerActivator:
    """Start on ``tp`` free GPUs of one node, copying from a running instance when there is one.

    Order of preference: free GPUs on a node where an active instance of the model runs (NVLink
    copy from it); free GPUs on any other node (RDMA copy from the lowest-id active instance, when
    ``rdma``); else ``fallback_source``. Within a node the lowest-numbered free GPUs are taken.
    """

    #: Whether ``choose`` takes over prewarmed replicas (the builder warns when a placer prewarms for an
    #: activator that never does).
    adopts_replicas: ClassVar[bool] = False

    fallback_source: str = "host_pinned"
    rdma: bool = True

    def __post_init__(self) -> None:
        check_source(self.fallback_source, "PeerActivator.fallback_source")

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        tp = snap.models[model].tp
        peers = sorted((i for i in snap.instances if i.model == model and i.state == ACTIVE
                        and i.compute_share >= 1.0), key=lambda i: i.id)
        peer_on_node: dict[int, int] = {}
        for p in peers:
            peer_on_node.setdefault(snap.gpu(p.gpus[0]).node, p.id)
        free = snap.free_gpus_by_node()
        fits = [n for n in range(snap.n_nodes) if len(free[n]) >= tp]
        for n in fits:
            if n in peer_on_node:
                return Activate(model, tuple(free[n][:tp]), source="peer_nvlink", peer=peer_on_node[n])
        if not fits:
            return None
        gpus = tuple(free[fits[0]][:tp])
        if peers and self.rdma:
            return Activate(model, gpus, source="peer_rdma", peer=peers[0].id)
        return Activate(model, gpus, source=self.fallback_source)
