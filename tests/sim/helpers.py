"""Small builders shared by the simulator tests (hand-made workloads and clusters)."""

from __future__ import annotations

import numpy as np

from warmsim.policies.autoscale import NoAutoscaler
from warmsim.policies.bundle import Bundle
from warmsim.policies.ondemand import FirstFitActivator, KeepAliveAutoscaler
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.static import StaticPlacer
from warmsim.sim.catalog import get_shape
from warmsim.sim.cluster import ClusterSpec
from warmsim.sim.cost import ConstantCostModel, DecodeCoeffs
from warmsim.sim.models import ServedModel
from warmsim.traces.workload import Workload

GIB = 1 << 30


def workload(arrivals, prompts, outputs, models=("a",), model_idx=None, duration=None) -> Workload:
    n = len(arrivals)
    return Workload(np.asarray(arrivals, float), np.asarray(model_idx if model_idx is not None else [0] * n, np.int32),
                    np.asarray(prompts, np.int32), np.asarray(outputs, np.int32), tuple(models),
                    float(duration if duration is not None else (max(arrivals) + 1 if n else 1)))


def cluster(nodes=1, gpus=1, hbm_gib=80, frac=0.9, bw=10e9, host_cache=None) -> ClusterSpec:
    return ClusterSpec(nodes, gpus, hbm_gib * GIB, frac, bw, bw / 4, bw * 10, bw, bw, bw * 30, host_cache)


def model(name="a", base="llama-2-7b", tp=1) -> ServedModel:
    return ServedModel(name, get_shape(base), tp)


def cost(**kw) -> ConstantCostModel:
    kw.setdefault("decode", DecodeCoeffs(0.01, 0.0, 0.0))
    return ConstantCostModel(**kw)


def static(instances) -> Bundle:
    return Bundle("static", LeastLoadedRouter(), NoAutoscaler(), initial=StaticPlacer(instances), scale_on_miss=False)


def ondemand(keep_alive_s=60.0, source="host_pinned") -> Bundle:
    return Bundle("ondemand", LeastLoadedRouter(32), KeepAliveAutoscaler(keep_alive_s=keep_alive_s),
                  FirstFitActivator(source))


def peerload(keep_alive_s=60.0, per_instance=32) -> Bundle:
    from warmsim.policies.peer import PeerActivator

    return Bundle("peerload", LeastLoadedRouter(per_instance),
                  KeepAliveAutoscaler(keep_alive_s=keep_alive_s, per_instance=per_instance), PeerActivator())
