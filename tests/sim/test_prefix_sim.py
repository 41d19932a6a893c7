"""Prefix caching, chunked prefill and step rows inside whole simulations: an instance's cache lives
and dies with it, every invariant holds under KV lending, evictions, preemptions and a lost GPU,
recording steps changes no result, and on the Mooncake conversation trace prefix caching serves
prompt tokens from the cache and lowers the median TTFT (the issue's acceptance check)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hydra import compose, initialize_config_dir

from tests.sim.helpers import cluster, cost, model, ondemand, workload
from warmsim.experiments.builder import CONF_DIR, build_setup, system_config
from warmsim.experiments.runner import run_system
from warmsim.sim.engine import EngineSpec
from warmsim.sim.simulation import Simulation
from warmsim.traces.workload import PrefixBlocks


def _cold_start_case(keep_alive_s: float):
    # Two requests with the same 40-token prompt (ids 1 2 3, 16 tokens each; blocks of 16): 100 s apart.
    w = replace(workload([0.0, 100.0], [40, 40], [2, 2]), prefix=PrefixBlocks.from_lists([[1, 2, 3], [1, 2, 3]], 16))
    sim = Simulation(w, {"a": model("a")}, cluster(gpus=1), cost(prefill_base_s=0.01), ondemand(keep_alive_s),
                     EngineSpec(block_size=16, prefix_caching=True))
    rec = sim.run()
    return rec


def test_a_kept_instance_serves_the_second_prompt_from_its_cache():
    # Blocks 0 and 1 (32 tokens) are full and not the last block: hit 32 of 40.
    rec = _cold_start_case(keep_alive_s=1000.0)
    assert list(rec.cached_tokens) == [0, 32] and rec.instance[0] == rec.instance[1]


def test_a_cold_started_instance_starts_with_an_empty_cache():
    # The first instance is released after 10 s idle; the second request cold-starts a new one.
    rec = _cold_start_case(keep_alive_s=10.0)
    assert list(rec.cached_tokens) == [0, 0] and rec.instance[0] != rec.instance[1]


SMALL = ["workload=mapped_azure_conv", "workload.trace=mooncake_conv", "workload.duration_s=240",
         "workload.max_prompt_tokens=1024", "workload.max_output_tokens=1023", "workload.alpha=1.0",
         "progress=false", "sim.check_invariants=true"]


def _run(system: str, overrides=()):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[*SMALL, *overrides])
        setup = build_setup(cfg)
        return run_system(setup, system_config(system), cfg), setup


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("system,extra", [
    ("warmserve", ["engine.prefix_caching=true"]),  # KV lending and reclaims, replica evictions
    ("warmserve", ["engine.prefix_caching=true", "engine.chunked_prefill=true", "engine.max_batched_tokens=2048",
                   "faults=gpu_down", "faults.events.0.at_s=60"]),  # a lost instance (its cache goes with it)
    ("sllm", ["engine.prefix_caching=true", "engine.chunked_prefill=true", "engine.max_batched_tokens=512"]),
    ("muxserve", ["engine.prefix_caching=true", "engine.max_num_seqs=8"]),  # shared GPUs, preemptions
    ("static", ["engine.chunked_prefill=true", "engine.max_batched_tokens=256"]),
])
def test_every_invariant_holds_with_the_features_on(system, extra):
    res, setup = _run(system, extra)  # the checker runs inside (sim.check_invariants=true)
    s = res.summary.set_index("model").loc["ALL"]
    assert s.completed + s.dropped == s.requests == len(setup.workload)
    if "engine.prefix_caching=true" in extra:
        assert s.prefix_hit_ratio > 0
    if "faults=gpu_down" in extra:
        assert res.faults and res.faults[0][2]  # GPU 0 failed at 60 s and took an instance


@pytest.mark.filterwarnings("ignore")
def test_recording_steps_changes_no_result_and_the_rows_add_up():
    base, _ = _run("warmserve")
    rec, setup = _run("warmserve", ["output.steps=true"])
    assert base.steps is None
    assert rec.requests.equals(base.requests) and rec.summary.equals(base.summary)
    assert rec.timeline.equals(base.timeline)
    st = rec.steps
    assert len(st) > len(setup.workload)  # at least a prefill step and a decode run per request, most batched
    assert (st.kv_used + st.kv_cached + st.kv_lent <= st.kv_total).all() and (st.end_s >= st.start_s).all()
    assert (st.kv_cached == 0).all() and (st.computed_tokens == st.prefill_tokens).all()  # no prefix caching
    # Decode steps: the engines' step counters, summed over the rows of decode runs.
    assert st.loc[st.kind == "decode", "steps"].sum() > 0
    assert set(st.kind) == {"prefill", "decode"}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("system", ["sllm", "warmserve"])
def test_on_the_mooncake_conversation_trace_prefix_caching_serves_tokens_from_cache_and_lowers_the_median_ttft(system):
    # The check, on the first 8 minutes of the trace (long-context models, no caps).
    over = ["models=long3", "workload.max_prompt_tokens=null", "workload.max_output_tokens=null",
            "workload.duration_s=480", "workload.split=conversation", "sim.check_invariants=false"]
    off, _ = _run(system, over)
    on, _ = _run(system, [*over, "engine.prefix_caching=true"])
    a, b = off.summary.set_index("model").loc["ALL"], on.summary.set_index("model").loc["ALL"]
    assert a.prefix_hit_ratio == 0 and b.prefix_hit_ratio > 0
    assert b.ttft_p50_s < a.ttft_p50_s
    # Only the prefill work differs, and it is less with the cache: no request it served is lost.
    assert b.completed >= a.completed
