"""Hand-built snapshots for policy unit tests."""

from __future__ import annotations

from warmsim.policies.types import GPUView, InstanceView, LoadView, ModelView, ReplicaView, Snapshot

GIB = 1 << 30


def snap(n_nodes=1, gpus_per_node=4, instances=(), replicas=(), load=None, models=None, t=100.0,
         capacity=72 * GIB, used=None, host_cache=None, pending=None, bw=None) -> Snapshot:
    models = models or {"a": ModelView("a", 14 * GIB, 1, 14 * GIB), "b": ModelView("b", 28 * GIB, 2, 14 * GIB)}
    used = used or {}
    gpus = []
    for g in range(n_nodes * gpus_per_node):
        insts = tuple(i.id for i in instances if g in i.gpus)
        reps = tuple(r.id for r in replicas if g in r.gpus)
        u = used.get(g, sum(r.bytes_per_gpu for r in replicas if g in r.gpus) + (capacity if insts else 0))
        gpus.append(GPUView(g, g // gpus_per_node, capacity, u, 0, insts, reps))
    load = load or {m: LoadView(0, 0.0, 0, sum(1 for i in instances if i.model == m)) for m in models}
    return Snapshot(t, gpus_per_node, tuple(gpus), models, tuple(instances), tuple(replicas), load,
                    host_cache or {}, pending or {}, bw or {})


def inst(i, model, gpus, inflight=0, state="active", created=0.0, share=1.0) -> InstanceView:
    return InstanceView(i, model, tuple(gpus), state, inflight, created, share)


def rep(i, model, gpus, ready=True, nbytes=14 * GIB) -> ReplicaView:
    return ReplicaView(i, model, tuple(gpus), ready, nbytes)
