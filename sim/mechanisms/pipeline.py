"""A cold model split across servers as a pipeline, later consolidated onto its first stage (HydraServe).

HydraServe (arXiv 2502.15524; code ``LLMServe/hydraserve``, ``scripts/kubernetes/vllm/src/``) starts a
cold model as ``pp`` pipeline stages on ``pp`` servers, so that each server's NIC fetches only its
stages' share of the weights and the servers' bandwidth adds up; later it scales the pipeline down
to its first stage ("master"), which was given memory for the whole model at the start
(``algs.py`` ``ours``, ``scheduler.py`` ``scale_down`` / ``perform_scale_down``).

An activation plan with ``Activate.stages`` becomes a :class:`PipelinedInstance`: the first stage on
``Activate.gpus`` (a TP group), each later stage on a TP group of another node. Modelled:

- **Memory.** The first stage holds the whole shard and the KV cache on each of its GPUs (HydraServe's
  all-card master); a later stage holds ``1/pp`` of the shard and of the KV on each of its GPUs. Every
  stage GPU is the instance's alone (warmsim's instances do not share a GPU with another system's,
  so HydraServe's part-card workers on a GPU slice, Alibaba cGPU, are whole GPUs here).
- **The start.** Every GPU of every stage fetches ``1/pp`` of its shard from the plan's source over its
  own node's links (the flow network: a node's NIC is shared by the pulls on it), through the memory
  switch; the start path is the system's (HydraServe: ``prefetch``, the fetch beside process and engine
  start). The instance serves once every stage has its weights.
- **Steps.** Each step crosses ``pp - 1`` server boundaries: it takes ``(pp - 1) x (pipeline_hop_s +
  activation bytes / NIC)`` longer (the cost model's hop latency; ``tokens x hidden x dtype`` bytes
  for a prefill, ``batch x hidden x dtype`` for a decode step). The decode term is turned into a factor
  at the run's first step, so a long decode run slightly over-counts it.
- **Consolidation** (``consolidate``), at the first check tick (every ``check_s``) after the pipeline
  serves: the first stage fetches the other ``(pp - 1) / pp`` of its shard from the source; then the
  KV cache of the sequences in flight moves from the later stages' GPUs to the first stage's over the
  NICs (as it stands when the move starts); then the later stages' GPUs are released and the instance
  runs as one stage. The pipeline keeps serving meanwhile. An instance that stops before that ends
  releases everything as usual.

Not modelled: uneven layer splits (HydraServe allows 10 %), the wait for cold-start requests or idle
NICs before the KV move (``perform_scale_down``), all-card later stages turning into instances of
their own, the storage servers' own egress limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from warmsim.sim.cost import check_source
from warmsim.sim.errors import PlanError, UserError
from warmsim.sim.instance import Instance
from warmsim.sim.mechanisms.base import Mechanism
from warmsim.sim.memory import KV, WEIGHTS
from warmsim.sim.models import align_up
from warmsim.sim.sources import SOURCES
from warmsim.sim.startup import poll_delay_s
from warmsim.sim.types import ACTIVE


@dataclass(frozen=True)
class PipelineKnobs:
    """Knobs of the ``pipeline`` mechanism (``mechanisms.pipeline`` of a system config)."""

    #: Scale a serving pipeline down to its first stage (HydraServe ``scheduler.py`` ``scale_down``).
    consolidate: bool = True
    #: Seconds between consolidation checks (``Scheduler.check_instance_loop`` sleeps 1 s).
    check_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.check_s > 0:
            raise UserError(f"check_s must be > 0, got {self.check_s!r}")


class PipelinedInstance(Instance):
    """An instance whose model runs as ``pp`` stages, one TP group per node (``groups[0]`` first)."""

    def __init__(self, host, ident: int, model, groups: tuple[tuple[int, ...], ...], source: str, kv: int,
                 max_num_seqs: int | None, mechanism: Pipeline):
        super().__init__(host, ident, model, tuple(g for grp in groups for g in grp), source, kv_bytes_per_gpu=kv,
                         max_num_seqs=max_num_seqs)
        self.groups = groups
        self.mechanism = mechanism
        self.part_bytes = model.shard_bytes / len(groups)  # weights each GPU fetches at the start

    @property
    def pp(self) -> int:
        return len(self.groups)

    @property
    def kv_gpus(self) -> tuple[int, ...]:
        """The GPUs holding the KV cache its engine counts (the first stage)."""
        return self.groups[0]

    # ---- memory -----------------------------------------------------------------------------------
    def commit_memory(self) -> None:
        pp = self.pp
        for i, grp in enumerate(self.groups):
            for g in grp:
                mem = self.host.cluster.gpus[g].mem
                mem.set(WEIGHTS, self.id, self.model.shard_bytes if i == 0 else align_up(math.ceil(self.part_bytes)))
                mem.set(KV, self.id, self.kv_bytes_per_gpu if i == 0 else align_up(-(-self.kv_bytes_per_gpu // pp)))

    # ---- the start --------------------------------------------------------------------------------
    def _weights(self):
        """Every GPU of every stage fetches its ``1/pp`` of the shard over its own node's links."""
        h = self.host
        env = h.env
        ms = h.memswitch
        part = self.part_bytes
        wait = ms.before_load_s(h.cost, part, self.sync_free_s)
        if wait is not None:
            yield env.timeout(wait)
        t0 = env.now
        yield env.all_of(self.mechanism.fetch(self, self.gpus, part))
        yield env.timeout(h.cost.load_overhead_s(self.source, part))
        wait = ms.after_load_s(h.cost, part, env.now - t0)
        if wait is not None:
            yield env.timeout(wait)

    def _serve(self) -> None:
        super()._serve()
        if self.pp > 1:
            self.mechanism.serving(self)

    # ---- steps ------------------------------------------------------------------------------------
    def slowdown(self, phase: str, batch: int, tokens: int | None = None) -> float:
        f = self.host.step_slowdown(self, phase, batch, tokens)
        if self.pp == 1:
            return f
        cost, shape = self.host.cost, self.model.shape
        if phase == "prefill":
            assert tokens is not None  # an engine always gives a prefill step's tokens
            base = cost.prefill_s(self.model, tokens, batch)
            nbytes = tokens * shape.hidden * shape.dtype_bytes
        else:
            base = cost.decode_coeffs(self.model).step_s(batch, sum(s.ctx for s in self.engine.running))
            nbytes = batch * shape.hidden * shape.dtype_bytes
        hop = (self.pp - 1) * (cost.pipeline_hop_s() + nbytes / self.host.cluster.spec.nic_bw)
        return f + hop / base


