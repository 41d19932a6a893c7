"""The invariant checker fires on deliberately corrupted state, naming time, GPU, instance and
request; a normal run passes it (the whole suite runs with it on: tests/conftest.py)."""

import pytest

from tests.sim.helpers import cluster, cost, model, static, workload
from warmsim.policies.types import ACTIVE, STARTING, Activate
from warmsim.sim.invariants import InvariantChecker, InvariantViolation
from warmsim.sim.recorder import DROPPED
from warmsim.sim.simulation import Simulation


def _sim(n=3, gpus=2, place=True):
    wl = workload([0.0, 0.1, 0.2][:n], [100] * n, [5] * n)
    s = Simulation(wl, {"a": model()}, cluster(gpus=gpus), cost(), static({"a": 1}))
    checker = InvariantChecker(s)
    checker.install()
    if place:
        s.activations.initial()
    return s, checker


def test_a_normal_run_passes_and_every_event_is_checked():
    s, checker = _sim(place=False)
    s.run()
    checker.finish()
    assert checker.events > 10


def test_over_committed_memory_names_the_gpu():
    s, checker = _sim()
    s.cluster.gpus[0].mem.used = s.cluster.gpus[0].mem.capacity + 1
    with pytest.raises(InvariantViolation, match=r"t=0\.000000 s \(GPU 0\): memory over-committed"):
        checker.check_gpu(0)


def test_a_dedicated_instance_sharing_its_gpu_is_caught():
    s, checker = _sim()
    inst = next(iter(s.instances.values()))
    other = s.apply_activate(Activate("a", (1,)))
    s.cluster.gpus[inst.gpus[0]].instances.add(other.id)  # corrupt: the other one appears on GPU 0 too
    with pytest.raises(InvariantViolation, match=r"GPU 0.*shares the GPU"):
        checker.check_gpu(0)


def test_kv_blocks_that_do_not_add_up_name_the_instance():
    s, checker = _sim()
    inst = next(iter(s.instances.values()))
    inst.engine.used_blocks += 1
    with pytest.raises(InvariantViolation, match=rf"instance {inst.id}\): engine uses 1 KV blocks"):
        checker.check_instance(inst)


def test_kv_bytes_below_the_engines_blocks_are_caught():
    s, checker = _sim()
    inst = next(iter(s.instances.values()))
    inst.engine.total_blocks += 100  # the engine counts more blocks than its GPUs hold
    with pytest.raises(InvariantViolation, match="of KV but its engine counts"):
        checker.check_instance(inst)


def test_an_illegal_lifecycle_transition_is_caught():
    s, checker = _sim()
    inst = next(iter(s.instances.values()))
    with pytest.raises(InvariantViolation, match=f"instance {inst.id} .*from starting to active"):
        s.state_changed(inst, STARTING, ACTIVE)


def test_a_request_completed_twice_is_caught():
    s, checker = _sim()
    s.recorder.complete(1, 0.5)
    with pytest.raises(InvariantViolation, match=r"request 1\): request 1 completed again"):
        s.recorder.complete(1, 0.6)


def test_the_clock_going_back_is_caught():
    s, checker = _sim()
    checker.now = 5.0
    with pytest.raises(InvariantViolation, match="clock went back"):
        checker.after_event()


def test_a_request_queued_in_two_places_is_caught():
    s, checker = _sim()
    inst = next(iter(s.instances.values()))
    s.requests.held["a"].append(2)
    inst.pending.append(2)
    with pytest.raises(InvariantViolation, match=r"request 2\): queued twice"):
        checker.check_queues()


def test_a_request_that_never_ended_or_lost_its_reason_is_caught():
    s, checker = _sim()
    with pytest.raises(InvariantViolation, match=r"request 0\): request never ended"):
        checker.finish()
    for rid in range(3):
        s.recorder.complete(rid, 1.0)
    s.recorder.status[2] = DROPPED  # dropped, but no reason recorded
    with pytest.raises(InvariantViolation, match=r"request 2\): dropped without a reason"):
        checker.finish()


class _CorruptingRouter:
    """A router that, on its first call, corrupts the memory accounts of the GPU of the instance it
    routes to (reaching the simulation through its caller's frame: deliberately, for this test)."""

    def __init__(self, max_inflight=None):  # the static system's router slot gives max_inflight
        self.done = False

    def route(self, model, instances):
        if not self.done and instances:
            import inspect
            gpus = inspect.currentframe().f_back.f_locals["self"].state.gpus  # sim.requests.Requests.route
            gpus[instances[0].gpus[0]].mem.used += 2 << 20
            self.done = True
        return instances[0].id if instances else None


def test_the_suite_runs_every_simulation_with_the_checker():
    # A run that asks for no checking (SimSpec.check_invariants is False) is still checked, because the
    # suite's conftest sets the environment variable every Simulation reads: the corruption is caught.
    from warmsim.sim.simulation import SimSpec
    wl = workload([0.0, 0.1, 0.2], [100] * 3, [5] * 3)
    b = static({"a": 1})
    b.router = _CorruptingRouter()
    s = Simulation(wl, {"a": model()}, cluster(gpus=2), cost(), b, spec=SimSpec(check_invariants=False))
    with pytest.raises(InvariantViolation, match=r"GPU 0.*memory"):
        s.run()


def test_cli_subprocesses_run_with_the_checker_too(tmp_path):
    # The same corruption in a `warmsim run` subprocess (the router comes from a user config directory):
    # the environment variable reaches it, and the violation is an internal error (exit 1, one line).
    import inspect
    import subprocess
    import textwrap

    from tests.exe import warmsim_exe
    conf = tmp_path / "warmsim_conf"
    (conf / "system").mkdir(parents=True)
    (conf / "corrupt.py").write_text(textwrap.dedent(inspect.getsource(_CorruptingRouter)))
    (conf / "system" / "corrupt.yaml").write_text(
        "defaults:\n  - static\n  - _self_\nname: corrupt\nrouter: {_target_: corrupt._CorruptingRouter}\n")
    p = subprocess.run([warmsim_exe(), "run", "system=corrupt", "cluster=tiny", "models=tiny1", "workload=synthetic",
                        "workload.duration_s=20", "workload.tokens_from=null", f"hydra.run.dir={tmp_path / 'r'}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("warmsim: internal error: InvariantViolation") and "memory" in last, p.stderr
    assert "Traceback" not in p.stderr
