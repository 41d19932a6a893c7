"""Keep-alive counted from when an instance really became idle, by hand, through the simulator.

Both keep-alive autoscalers (ondemand's and ServerlessLLM's) read ``InstanceView.idle_since``, the
moment the instance's last request ended; before, they measured idle time from their own ticks, so an
instance was released up to one autoscaler period early (ondemand) or late (sllm).
"""

import pytest

from tests.sim.helpers import cluster, cost, model, ondemand, workload
from warmsim.policies.bundle import Bundle
from warmsim.policies.ondemand import FirstFitActivator
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.sllm import SllmAutoscaler
from warmsim.sim.simulation import Simulation

US = 1e-6


def _run(bundle):
    # Request 0 (model a) at 0 s: cold start = process 1 s + load 1 s (shard / PCIe bandwidth) +
    # engine init 1 s = active at 3.0 s; prefill 0.05 s; 40 decode steps of 0.01 s: ends at 3.45 s.
    # Request 1 (model b) at 30 s keeps the run going past the release. No profiling forward at start.
    bundle.profile_run = False
    shard = model().shard_bytes
    c = cost(process_start=1.0, engine_init=1.0, prefill_base_s=0.05)
    w = workload([0.0, 30.0], [10, 10], [41, 1], models=("a", "b"), model_idx=[0, 1])
    s = Simulation(w, {"a": model("a"), "b": model("b")}, cluster(gpus=2, bw=float(shard)), c, bundle)
    rec = s.run()
    req, tl = rec.requests_table(), rec.timeline_table()
    assert req.finish_s[0] == pytest.approx(3.45, abs=US)
    inst_a = tl[(tl.kind == "instance") & (tl.model == "a")]
    return inst_a[inst_a.state == "draining"].time_s.tolist()


def test_ondemand_releases_at_the_first_tick_at_or_after_end_plus_keep_alive():
    # Keep-alive 10 s, ticks every 0.5 s: idle from 3.45 s, so released at the 13.5 s tick
    # (13.0 s when idle time counted from the last tick that saw it busy, 3.0 s).
    assert _run(ondemand(keep_alive_s=10.0)) == pytest.approx([13.5], abs=US)


def test_ondemand_keep_alive_on_a_tick_boundary():
    # 9.55 s keep-alive: 3.45 + 9.55 = 13.0 s is itself a tick, so the instance goes at 13.0 s
    # (counted from the first tick that saw it idle, 3.5 s, it would go at 13.5 s).
    assert _run(ondemand(keep_alive_s=9.55)) == pytest.approx([13.0], abs=US)


def test_sllm_autoscaler_keep_alive_counts_from_the_real_end():
    # Ticks every 1 s, keep-alive 9.5 s: idle from 3.45 s, so due at 12.95 s and released at the
    # 13 s tick (counted from the first tick that saw it idle, 4 s: 13.5 s -> the 14 s tick).
    b = Bundle("sllm-like", LeastLoadedRouter(32),
               SllmAutoscaler(target_concurrency=32, keep_alive_s=9.5, max_instances=None),
               FirstFitActivator())
    assert _run(b) == pytest.approx([13.0], abs=US)
