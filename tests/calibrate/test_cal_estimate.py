"""warmsim estimate: every phase and the TTFT match a hand computation; bad input is a UserError."""

from __future__ import annotations

import math
import re
import warnings

import pytest

from warmsim.calibrate.cli import estimate_main
from warmsim.calibrate.estimate import EstimateRequest, estimate, parse_args
from warmsim.sim.catalog import get_shape
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel

BASE = ["model=llama-2-7b", "gpu_profile=h100_analytic", "source=host_pinned", "prompt_tokens=1024"]


def _numbers(out: str) -> tuple[list[float], float]:
    vals = [(line, float(m.group(1))) for line in out.splitlines() if (m := re.search(r"([\d.]+) s$", line))]
    parts = [v for line, v in vals if "TTFT" not in line]
    total = [v for line, v in vals if "TTFT" in line][0]
    return parts, total


#: The default compare config's cluster (h100x16) and engine: host memory 200 GB/s (the cluster
#: file's own number; the other links are the profile's), an 80 GiB GPU with a 0.9 pool, the
#: artifact's engine limits (100,000 batched tokens, 256 sequences, 256-token blocks).
HOST_MEM_BW, POOL, BATCHED, SEQS, BLOCK = 200e9, int(80 * 2**30 * 0.9), 100_000, 256, 256


def _by_hand(cost, model: str, tp: int, source: str, prompt: int, memswitch="free_malloc", device=False,
             engine=False, comm=False, profile=True, kv_prewarm=False, overlap=False, poll=0.0) -> list[float]:
    """Every printed stage written out from the cost model's primitives, independently of
    sim.startup: the node link carries all ``tp`` shards, each GPU's link one shard."""
    m = ServedModel(model, get_shape(model), tp)
    shard = m.shard_bytes
    bw = lambda k: HOST_MEM_BW if k == "host_mem" else cost.link_bandwidth(k)  # noqa: E731
    node_link, gpu_link = {"host_pinned": ("host_mem", "pcie_h2d_pinned"), "ssd": ("ssd_read", "pcie_h2d_pinned"),
                           "page_cache": ("host_mem", "pcie_h2d_pageable"), "prewarmed": (None, None)}[source]
    loaded = source != "prewarmed"
    if loaded:
        per_flow = min(bw(gpu_link), bw(node_link) / tp)
        if source == "page_cache":  # read from the page cache, then a pageable copy
            per_flow = min(per_flow, 1 / (1 / bw("page_cache_read") + 1 / bw("pcie_h2d_pageable")))
        transfer = shard / per_flow
    else:
        transfer = 0.0
    if not loaded:
        memory = 0.0
    elif memswitch == "vmm_pool":
        memory = max(0.0, cost.vmm_map_s(shard) - transfer)
    else:
        memory = cost.alloc_s(shard)
    kv = (POOL - shard) // (BLOCK * m.kv_bytes_per_token_per_gpu) * (BLOCK * m.kv_bytes_per_token_per_gpu)
    if memswitch == "vmm_pool":
        kv_alloc = 0.0 if kv_prewarm else cost.vmm_map_s(kv)
    else:
        kv_alloc = cost.alloc_s(kv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (scaled-shape notes)
        prefill = cost.prefill_s(m, prompt, 1)
        kv_profile = cost.prefill_s(m, BATCHED, SEQS) if profile else 0.0
    stages = [0.0 if device else cost.process_start_s(), 0.0 if engine else cost.stage_s("engine_process", m),
              cost.stage_s("engine_prepare", m), memory, transfer,
              cost.load_overhead_s(source, shard) if loaded else 0.0,
              0.0 if (comm and not loaded) else cost.stage_s("tp_comm", m), cost.stage_s("engine_init", m),
              kv_profile, kv_alloc, cost.stage_s("cuda_graphs", m)]
    load = sum(stages[3:7])
    up = sum(stages) - (min(stages[2], load) if overlap else 0.0)
    wait = (math.ceil(up / poll - 1e-9) * poll - up) if poll else 0.0
    return [*stages, wait, prefill]


def _ttft(parts: list[float], overlap: bool) -> float:
    return sum(parts) - (min(parts[2], sum(parts[3:7])) if overlap else 0.0)


@pytest.mark.parametrize("extra,kw", [
    ([], {}),
    (["memswitch=vmm_pool"], {"memswitch": "vmm_pool"}),
    (["device_prewarmed=true", "engine_prewarmed=true"], {"device": True, "engine": True}),
    (["source=ssd", "tp=2"], {"source": "ssd", "tp": 2}),
    (["source=prewarmed"], {"source": "prewarmed"}),
    (["source=page_cache", "profile_run=false", "memswitch=vmm_pool", "kv_prewarm=true"],
     {"source": "page_cache", "profile": False, "memswitch": "vmm_pool", "kv_prewarm": True}),
    (["source=prewarmed", "comm_prewarmed=true", "overlap_load=true", "ready_poll_s=0.05", "tp=2"],
     {"source": "prewarmed", "comm": True, "overlap": True, "poll": 0.05, "tp": 2}),
    (["source=page_cache", "overlap_load=true", "ready_poll_s=0.3"],
     {"source": "page_cache", "overlap": True, "poll": 0.3}),
])
def test_printed_breakdown_and_ttft_match_a_hand_computation(capsys, analytic_cost, extra, kw):
    # Not "the parts sum to the total" (the total is defined from them): every printed stage and
    # the TTFT against values computed here from the cost model's primitives.
    assert estimate_main(BASE + extra) == 0
    out = capsys.readouterr().out
    assert "profile h100_analytic: NOT measured" in out
    parts, total = _numbers(out)
    args = {"source": "host_pinned", "tp": 1, **kw}
    expect = _by_hand(analytic_cost, "llama-2-7b", args.pop("tp"), args.pop("source"), 1024, **args)
    assert parts == pytest.approx(expect, abs=1e-4)  # printed to 4 decimals
    assert total == pytest.approx(_ttft(expect, kw.get("overlap", False)), abs=1e-4)


def test_the_artifacts_prewarmed_engine_still_pays_its_remaining_start(capsys):
    """Issue 19: with the device and the engine prewarmed, every stage the artifact pays is > 0."""
    assert estimate_main(["model=llama-2-7b", "source=page_cache", "device_prewarmed=true",
                          "engine_prewarmed=true"]) == 0
    out = dict((label.strip(), v) for label, v in
               (re.match(r"(.*?)\s+([\d.]+) s$", line).groups() for line in capsys.readouterr().out.splitlines()
                if re.search(r"[\d.]+ s$", line)))
    paid = ["engine prepare (config, tokenizer, workers)", "weight transfer", "TP communicator",
            "engine init (model, KV set-up, API server)", "KV profiling forward"]
    assert all(float(out[k]) > 0 for k in paid)
    assert float(out["process + CUDA context"]) == 0 and float(out["engine process + imports"]) == 0


def test_a_system_gives_its_start_path_and_a_flag_overrides_it(analytic_cost):
    hit = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "prewarmed", system="warmserve"), analytic_cost)
    assert hit.path.overlap_load and hit.path.comm_prewarm and not hit.path.profile_run
    assert hit.path.ready_poll_s == 0.05 and hit.memswitch == "vmm_pool"
    assert hit.startup.tp_comm_s == 0 and hit.startup.kv_profile_s == 0 and hit.startup.transfer_s == 0
    assert hit.startup.total_s > 0.5  # tokenizer, hand-off, engine, API server: not free
    up = hit.startup.total_s - hit.startup.ready_poll_s
    assert hit.startup.total_s == pytest.approx(math.ceil(up / 0.05) * 0.05)  # on the 50-ms poll grid
    forced = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "prewarmed", system="warmserve",
                                      profile_run=True), analytic_cost)
    assert forced.startup.kv_profile_s > 0


