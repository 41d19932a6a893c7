"""The cold-start systems (HydraServe, vLLM sleep mode at both levels, Prism) keep every invariant on
random small traces of the paper's cluster and models, built from their shipped configs with the
invariant checker on; some runs put the cluster on 16-Gbps NICs (HydraServe pipelines there) or give
vLLM sleep mode a host budget of one backup (both levels in one run). Same input, same results."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.helpers import workload
from tests.sim.test_properties import PAPER_MODELS, _paper_setup
from warmsim.sim.simulation import Simulation

SYSTEMS = ("hydraserve", "vllm_sleep", "vllm_sleep_l2", "prism")
traces = st.lists(
    st.tuples(st.floats(0, 60, allow_nan=False), st.integers(1, 1024), st.integers(1, 400), st.integers(0, 3)),
    min_size=1, max_size=60)


def run(rows, system, slow_nic):
    from dataclasses import replace

    from warmsim.experiments.builder import build_bundle, system_cluster, system_config
    cfg, setup = _paper_setup()
    rows = sorted(rows)
    w = workload([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], models=PAPER_MODELS,
                 model_idx=[r[3] for r in rows], duration=60)
    scfg = system_config(system)
    if system.startswith("vllm_sleep"):
        scfg.mechanisms.sleep.host_budget_gib = 20  # one 7B backup fits, a second sleeps at level 2
    cluster = replace(setup.cluster, nic_bw=2e9) if slow_nic else setup.cluster
    bundle = build_bundle(scfg, w, setup.models, cluster, setup.cost, cfg)
    s = Simulation(w, setup.models, system_cluster(scfg, cluster), setup.cost, bundle, setup.engine, setup.sim)
    return s, s.run()  # the checker raises InvariantViolation on any broken invariant


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=traces, system=st.sampled_from(SYSTEMS), slow_nic=st.booleans())
def test_every_cold_start_system_keeps_the_invariants(rows, system, slow_nic):
    s, rec = run(rows, system, slow_nic)
    assert rec.done == len(s.workload)
    req = rec.requests_table()
    assert (req[req.status == "dropped"].drop_reason != "").all()
    assert all(g.mem.used <= g.mem.capacity for g in s.cluster.gpus)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=traces, system=st.sampled_from(SYSTEMS))
def test_same_input_gives_bit_identical_results(rows, system):
    a = run(rows, system, True)[1].requests_table()
    b = run(rows, system, True)[1].requests_table()
    assert a.equals(b)
