"""warmsim estimate: every phase and the TTFT match a hand computation; bad input is a UserError."""

from __future__ import annotations

import re
import warnings

import pytest

from warmsim.calibrate.cli import estimate_main
from warmsim.calibrate.estimate import EstimateRequest, estimate
from warmsim.sim.catalog import get_shape
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel

BASE = ["model=llama-2-7b", "gpu_profile=h100_analytic", "source=host_pinned", "prompt_tokens=1024"]


def _numbers(out: str) -> tuple[list[float], float]:
    vals = [(line, float(m.group(1))) for line in out.splitlines() if (m := re.search(r"([\d.]+) s$", line))]
    parts = [v for line, v in vals if "TTFT" not in line]
    total = [v for line, v in vals if "TTFT" in line][0]
    return parts, total


def _by_hand(cost, model: str, tp: int, source: str, prompt: int, memswitch="free_malloc", device=False,
             engine=False) -> list[float]:
    """The six phases written out from the cost model's primitives, independently of
    sim.startup: the node link carries all ``tp`` shards, each GPU's link one shard."""
    m = ServedModel(model, get_shape(model), tp)
    shard = m.shard_bytes
    bw = cost.link_bandwidth
    node_link, gpu_link = {"host_pinned": ("host_mem", "pcie_h2d_pinned"), "ssd": ("ssd_read", "pcie_h2d_pinned"),
                           "prewarmed": (None, None)}[source]
    transfer = 0.0 if node_link is None else max(tp * shard / bw(node_link), shard / bw(gpu_link))
    loaded = source != "prewarmed"
    if not loaded:
        memory = 0.0
    elif memswitch == "vmm_pool":
        memory = max(0.0, cost.vmm_map_s(shard) - transfer)
    else:
        memory = cost.alloc_s(shard)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (scaled-shape notes)
        prefill = cost.prefill_s(m, prompt, 1)
        init = 0.0 if engine else cost.engine_init_s(m)
    return [0.0 if device else cost.process_start_s(), memory, transfer,
            cost.load_overhead_s(source, shard) if loaded else 0.0, init, prefill]


@pytest.mark.parametrize("extra,kw", [
    ([], {}),
    (["memswitch=vmm_pool"], {"memswitch": "vmm_pool"}),
    (["device_prewarmed=true", "engine_prewarmed=true"], {"device": True, "engine": True}),
    (["source=ssd", "tp=2"], {"source": "ssd", "tp": 2}),
    (["source=prewarmed"], {"source": "prewarmed"}),
])
def test_printed_breakdown_and_ttft_match_a_hand_computation(capsys, analytic_cost, extra, kw):
    # Not "the parts sum to the total" (the total is defined as that sum): every printed phase and
    # the TTFT against values computed here from the cost model's primitives.
    assert estimate_main(BASE + extra) == 0
    out = capsys.readouterr().out
    assert "profile h100_analytic: NOT measured" in out
    parts, total = _numbers(out)
    args = {"source": "host_pinned", "tp": 1, **kw}
    expect = _by_hand(analytic_cost, "llama-2-7b", args.pop("tp"), args.pop("source"), 1024, **args)
    assert parts == pytest.approx(expect, abs=1e-4)  # printed to 4 decimals
    assert total == pytest.approx(sum(expect), abs=1e-4)


def test_estimate_matches_cost_model(analytic_cost):
    e = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "host_pinned", 1024), analytic_cost)
    assert e.ttft_s == pytest.approx(sum(_by_hand(analytic_cost, "llama-2-7b", 1, "host_pinned", 1024)), rel=1e-9)
    assert e.startup.transfer_s == pytest.approx(e.model.shard_bytes / analytic_cost.link_bandwidth("pcie_h2d_pinned"),
                                                 rel=1e-6)
    warm = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "prewarmed", 1024, device_prewarmed=True,
                                    engine_prewarmed=True), analytic_cost)
    assert warm.ttft_s == pytest.approx(warm.prefill_s)
    assert warm.prefill_s == pytest.approx(analytic_cost.prefill_s(e.model, 1024, 1), rel=1e-12)


@pytest.mark.parametrize("args,msg", [
    (BASE + ["colour=blue"], "unknown key 'colour'"),
    (BASE[:3], "missing prompt_tokens="),
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
