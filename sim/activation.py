"""Instances: activation plans verified and applied, the instance lifecycle's callbacks (active,
draining, stopped), the autoscaler's control loop, the initial placement at time 0, and the step
slowdown of a GPU shared with other engines or with a background copy.

It owns every change to ``sim.instances`` and ``sim.by_model`` and the instance counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from warmsim.sim.errors import PlanError
from warmsim.sim.instance import Instance
from warmsim.sim.models import ServedModel
from warmsim.sim.sources import SOURCES
from warmsim.sim.types import ACTIVE, DRAINING, STOPPED, Activate

if TYPE_CHECKING:
    from warmsim.sim.simulation import Simulation


class Activations:
    """Instance starts and stops of one run."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.initial_lines: list[str] = []  # the instances placed at time 0, for the report

    # ---- plan checks ----------------------------------------------------------------------------
    def check_group(self, model_name: str, gpus: tuple[int, ...], what: str, tp: int | None = None) -> ServedModel:
        """The model (at ``tp``) a plan names, if ``gpus`` is a valid TP group for it."""
        sim = self.sim
        model = sim.models.get(model_name)
        if model is None:
            raise PlanError(f"{what}: unknown model {model_name}")
        if tp is not None and tp != model.tp:
            if tp < 1 or model.shape.heads % tp:
                raise PlanError(f"{what} {model_name}: tp {tp} does not divide its {model.shape.heads} heads")
            model = model.at_tp(tp)
        if len(gpus) != model.tp or len(set(gpus)) != len(gpus):
            raise PlanError(f"{what} {model_name}: needs {model.tp} distinct GPUs, got {gpus}")
        if any(g < 0 or g >= len(sim.cluster.gpus) for g in gpus):
            raise PlanError(f"{what} {model_name}: GPU id out of range in {gpus}")
        if len({sim.cluster.gpus[g].node for g in gpus}) != 1:
            raise PlanError(f"{what} {model_name}: TP group {gpus} spans nodes")
        return model

    def _check_peer(self, act: Activate, model: ServedModel) -> Instance | None:
        """The running instance a peer-sourced activation copies from (``None`` for other sources)."""
        sim = self.sim
        src = SOURCES.get(act.source)
        if src is None or not src.peer:
            if act.peer is not None:
                raise PlanError(f"Activate {act.model}: a peer instance is given but the source is {act.source}")
            return None
        peer = sim.instances.get(act.peer) if act.peer is not None else None
        if peer is None or peer.model.name != act.model:
            raise PlanError(f"Activate {act.model} from {act.source}: peer {act.peer} is not a live instance of "
                            f"{act.model}")
        if peer.state not in (ACTIVE, DRAINING) or peer.compute_share < 1.0:
            raise PlanError(f"Activate {act.model} from {act.source}: peer {act.peer} is {peer.state}, "
                            "not a running instance that holds its weights")
        same_node = sim.cluster.gpus[peer.gpus[0]].node == sim.cluster.gpus[act.gpus[0]].node
        if same_node != src.same_node:
            want = [n for n, s in SOURCES.items() if s.peer and s.same_node == same_node]
            hint = ("the same node" if same_node else "another node") + (f": use {want[0]}" if want else "")
            raise PlanError(f"Activate {act.model} on {act.gpus} from {act.source}: peer {act.peer} is on GPUs "
                            f"{peer.gpus} ({hint})")
        return peer

    # ---- starting -------------------------------------------------------------------------------
    def apply_activate(self, act: Activate, ready_at_start: bool = False) -> Instance:
        """Verify and apply an activation: evictions, memory, the instance's lifecycle process. A plan
        a serving mechanism owns (a wake, a pipeline: :mod:`warmsim.sim.mechanisms`) is its to apply."""
        sim = self.sim
        for mech in sim.mechanisms:
            if mech.owns(act):
                return mech.apply(act, ready_at_start)
        gpus_ = sim.cluster.gpus
        model = self.check_group(act.model, act.gpus, "Activate", act.tp)
        shared = act.compute_share < 1.0
        for g in act.gpus:
            gpu = gpus_[g]
            if gpu.instances and not shared:
                raise PlanError(f"Activate {act.model}: GPU {g} already serves instances {sorted(gpu.instances)}")
            if shared and sum(sim.instances[i].compute_share for i in gpu.instances) + act.compute_share > 1.0 + 1e-9:
                raise PlanError(f"Activate {act.model}: compute shares on GPU {g} would exceed 1")
        peer = self._check_peer(act, model) if act.replica is None else None
        rep = None
        if act.replica is not None:
            rep = sim.replicas.get(act.replica)
            if rep is None or rep.model.name != act.model or tuple(sorted(rep.gpus)) != tuple(sorted(act.gpus)):
                raise PlanError(f"Activate {act.model}: replica {act.replica} is not {act.model} on {act.gpus}")
            if rep.adopter is not None:
                raise PlanError(f"Activate {act.model}: replica {act.replica} is already taken by instance {rep.adopter}")
        freed = 0
        if sim.bundle.evict_on_activate:
            victims = sorted({r for g in act.gpus for r in gpus_[g].replicas} - {act.replica})
            for r in victims:
                freed += sim.evict(r, f"activation of {act.model}")
        for mech in sim.mechanisms:
            mech.prepare(act, model)
        inst_id = sim.new_id()
        if act.kv_bytes_per_gpu is not None:
            kv = act.kv_bytes_per_gpu
        else:
            free = min(gpus_[g].mem.free_bytes for g in act.gpus)
            kv = free - (0 if rep is not None else model.shard_bytes)
        block_bytes = sim.engine_spec.block_size * model.kv_bytes_per_token_per_gpu
        if kv < block_bytes:
            raise PlanError(f"Activate {act.model} on {act.gpus}: no room for KV cache after weights")
        kv = (kv // block_bytes) * block_bytes
        inst = Instance(sim, inst_id, model, tuple(act.gpus), act.source if rep is None else "prewarmed",
                        replica=rep, compute_share=act.compute_share, kv_bytes_per_gpu=kv,
                        ready_at_start=ready_at_start, peer=peer, max_num_seqs=act.max_num_seqs)
        return self.install(inst, act, rep, freed, ready_at_start)

    def install(self, inst: Instance, act: Activate, rep=None, freed: int = 0, ready_at_start: bool = False,
                cold: bool = True) -> Instance:
        """Put a verified new instance in place: its replica, host-cache pin, memory, GPUs, counters and
        lifecycle process (``cold``: a cold start when it takes over no replica; a wake is not)."""
        sim = self.sim
        gpus_ = sim.cluster.gpus
        inst_id = inst.id
        if rep is not None:
            rep.adopter = inst_id
        if rep is None and not ready_at_start and SOURCES[act.source].reads_host_cache:
            # The checkpoint must still be in the node's host cache when the load starts (after the
            # process start): pin it now, so other loads cannot push it out in between.
            cache = sim.cluster.nodes[gpus_[act.gpus[0]].node].host_cache
            if act.model not in cache:
                raise PlanError(f"Activate {act.model} from {act.source}: not in node "
                                f"{gpus_[act.gpus[0]].node}'s host cache")
            cache.pin(act.model)
            inst.cache_pin = cache
        inst.sync_free_s = sim.memswitch.sync_free_s(sim.cost, freed)
        for mech in sim.mechanisms:
            mech.on_created(inst)
        inst.commit_memory()
        sim.load.gpu_busy_delta(sum(1 for g in inst.gpus if not gpus_[g].instances))
        for g in inst.gpus:
            gpus_[g].instances.add(inst_id)
            sim.views.gpu_changed(g)
        sim.instances[inst_id] = inst
        sim.views.instance_added(inst)
        sim.load.instance_added(act.model)
        sim.by_model[act.model][inst_id] = inst
        sim.recorder.gpus_of_instance[inst_id] = ",".join(map(str, inst.gpus))
        c = sim.recorder.counters[act.model]
        if not ready_at_start:
            c["instance_starts"] += 1
            sim.load.pending_changed(act.model, +1)
            inst.counted_pending = True
            if rep is None:
                c["cold_starts"] += int(cold)
            elif rep.ready.triggered:
                c["prewarm_hits"] += 1
            else:
                c["prewarm_hits_loading"] += 1
        inst.process = sim.env.process(inst.lifecycle())
        return inst

    def try_start(self, model: str) -> bool:
        """Ask the activator for an instance of ``model``; False if it has none to offer."""
        sim = self.sim
        if sim.bundle.activator is None:
            return False
        act = sim.bundle.activator.choose(sim.snapshot(), model)
        if act is None:
            return False
        if act.model != model:
            raise PlanError(f"activator asked for {model} returned a plan for {act.model}")
        self.apply_activate(act)
        return True

    def initial(self) -> None:
        """The bundle's initial placement, ready at time 0."""
        sim = self.sim
        b = sim.bundle
        if b.initial is None:
            return
        rates = {m: float(np.sum(sim.workload.model == j)) / max(sim.workload.duration_s, 1e-9)
                 for j, m in enumerate(sim.order)}
        for act in b.initial.place(sim.snapshot(), rates):
            inst = self.apply_activate(act, ready_at_start=True)
            cap = f", max_num_seqs {act.max_num_seqs}" if act.max_num_seqs is not None else ""
            self.initial_lines.append(f"{act.model} on GPUs {list(inst.gpus)} (tp {inst.model.tp}, compute share "
                                      f"{inst.compute_share:.3f}, KV {inst.kv_bytes_per_gpu / 2**30:.1f} GiB/GPU{cap})")

    # ---- lifecycle callbacks --------------------------------------------------------------------
    def on_active(self, inst: Instance) -> None:
        sim = self.sim
        if inst.counted_pending:
            inst.counted_pending = False
            sim.load.pending_changed(inst.model.name, -1)
        sim.requests.route_held(inst.model.name)

    def on_stopped(self, inst: Instance) -> None:
        sim = self.sim
        inst.set_state(STOPPED)
        for g in inst.gpus:
            sim.cluster.gpus[g].instances.discard(inst.id)
            sim.views.gpu_changed(g)
        inst.release_memory()
        sim.load.gpu_busy_delta(-sum(1 for g in inst.gpus if not sim.cluster.gpus[g].instances))
        sim.weights.keep_on_stop(inst)
        del sim.instances[inst.id]
        sim.views.instance_removed(inst)
        del sim.by_model[inst.model.name][inst.id]

    def step_slowdown(self, inst: Instance, phase: str, batch: int, tokens: int | None = None) -> float:
        """Step-time factor of one ``phase`` step of ``batch`` sequences (``tokens`` in a prefill): on a shared GPU, the
        bundle's sharing model given the share and the co-located engines mid-step now (an idle
        neighbour costs nothing); times the interference of a background copy onto its GPUs."""
        sim = self.sim
        f = 1.0
        if inst.compute_share < 1.0:
            busy = {i for g in inst.gpus for i in sim.cluster.gpus[g].instances
                    if i != inst.id and sim.instances[i].engine.busy}
            f = sim.bundle.sharing.factor(phase, inst.compute_share, batch, len(busy), tokens=tokens)
        gpus = sim.cluster.gpus
        for g in inst.gpus:
            if gpus[g].background_flows:
                return f * (1.0 + sim.cost.interference().compute_slowdown)
        return f

    # ---- autoscaling ----------------------------------------------------------------------------
    def control_loop(self):
        """Every ``autoscaler.period_s``: sample the load, then drain and start what it decides."""
        sim = self.sim
        scaler = sim.bundle.autoscaler
        while True:
            yield sim.env.timeout(scaler.period_s)
            sim.load.sample()
            decision = scaler.decide(sim.snapshot())
            for iid in decision.stop:
                inst = sim.instances.get(iid)
                if inst is None or inst.state != ACTIVE:
                    raise PlanError(f"autoscaler stopped instance {iid}, which is not active")
                inst.drain()
            for model in sorted(decision.start):
                for _ in range(int(decision.start[model])):
                    if not self.try_start(model):
                        break
                sim.requests.route_held(model)
