"""A system under test: one choice per policy seam plus the mechanisms it switches on.

Part of the contract the simulator offers policies (with :mod:`warmsim.sim.types` and
:mod:`warmsim.sim.policy_protocols`); ``warmsim.sim.bundle`` re-exports it."""

from __future__ import annotations

from dataclasses import dataclass, field

from warmsim.sim.knobs import Knob, flag, text
from warmsim.sim.policy_protocols import (
    Activator,
    Autoscaler,
    InitialPlacer,
    KVPolicy,
    Predictor,
    PrewarmPlacer,
    Router,
    SharingModel,
)
from warmsim.sim.startup import StartPath


class ShareByInverse:
    """The simplest sharing model: a step at compute share ``s`` takes ``1 / s`` as long, whatever
    the phase, batch or neighbours (used when a system names no sharing model)."""

    def factor(self, phase: str, share: float, batch: int, busy_neighbours: int = 0, *,
               tokens: int | None = None) -> float:
        """``1 / share``."""
        return 1.0 / share


@dataclass
class Bundle:
    """What a ``system/`` config builds.

    Policies decide; the flags below select simulator mechanisms that the system has (a system
    without prewarming simply has no ``placer``).
    """

    name: str
    router: Router
    autoscaler: Autoscaler | None
    activator: Activator | None = None  # where new instances start (None: the system never starts instances)
    initial: InitialPlacer | None = None  # instances present from t=0
    placer: PrewarmPlacer | None = None  # prewarmed-replica placement
    predictor: Predictor | None = None  # load prediction feeding the placer
    # The start path (which stages of an instance start are paid before one is asked for; each
    # flag is a field of warmsim.sim.startup.StartPath, documented there):
    device_prewarm: bool = False  # worker processes with a CUDA context exist on every GPU
    engine_prewarm: bool = False  # a pool of serving-engine processes has done its imports
    comm_prewarm: bool = False  # a prewarmed replica brings its TP communicator
    profile_run: bool = True  # the engine runs its KV profiling forward at start
    kv_prewarm: bool = False  # with a VMM pool, the first step waits only for the KV blocks it needs
    overlap_load: bool = False  # the weight load runs while the engine prepares
    ready_poll_s: float = 0.0  # the router polls a starting engine this often (0: told at once)
    prefetch: bool = False  # the weights move from the instance's creation, beside the process and engine start
    memswitch: str = "free_malloc"  # how GPU memory is re-purposed: a name in sim.memswitch.MEMSWITCHES
    kv_policy: KVPolicy | None = None  # lends idle KV blocks of running engines to prewarming (None: off)
    keep_weights_on_stop: bool = False  # a stopped instance leaves its weights as a prewarmed replica
    evict_on_activate: bool = True  # activation drops other replicas overlapping its GPUs
    scale_on_miss: bool = True  # a request no instance can take triggers an instance start
    prewarm_source: str = "host_pinned"  # a name in sim.sources.SOURCES
    #: How a step slows on a GPU shared with other engines (MuxServe): an object with
    #: ``factor(phase, share, batch, busy_neighbours, tokens=...)``; by default plain ``1 / share``.
    sharing: SharingModel = field(default_factory=ShareByInverse)
    #: Serving mechanisms beyond the start path and the memory switch (``sim.mechanisms.MECHANISMS``:
    #: sleep, pipeline, kv_balloon), by name, each with its checked knobs.
    extras: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def start_path(self) -> StartPath:
        """The start-path flags above as the simulator and ``warmsim estimate`` read them."""
        return StartPath(self.device_prewarm, self.engine_prewarm, self.comm_prewarm, self.profile_run,
                         self.kv_prewarm, self.overlap_load, self.ready_poll_s, self.prefetch)


#: Bundle fields a system's config sets as policies (each a node with ``_target_``) or that the
#: builder fills; every other field is a mechanism flag of ``mechanisms:`` (:data:`MECHANISM_KNOBS`).
POLICY_FIELDS = ("name", "router", "autoscaler", "activator", "initial", "placer", "predictor", "kv_policy",
                 "sharing", "meta", "extras")

#: The ``mechanisms:`` keys of a system config, with their bounds: one per Bundle field that is not a
#: policy (a test checks the two agree). ``memswitch`` is checked against the memory switches
#: (``sim/memswitch/``) when the bundle is built.
MECHANISM_KNOBS: dict[str, Knob] = {
    "device_prewarm": flag("worker processes with a CUDA context exist on every GPU"),
    "engine_prewarm": flag("a pool of serving-engine processes has done its imports"),
    "comm_prewarm": flag("a prewarmed replica brings its TP communicator"),
    "profile_run": flag("the engine runs its KV profiling forward at start"),
    "kv_prewarm": flag("with a VMM pool, the first step waits only for the KV blocks it needs"),
    "overlap_load": flag("the weight load runs while the engine prepares"),
    "ready_poll_s": Knob("float", 0, 60, help="seconds between the router's polls of a starting engine; 0 = told at once"),
    "prefetch": flag("the weights move from the instance's creation, beside the process and engine start"),
    "memswitch": text("how GPU memory is re-purposed (sim/memswitch/)"),
    "keep_weights_on_stop": flag("a stopped instance leaves its weights as a prewarmed replica"),
    "evict_on_activate": flag("activation drops other replicas overlapping its GPUs"),
    "scale_on_miss": flag("a request no instance can take triggers an instance start"),
    "prewarm_source": text("weight source name (sim/sources/)"),
}
