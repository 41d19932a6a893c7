"""Engines that sleep instead of stopping, and wake instead of starting (vLLM sleep mode).

vLLM's sleep mode (docs.vllm.ai "Sleep Mode"; blog.vllm.ai/2025/10/26/sleep-mode.html; code
``vllm/device_allocator/cumem.py`` ``CuMemAllocator.sleep`` / ``wake_up``, ``vllm/v1/worker/gpu_worker.py``
``Worker.sleep`` / ``wake_up``) keeps an idle engine's process, CUDA context, compiled kernels and CUDA
graphs, and releases its GPU memory: level 1 first copies the weights to pinned host memory, level 2
drops them; both drop the KV cache. Waking re-creates the memory at the same addresses, then copies
the weights back (level 1) or reloads them from the checkpoint (level 2); no process start, engine
start, profiling run or graph capture.

Here an instance whose engine stops (the autoscaler drained it) falls asleep on its GPUs instead:

- **Falling asleep** takes the sleep call (``engine_wake`` stage of the cost model) plus, at level 1,
  the shard's copy to host memory at the ``pcie_d2h`` link capacity (a timed wait, not a flow: the
  loads onto GPUs use the other direction of the link). Until then the instance holds its GPUs.
- **A sleeper** then holds ``residual_gib`` of GPU memory on each of its GPUs (the context, graph pool
  and other memory outside the pool), and at level 1 the model's weight bytes of its node's host
  memory, counted against ``host_budget_gib``; a level-1 sleep that would exceed it sleeps at level 2.
  Its GPUs count as free: another engine may run there while it sleeps.
- **A wake** (an activation plan with ``Activate.wake``) starts an instance on the sleeper's GPUs whose
  start stages are only the wake call, the weights and the KV allocation of the system's memory switch
  (``cumem`` for vLLM: one VMM handle per allocation). Level 1 copies the shard back from its backup
  (source ``sleep_backup``: host memory link, PCIe); level 2 reloads it from the plan's storage source.
  The engine gets back the KV size it had (less if the GPU has less room now).
- **Room for others.** A cold start on GPUs where sleepers leave too little memory for the model and
  one full-length sequence stops the oldest of them (their processes end).

Not modelled: the pinned buffer's allocation at every sleep, PCIe shared by several GPUs waking at
once beyond the flow network's links, host-memory swapping, prefix-cache contents (lost anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

from warmsim.sim.cost import check_source
from warmsim.sim.errors import PlanError, UserError
from warmsim.sim.mechanisms.base import Mechanism
from warmsim.sim.models import ServedModel
from warmsim.sim.recorder import START_PREWARMED
from warmsim.sim.startup import StartStages
from warmsim.sim.types import SleeperView

#: The memory kind a sleeper holds on its GPUs.
ASLEEP = "asleep"
GIB = 1 << 30


@dataclass(frozen=True)
class SleepKnobs:
    """Knobs of the ``sleep`` mechanism (``mechanisms.sleep`` of a system config)."""

    #: 1: weights offloaded to pinned host memory, KV dropped; 2: weights and KV dropped.
    level: int = 1
    #: Pinned host memory per node that level-1 sleepers may hold, GiB (``None``: no limit).
    host_budget_gib: float | None = 1024.0
    #: GPU memory a sleeping engine keeps on each of its GPUs, GiB (CUDA context, graph pool).
    residual_gib: float = 1.14

    def __post_init__(self) -> None:
        if self.level not in (1, 2):
            raise UserError(f"level must be 1 or 2, got {self.level!r}")
        if self.host_budget_gib is not None and not self.host_budget_gib >= 0:
            raise UserError(f"host_budget_gib must be >= 0 or null, got {self.host_budget_gib!r}")
        if not 0 <= self.residual_gib < 80:
            raise UserError(f"residual_gib must be in [0, 80), got {self.residual_gib!r}")


@dataclass
class Sleeper:
    """One suspended engine."""

    id: int
    model: ServedModel
    gpus: tuple[int, ...]
    level: int
    since: float
    kv_bytes_per_gpu: int
    max_num_seqs: int | None
    host_bytes: int  # pinned host memory its backup holds (level 1)

    def view(self) -> SleeperView:
        return SleeperView(self.id, self.model.name, self.gpus, self.level, self.since)


class Sleep(Mechanism):
    """The ``sleep`` mechanism of one run."""

    name = "sleep"
    Knobs = SleepKnobs

    def __init__(self, sim, knobs: SleepKnobs) -> None:
        super().__init__(sim, knobs)
        self.sleepers: dict[int, Sleeper] = {}
        self.host_used = [0] * sim.cluster.spec.nodes  # pinned bytes of level-1 backups per node
        self.residual = int(knobs.residual_gib * GIB)
        self._views: tuple[SleeperView, ...] | None = ()
        self.sleeps = {1: 0, 2: 0}
        self.stopped = 0  # sleepers whose processes were ended to make room
        self.wakes: dict[int, tuple[int, float]] = {}  # instance id -> (level, created)
        sim.state.asleep_views = self.views

    # ---- views ------------------------------------------------------------------------------------
    def views(self) -> tuple[SleeperView, ...]:
        if self._views is None:
            self._views = tuple(s.view() for s in self.sleepers.values())
        return self._views

    def _changed(self) -> None:
        self._views = None

    # ---- falling asleep ---------------------------------------------------------------------------
    def on_stopped(self, inst) -> bool:
        if inst.failed or inst.compute_share < 1.0 or getattr(inst, "groups", None) is not None:
            return False
        node = self.sim.cluster.gpus[inst.gpus[0]].node
        level = self.knobs.level
        budget = self.knobs.host_budget_gib
        if level == 1 and budget is not None and self.host_used[node] + inst.model.weight_bytes > budget * GIB:
            level = 2
        if level == 1:
            self.host_used[node] += inst.model.weight_bytes
        self.sim.env.process(self._fall_asleep(inst, level, node))
        return True

    def _fall_asleep(self, inst, level: int, node: int):
        sim = self.sim
        t = sim.cost.stage_s("engine_wake", inst.model)
        if level == 1:
            t += inst.model.shard_bytes / sim.cost.link_bandwidth("pcie_d2h")
        yield sim.env.timeout(t)
        sim.activations.on_stopped(inst)
        sl = Sleeper(sim.new_id(), inst.model, inst.gpus, level, sim.env.now, inst.kv_bytes_per_gpu,
                     inst.max_num_seqs, inst.model.weight_bytes if level == 1 else 0)
        for g in sl.gpus:
            sim.cluster.gpus[g].mem.set(ASLEEP, sl.id, self.residual)
        self.sleepers[sl.id] = sl
        self.sleeps[level] += 1
        self._changed()
        sim.recorder.event(sim.env.now, "sleeper", sl.id, sl.model.name, sl.gpus, "asleep",
                           f"level {level}, instance {inst.id}")

    def _remove(self, sl: Sleeper, why: str) -> None:
        sim = self.sim
        del self.sleepers[sl.id]
        for g in sl.gpus:
            sim.cluster.gpus[g].mem.release(ASLEEP, sl.id)
        self.host_used[sim.cluster.gpus[sl.gpus[0]].node] -= sl.host_bytes
        self._changed()
        sim.recorder.event(sim.env.now, "sleeper", sl.id, sl.model.name, sl.gpus, why)

    # ---- waking -----------------------------------------------------------------------------------
    def owns(self, act) -> bool:
        return act.wake is not None

    def apply(self, act, ready_at_start: bool):
        sim = self.sim
        sl = self.sleepers.get(act.wake)
        if sl is None or sl.model.name != act.model or tuple(sorted(sl.gpus)) != tuple(sorted(act.gpus)):
            raise PlanError(f"Activate {act.model}: wake {act.wake} is not a sleeping {act.model} on {act.gpus}")
        if ready_at_start or act.stages or act.replica is not None or act.peer is not None:
            raise PlanError(f"Activate {act.model}: a wake takes no replica, peer, pipeline or time-0 start")
        want = "sleep_backup" if sl.level == 1 else None
        if want is not None and act.source != want:
            raise PlanError(f"Activate {act.model}: a level-1 sleeper wakes from sleep_backup, not {act.source}")
        if want is None:
            check_source(act.source, f"Activate {act.model} (level-2 wake).source")
        gpus_ = sim.cluster.gpus
        busy = [g for g in sl.gpus if gpus_[g].instances]
        if busy:
            raise PlanError(f"Activate {act.model}: wake {act.wake}: GPUs {busy} serve other instances")
        model = sl.model
        block = sim.engine_spec.block_size * model.kv_bytes_per_token_per_gpu
        room = min(gpus_[g].mem.free_bytes for g in sl.gpus) + self.residual - model.shard_bytes
        kv = min(sl.kv_bytes_per_gpu, room) // block * block
        if kv < block:
            raise PlanError(f"Activate {act.model}: wake {act.wake}: no room for its KV cache on {sl.gpus}")
        self._remove(sl, "woken")
        from warmsim.sim.instance import Instance
        inst = Instance(sim, sim.new_id(), model, sl.gpus, act.source, kv_bytes_per_gpu=kv,
                        max_num_seqs=sl.max_num_seqs)
        # A wake pays the wake call (before the weights move, in the engine-prepare slot of the start
        # path), the weights and the KV allocation; every other stage survived the sleep.
        kv_alloc = sim.memswitch.kv_alloc_s(sim.cost, kv, sim.start_path.kv_prewarm)
        inst.stages = StartStages(0.0, 0.0, sim.cost.stage_s("engine_wake", model), 0.0, 0.0, 0.0, kv_alloc, 0.0)
        inst.start_kind = START_PREWARMED
        self.wakes[inst.id] = (sl.level, sim.env.now)
        return sim.activations.install(inst, act, cold=False)

    # ---- room for cold starts -------------------------------------------------------------------
    def prepare(self, act, model) -> None:
        """Before a cold start's KV is sized: stop the oldest sleepers on its GPUs until ``model``'s
        shard and one full-length sequence fit."""
        sim = self.sim
        need = model.shard_bytes + model.shape.max_model_len * model.kv_bytes_per_token_per_gpu
        for g in act.gpus:
            mem = sim.cluster.gpus[g].mem
            while mem.free_bytes < need:
                here = sorted((s for s in self.sleepers.values() if g in s.gpus), key=lambda s: (s.since, s.id))
                if not here:
                    break
                self._remove(here[0], "stopped")
                self.stopped += 1

    # ---- report -----------------------------------------------------------------------------------
    def wake_times(self) -> dict[int, list[float]]:
        """Seconds from each wake's plan to its engine serving, by level (woken instances that became active)."""
        out: dict[int, list[float]] = {1: [], 2: []}
        active = {e[2]: e[0] for e in self.sim.recorder.timeline if e[1] == "instance" and e[5] == "active"}
        for iid, (level, t0) in self.wakes.items():
            if iid in active:
                out[level].append(active[iid] - t0)
        return out

    def lines(self) -> list[str]:
        times = self.wake_times()

        def mean(xs: list[float]) -> str:
            return f"mean {sum(xs) / len(xs):.3f} s" if xs else "none"

        return [f"sleep mode (sim/mechanisms/sleep.py, level {self.knobs.level}): {self.sleeps[1]} level-1 and "
                f"{self.sleeps[2]} level-2 sleeps; wakes: level 1 {len(times[1])} ({mean(times[1])}), level 2 "
                f"{len(times[2])} ({mean(times[2])}); {self.stopped} sleepers stopped to make room, "
                f"{len(self.sleepers)} asleep at the end"]