def test_the_clusters_links_set_the_transfer(analytic_cost):
    """`cluster.KEY=V` as in compare: a slower SSD makes the SSD load slower, as in the simulator."""
    base = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "ssd"), analytic_cost)
    slow = estimate(parse_args(["model=llama-2-7b", "gpu_profile=h100_analytic", "source=ssd",
                                "cluster.ssd_gbps=3"]), analytic_cost)
    assert slow.startup.transfer_s == pytest.approx(slow.model.shard_bytes / 3e9)
    assert base.startup.transfer_s < slow.startup.transfer_s


def test_estimate_matches_cost_model(analytic_cost):
    e = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "host_pinned", 1024), analytic_cost)
    assert e.ttft_s == pytest.approx(sum(_by_hand(analytic_cost, "llama-2-7b", 1, "host_pinned", 1024)), rel=1e-9)
    assert e.startup.transfer_s == pytest.approx(e.model.shard_bytes / analytic_cost.link_bandwidth("pcie_h2d_pinned"),
                                                 rel=1e-6)
    warm = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "prewarmed", 1024, device_prewarmed=True,
                                    engine_prewarmed=True, comm_prewarmed=True, profile_run=False,
                                    memswitch="vmm_pool", kv_prewarm=True), analytic_cost)
    m = warm.model
    fixed = sum(analytic_cost.stage_s(k, m) for k in ("engine_prepare", "engine_init", "cuda_graphs"))
    assert warm.ttft_s == pytest.approx(fixed + warm.prefill_s)
    assert warm.prefill_s == pytest.approx(analytic_cost.prefill_s(e.model, 1024, 1), rel=1e-12)


@pytest.mark.parametrize("args,msg", [
    (BASE + ["colour=blue"], "unknown key 'colour'"),
    (BASE[1:], "missing model="),
    (BASE + ["ready_poll_s=-1"], "ready_poll_s"),
    (BASE + ["cluster.ssd_gbps=-3"], "ssd_gbps"),
    (BASE + ["system=nope"], "system='nope' unknown"),
    (BASE + ["tp=two"], "tp='two' is not an integer"),
    (BASE + ["tp=0"], "tp must be positive"),
    (BASE + ["memswitch=magic"], "memswitch='magic' unknown"),
    (BASE + ["device_prewarmed=maybe"], "device_prewarmed"),
    (BASE + ["source=tape"], "source='tape' unknown"),
    (BASE + ["oops"], "expected key=value"),
    (["model=gpt-9", *BASE[1:]], "unknown model 'gpt-9'"),
    ([BASE[0], "gpu_profile=nope", *BASE[2:]], "unknown gpu_profile 'nope'"),
])
def test_bad_input(args, msg):
    with pytest.raises(UserError, match=re.escape(msg)):
        estimate_main(args)


def test_peer_sources_move_a_shard_per_nvlink_pair_or_everything_through_one_nic(analytic_cost):
    nv = estimate(EstimateRequest("llama-2-70b", "h100_analytic", "peer_nvlink", 1024, tp=4), analytic_cost)
    rdma = estimate(EstimateRequest("llama-2-70b", "h100_analytic", "peer_rdma", 1024, tp=4), analytic_cost)
    shard = nv.model.shard_bytes
    assert nv.startup.transfer_s == pytest.approx(shard / analytic_cost.link_bandwidth("nvlink"))
    assert rdma.startup.transfer_s == pytest.approx(4 * shard / analytic_cost.link_bandwidth("nic"))
    assert nv.startup.load_overhead_s == rdma.startup.load_overhead_s > 0
