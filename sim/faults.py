"""Faults injected into a run: a GPU or a node fails, a weight load fails midway, a link degrades.

A fault happens at a set time of the run (config group ``faults/``):

- ``gpu_down`` (``gpu``) / ``node_down`` (``node``): the GPU (every GPU of the node) is gone for the
  rest of the run. Every instance with a GPU there is lost, whatever its state (a TP group loses all its
  GPUs' work), with the requests it held; prewarmed replicas there are lost; weight loads onto it stop.
  A failed node also loses its pinned host-memory checkpoint cache. Policies see a failed GPU as busy
  (``GPUView.failed``), with no free memory, so nothing is placed there again.
- ``load_fail`` (``gpu`` optional): the first instance start whose weights are still moving at that
  time (onto ``gpu`` if given) fails: the instance is lost, its GPUs stay healthy.
- ``link_degrade`` (``link``, ``node``/``gpu``, ``factor``, ``until_s``): the link's capacity is
  multiplied by ``factor`` until ``until_s`` (transfers in flight slow down at once).

Requests an instance held when it was lost are retried (back to the router, as new, in arrival order)
or dropped with the reason ``instance_lost``, per ``on_failure``. Recovery is every system's own
business: autoscalers start new instances, WarmServe re-places and re-prewarms; a system without an
activator (static, MuxServe) cannot replace what it lost, and its requests for the lost models wait
at the router until ``sim.request_timeout_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmsim.sim.errors import UserError
from warmsim.sim.types import STOPPED

FAULT_KINDS = ("gpu_down", "node_down", "load_fail", "link_degrade")
#: Columns of a run's ``faults.csv`` (and ``Run.faults``): one row per fault and system, from the
#: recorder's ``fault_log`` (time, fault, instances lost, replicas lost, requests retried, dropped).
FAULT_COLUMNS = ("system", "time_s", "fault", "instances_lost", "replicas_lost", "requests_retried",
                 "requests_dropped")
ON_FAILURE = ("retry", "drop")
#: The cause of the interrupt a fault sends to a lost instance's process (``Instance.lifecycle``).
LOST = "lost"
#: Link kinds ``link_degrade`` can name: per node, or per GPU.
NODE_LINKS = ("host_mem", "ssd", "nic")
GPU_LINKS = ("pcie", "nvlink")


@dataclass(frozen=True)
class Fault:
    """One fault: what fails, where, when."""

    kind: str
    at_s: float
    gpu: int | None = None
    node: int | None = None
    link: str | None = None
    factor: float = 1.0
    until_s: float | None = None

    def describe(self) -> str:
        """One line for reports."""
        if self.kind == "gpu_down":
            return f"GPU {self.gpu} fails at {self.at_s:g} s"
        if self.kind == "node_down":
            return f"node {self.node} fails at {self.at_s:g} s"
        if self.kind == "load_fail":
            where = f" onto GPU {self.gpu}" if self.gpu is not None else ""
            return f"the first weight load in progress{where} fails at {self.at_s:g} s"
        where = f"GPU {self.gpu}" if self.link in GPU_LINKS else f"node {self.node}"
        end = f" until {self.until_s:g} s" if self.until_s is not None else ""
        return f"{where} {self.link} link at {self.factor:g}x capacity from {self.at_s:g} s{end}"


def parse_faults(events, nodes: int, gpus_per_node: int) -> tuple[Fault, ...]:
    """Faults from config rows (dicts), checked against the cluster; a bad row is a UserError naming it."""
    out = []
    n_gpus = nodes * gpus_per_node
    for i, e in enumerate(events or ()):
        key = f"faults.events[{i}]"
        if not isinstance(e, dict):
            raise UserError(f"config key {key}: must be a mapping with kind and at_s, got {e!r}")
        unknown = set(e) - {"kind", "at_s", "gpu", "node", "link", "factor", "until_s"}
        if unknown:
            raise UserError(f"config key {key}: unknown field(s) {sorted(unknown)} (known: kind, at_s, gpu, node, "
                            "link, factor, until_s)")
        kind = e.get("kind")
        if kind not in FAULT_KINDS:
            raise UserError(f"config key {key}.kind: '{kind}' is not one of {', '.join(FAULT_KINDS)}")
        at = _number(e.get("at_s"), f"{key}.at_s", lo=0.0)

        def index(name: str, hi: int, e=e, key=key) -> int | None:
            v = e.get(name)
            if v is None:
                return None
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < hi:
                raise UserError(f"config key {key}.{name}: must be a whole number from 0 to {hi - 1}, got {v!r}")
            return v

        gpu, node = index("gpu", n_gpus), index("node", nodes)
        link, factor, until = e.get("link"), 1.0, None
        if kind == "gpu_down" and gpu is None:
            raise UserError(f"config key {key}.gpu: gpu_down needs the GPU that fails")
        if kind == "node_down" and node is None:
            raise UserError(f"config key {key}.node: node_down needs the node that fails")
        if kind == "link_degrade":
            if link not in NODE_LINKS + GPU_LINKS:
                raise UserError(f"config key {key}.link: '{link}' is not one of {', '.join(NODE_LINKS + GPU_LINKS)}")
            if link in GPU_LINKS and gpu is None or link in NODE_LINKS and node is None:
                need = "gpu" if link in GPU_LINKS else "node"
                raise UserError(f"config key {key}.{need}: a {link} link belongs to a {need}; say which")
            factor = _number(e.get("factor"), f"{key}.factor", lo=0.0, hi=1.0, lo_open=True)
            if e.get("until_s") is not None:
                until = _number(e.get("until_s"), f"{key}.until_s", lo=at, lo_open=True)
        out.append(Fault(kind, at, gpu, node, link, factor, until))
    return tuple(sorted(out, key=lambda f: f.at_s))


def faults_table(logs):
    """``faults.csv`` as a DataFrame from ``(system, fault_log)`` pairs (see :data:`FAULT_COLUMNS`)."""
    import pandas as pd
    return pd.DataFrame([(system, *row) for system, log in logs for row in log], columns=list(FAULT_COLUMNS))


def _number(v, key: str, lo: float, hi: float = 1e12, lo_open: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise UserError(f"config key {key}: '{v}' is not a number") from None
    if not (x > lo if lo_open else x >= lo) or not x <= hi:
        bound = f"{'>' if lo_open else '>='} {lo:g} and <= {hi:g}"
        raise UserError(f"config key {key}: must be {bound}, got {v}")
    return x


class Faults:
    """Applies a run's faults at their times and keeps a log of their effect (``recorder.fault_log``)."""

    def __init__(self, sim, faults: tuple[Fault, ...], on_failure: str = "retry"):
        if on_failure not in ON_FAILURE:
            raise UserError(f"config key faults.on_failure: '{on_failure}' is not one of {', '.join(ON_FAILURE)}")
        self.sim = sim
        self.faults = faults
        self.on_failure = on_failure

    def run(self):
        """The process that waits for each fault's time and applies it."""
        env = self.sim.env
        for f in self.faults:
            if f.at_s > env.now:
                yield env.timeout(f.at_s - env.now)
            self.apply(f)

    def apply(self, f: Fault) -> None:
        """Apply one fault now and log what it took."""
        effect = {"instances": 0, "replicas": 0, "retried": 0, "dropped": 0}
        c = self.sim.cluster
        if (f.gpu is not None and f.gpu >= len(c.gpus)) or (f.node is not None and f.node >= len(c.nodes)):
            # the system does not use that hardware (it sees fewer nodes: visible_nodes)
            self.sim.recorder.fault_log.append((self.sim.env.now, f.describe() + " (not used by this system)",
                                                0, 0, 0, 0))
            return
        if f.kind == "gpu_down":
            assert f.gpu is not None  # parse_faults checked that each kind names its GPU, node or link
            self._gpus_down([f.gpu], effect)
        elif f.kind == "node_down":
            self._gpus_down(list(self.sim.cluster.nodes[f.node].gpu_ids), effect)
            cache = self.sim.cluster.nodes[f.node].host_cache
            cache.entries.clear()
            cache.everything = False
            cache.changed = True
        elif f.kind == "load_fail":
            self._load_fail(f.gpu, effect)
        else:
            self._degrade(f)
        self.sim.recorder.fault_log.append((self.sim.env.now, f.describe(), effect["instances"], effect["replicas"],
                                            effect["retried"], effect["dropped"]))

    # ---- GPUs -----------------------------------------------------------------------------------
    def _gpus_down(self, gpus: list[int], effect: dict) -> None:
        sim = self.sim
        lost = sorted({i for g in gpus for i in sim.cluster.gpus[g].instances})
        for iid in lost:
            inst = sim.instances.get(iid)
            if inst is not None:
                self.lose_instance(inst, effect)
        for g in gpus:
            for rid in sorted(sim.cluster.gpus[g].replicas):
                sim.evict(rid, f"GPU {g} failed")
                effect["replicas"] += 1
        for g in gpus:
            gpu = sim.cluster.gpus[g]
            gpu.failed = True
            gpu.mem.capacity = gpu.mem.used  # nothing more can be placed (what is left drains away)
            sim.state.gpu_changed(g)

    def lose_instance(self, inst, effect: dict) -> None:
        """``inst`` is gone now: its process stops, its loads stop, its requests are retried or dropped."""
        sim = self.sim
        rids = list(inst.pending) + inst.engine.halt()
        inst.pending.clear()
        for flow in list(sim.cluster.net.flows):
            if flow.tag == ("instance", inst.id):
                sim.cluster.net.cancel(flow)
        if inst.peer is not None:
            inst.peer.hold_for_copy(-1)
            inst.peer = None
        inst.release_cache_pin()
        inst.failed = True
        if inst.process is not None and inst.process.is_alive:
            inst.process.interrupt(LOST)
        old = inst.state
        if old != STOPPED:
            if inst.counted_pending:
                inst.counted_pending = False
                sim.load.pending_changed(inst.model.name, -1)
            sim.recorder.event(sim.env.now, "instance", inst.id, inst.model.name, inst.gpus, "failed", "fault")
            inst.successor = None  # a failed instance leaves no weights behind
            sim.on_instance_stopped(inst)
        effect["instances"] += 1
        model = inst.model.name
        for rid in sorted(rids):
            if self.on_failure == "drop":
                sim.on_drop(rid, "instance_lost")
                effect["dropped"] += 1
            else:
                sim.requests.held[model].append(rid)
                sim.recorder.retried(rid, inst.id)
                effect["retried"] += 1
        if self.on_failure == "retry" and rids:
            q = sim.requests.held[model]
            arrival = sim.workload.arrival_s
            items = sorted(q, key=lambda r: (arrival[r], r))
            q.clear()
            q.extend(items)

    def _load_fail(self, gpu: int | None, effect: dict) -> None:
        sim = self.sim
        for flow in list(sim.cluster.net.flows):
            tag = flow.tag
            if not (isinstance(tag, tuple) and tag[0] == "instance"):
                continue
            inst = sim.instances.get(tag[1])
            if inst is None or (gpu is not None and gpu not in inst.gpus):
                continue
            self.lose_instance(inst, effect)
            return

    # ---- links ----------------------------------------------------------------------------------
    def _links(self, f: Fault):
        c = self.sim.cluster
        if f.link == "pcie":
            return [c.gpus[f.gpu].pcie]
        if f.link == "nvlink":
            return [c.gpus[f.gpu].nvlink_tx, c.gpus[f.gpu].nvlink_rx]
        node = c.nodes[f.node]
        return [node.nic, node.nic_tx] if f.link == "nic" else [getattr(node, str(f.link))]

    def _degrade(self, f: Fault) -> None:
        links = self._links(f)
        before = [link.capacity for link in links]
        net = self.sim.cluster.net
        net.set_capacity({link: cap * f.factor for link, cap in zip(links, before)})
        if f.until_s is not None:
            def restore(_ev) -> None:
                net.set_capacity(dict(zip(links, before)))
            self.sim.env.timeout(f.until_s - f.at_s).callbacks.append(restore)

