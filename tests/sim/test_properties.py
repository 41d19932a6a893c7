"""Invariants over random small traces (hypothesis): conservation, memory, determinism."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.helpers import cluster, cost, model, ondemand, peerload, static, workload
from warmsim.sim.engine import EngineSpec
from warmsim.sim.simulation import SimSpec, Simulation

traces = st.lists(
    st.tuples(st.floats(0, 120, allow_nan=False), st.integers(1, 1500), st.integers(1, 600), st.integers(0, 2)),
    min_size=0, max_size=60)


def build(rows, system, hbm_gib):
    rows = sorted(rows)
    w = workload([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], models=("a", "b", "c"),
                 model_idx=[r[3] for r in rows], duration=130)
    models = {"a": model("a"), "b": model("b"), "c": model("c", "llama-2-13b", 2)}
    if system == "static":
        bundle, spec = static({"a": 1, "b": 1, "c": 1}), cluster(gpus=4, hbm_gib=hbm_gib, bw=20e9)
    elif system == "peerload":  # scale-ups copy from running peers, over NVLink or across the 2 nodes
        bundle, spec = peerload(keep_alive_s=5, per_instance=2), cluster(nodes=2, gpus=2, hbm_gib=hbm_gib, bw=20e9)
    else:
        bundle, spec = ondemand(keep_alive_s=5), cluster(gpus=2, hbm_gib=hbm_gib, bw=20e9)
    return Simulation(w, models, spec, cost(prefill_per_token_s=1e-4, process_start=2, engine_init=2), bundle,
                      EngineSpec(block_size=16, max_num_seqs=8), SimSpec(request_timeout_s=60, drain_s=120))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=traces, system=st.sampled_from(["static", "ondemand", "peerload"]), hbm=st.sampled_from([40, 80]))
def test_every_request_ends_completed_or_dropped_with_a_reason(rows, system, hbm):
    s = build(rows, system, hbm)
    req = s.run().requests_table()
    assert set(req.status.astype(str)) <= {"completed", "dropped"}
    dropped = req[req.status == "dropped"]
    assert (dropped.drop_reason != "").all()
    done = req[req.status == "completed"]
    assert (done.first_token_s >= done.arrival_s).all() and (done.finish_s >= done.first_token_s).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=traces, system=st.sampled_from(["static", "ondemand", "peerload"]), hbm=st.sampled_from([40, 80]))
def test_no_gpu_is_ever_over_committed(rows, system, hbm):
    s = build(rows, system, hbm)
    rec = s.run()
    cap = s.cluster.gpus[0].mem.capacity_bytes
    used = np.array([m[2] for m in rec.memory] or [0])
    assert used.max() <= cap
    assert all(g.mem.used == sum(g.mem.held.values()) for g in s.cluster.gpus)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=traces, system=st.sampled_from(["static", "ondemand", "peerload"]))
def test_same_input_gives_bit_identical_results(rows, system):
    a = build(rows, system, 80).run().requests_table()
    b = build(rows, system, 80).run().requests_table()
    assert a.equals(b)


# ---- every default system, built from its shipped config, with the invariant checker on --------------
DEFAULT_SYSTEMS = ("static", "sllm", "muxserve", "warmserve")
PAPER_MODELS = ("llama-2-7b-a", "llama-2-7b-b", "llama-2-13b", "llama-2-70b")
_SETUP = {}


def _paper_setup():
    """The paper's cluster and models with the constant cost model (built once)."""
    if not _SETUP:
        from hydra import compose, initialize_config_dir

        from warmsim.experiments.builder import CONF_DIR, build_setup
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=["cost=constant", "workload.duration_s=60",
                                                           "cluster.gpu_hbm_gib=48", "sim.check_invariants=true"])
            _SETUP["cfg"], _SETUP["setup"] = cfg, build_setup(cfg)
    return _SETUP["cfg"], _SETUP["setup"]


paper_traces = st.lists(
    st.tuples(st.floats(0, 60, allow_nan=False), st.integers(1, 1024), st.integers(1, 1023), st.integers(0, 3)),
    min_size=1, max_size=80)


#: 40 random workloads spread over the four default systems (about 10 each).
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=paper_traces, system=st.sampled_from(DEFAULT_SYSTEMS))
def test_every_default_system_keeps_the_invariants(rows, system):
    from warmsim.experiments.builder import build_bundle, system_cluster, system_config
    cfg, setup = _paper_setup()
    rows = sorted(rows)
    w = workload([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], models=PAPER_MODELS,
                 model_idx=[r[3] for r in rows], duration=60)
    scfg = system_config(system)
    bundle = build_bundle(scfg, w, setup.models, setup.cluster, setup.cost, cfg)
    assert setup.sim.check_invariants
    s = Simulation(w, setup.models, system_cluster(scfg, setup.cluster), setup.cost, bundle, setup.engine,
                   setup.sim)
    rec = s.run()  # the checker raises InvariantViolation on any broken invariant
    assert rec.done == len(w)