class Pipeline(Mechanism):
    """The ``pipeline`` mechanism of one run."""

    name = "pipeline"
    Knobs = PipelineKnobs

    def __init__(self, sim, knobs: PipelineKnobs) -> None:
        super().__init__(sim, knobs)
        self.started: dict[int, tuple[int, float]] = {}  # instance id -> (pp, created)
        self.consolidated: dict[int, float] = {}  # instance id -> seconds from serving to one stage
        self.stage_gpu_s = 0.0  # GPU-seconds the later stages held

    def fetch(self, inst: PipelinedInstance, gpus, nbytes: float, peers=None) -> list:
        """Start one flow of ``nbytes`` onto each of ``gpus`` from the instance's source (or, with
        ``peers``, from those GPUs over the NICs); returns their ``done`` events."""
        cluster = self.sim.cluster
        out = []
        for i, g in enumerate(gpus):
            if peers is None:
                links, cap = SOURCES[inst.source].path(cluster, g)
            else:
                p = cluster.gpus[peers[i]]
                links, cap = (cluster.nodes[p.node].nic_tx, cluster.nodes[cluster.gpus[g].node].nic,
                              cluster.gpus[g].pcie), float("inf")
            out.append(cluster.net.transfer(nbytes, links, ("pipeline", inst.id), cap).done)
        return out

    # ---- the plan ---------------------------------------------------------------------------------
    def owns(self, act) -> bool:
        return bool(act.stages)

    def apply(self, act, ready_at_start: bool):
        sim = self.sim
        gpus_ = sim.cluster.gpus
        model = sim.activations.check_group(act.model, act.gpus, "Activate", act.tp)
        groups = (tuple(act.gpus),) + tuple(tuple(s) for s in act.stages)
        for grp in groups[1:]:
            sim.activations.check_group(act.model, grp, "Activate (pipeline stage)", act.tp)
        nodes = [gpus_[grp[0]].node for grp in groups]
        if len(set(nodes)) != len(groups):
            raise PlanError(f"Activate {act.model}: pipeline stages {list(groups)} must sit on distinct nodes")
        if ready_at_start or act.replica is not None or act.peer is not None or act.wake is not None \
                or act.compute_share < 1.0:
            raise PlanError(f"Activate {act.model}: a pipeline takes no replica, peer, wake, shared GPU or time-0 start")
        check_source(act.source, f"Activate {act.model} (pipeline).source")
        busy = [g for grp in groups for g in grp if gpus_[g].instances or gpus_[g].replicas]
        if busy:
            raise PlanError(f"Activate {act.model}: pipeline GPUs {busy} hold instances or replicas")
        pp = len(groups)
        part = align_up(math.ceil(model.shard_bytes / pp))
        block = sim.engine_spec.block_size * model.kv_bytes_per_token_per_gpu
        kv = min(gpus_[g].mem.free_bytes for g in groups[0]) - model.shard_bytes
        for grp in groups[1:]:
            kv = min(kv, (min(gpus_[g].mem.free_bytes for g in grp) - part) * pp - pp * (2 << 20))
        if act.kv_bytes_per_gpu is not None:
            kv = min(kv, act.kv_bytes_per_gpu)
        kv = kv // block * block
        if kv < block:
            raise PlanError(f"Activate {act.model} on {list(groups)}: no room for KV cache after weights")
        inst = PipelinedInstance(sim, sim.new_id(), model, groups, act.source, kv, act.max_num_seqs, self)
        self.started[inst.id] = (pp, sim.env.now)
        sim.recorder.event(sim.env.now, "pipeline", inst.id, model.name, inst.gpus, "stages",
                           " | ".join(",".join(map(str, grp)) for grp in groups))
        return sim.activations.install(inst, act)

    # ---- consolidation ----------------------------------------------------------------------------
    def serving(self, inst: PipelinedInstance) -> None:
        if self.knobs.consolidate:
            self.sim.env.process(self._consolidate(inst))

    def _consolidate(self, inst: PipelinedInstance):
        sim = self.sim
        env = sim.env
        t_serve = env.now
        wait = poll_delay_s(env.now, self.knobs.check_s)  # the next tick of the check loop
        if wait:
            yield env.timeout(wait)
        if inst.state != ACTIVE:
            return
        first = inst.groups[0]
        sim.recorder.event(env.now, "pipeline", inst.id, inst.model.name, first, "consolidating", f"pp {inst.pp}")
        rest = inst.model.shard_bytes - inst.part_bytes
        yield env.all_of(self.fetch(inst, first, rest))
        yield env.timeout(sim.cost.load_overhead_s(inst.source, rest))
        if inst.state != ACTIVE:
            return
        kv_moved = inst.engine.used_blocks * inst.block_bytes / inst.pp
        if kv_moved > 0:
            done = []
            for grp in inst.groups[1:]:
                done += self.fetch(inst, first, kv_moved, peers=grp)
            yield env.all_of(done)
            if inst.state != ACTIVE:
                return
        self._collapse(inst)
        self.consolidated[inst.id] = env.now - t_serve

    def _collapse(self, inst: PipelinedInstance) -> None:
        """The pipeline becomes its first stage: the later stages' GPUs are released."""
        sim = self.sim
        gpus_ = sim.cluster.gpus
        dropped = [g for grp in inst.groups[1:] for g in grp]
        self.stage_gpu_s += len(dropped) * (sim.env.now - inst.created)
        for g in dropped:
            gpus_[g].mem.release(WEIGHTS, inst.id)
            gpus_[g].mem.release(KV, inst.id)
        sim.state.release_gpus(inst, dropped)
        inst.groups = inst.groups[:1]
        inst.gpus = inst.groups[0]
        inst._view = None
        sim.instance_changed(inst)
        sim.recorder.event(sim.env.now, "pipeline", inst.id, inst.model.name, inst.gpus, "consolidated",
                           f"released GPUs {dropped}")

    # ---- report -----------------------------------------------------------------------------------
    def lines(self) -> list[str]:
        active = {e[2]: e[0] for e in self.sim.recorder.timeline if e[1] == "instance" and e[5] == "active"}
        by_pp: dict[int, list[float]] = {}
        for iid, (pp, t0) in self.started.items():
            by_pp.setdefault(pp, [])
            if iid in active:
                by_pp[pp].append(active[iid] - t0)
        starts = ", ".join(f"pp {pp}: {len(v)} (mean start {sum(v) / len(v):.2f} s)" if v else f"pp {pp}: none served"
                           for pp, v in sorted(by_pp.items())) or "none"
        cons = list(self.consolidated.values())
        mean = f", mean {sum(cons) / len(cons):.2f} s from serving to one stage" if cons else ""
        return [f"pipelined cold starts (sim/mechanisms/pipeline.py): {starts}; {len(cons)} consolidated{mean}"]
