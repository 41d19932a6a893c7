"""warmsim estimate: breakdown sums to the total; bad input is a UserError."""

from __future__ import annotations

import re

import pytest

from calibrate.cli import estimate_main
from calibrate.estimate import EstimateRequest, estimate
from sim.errors import UserError

BASE = ["model=llama-2-7b", "gpu_profile=h100_analytic", "source=host_pinned", "prompt_tokens=1024"]


def _numbers(out: str) -> tuple[list[float], float]:
    vals = [(line, float(m.group(1))) for line in out.splitlines() if (m := re.search(r"([\d.]+) s$", line))]
    parts = [v for line, v in vals if "TTFT" not in line]
    total = [v for line, v in vals if "TTFT" in line][0]
    return parts, total


@pytest.mark.parametrize("extra", [[], ["memswitch=vmm_pool"], ["device_prewarmed=true", "engine_prewarmed=true"],
                                   ["source=ssd", "tp=2"], ["source=prewarmed"]])
def test_breakdown_sums_to_total(capsys, extra):
    assert estimate_main(BASE + extra) == 0
    out = capsys.readouterr().out
    assert "profile h100_analytic: NOT measured" in out
    parts, total = _numbers(out)
    assert len(parts) == 6
    assert sum(parts) == pytest.approx(total, abs=1e-3)


def test_estimate_matches_cost_model(analytic_cost):
    e = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "host_pinned", 1024), analytic_cost)
    assert sum(s for _, s in e.parts()) == pytest.approx(e.ttft_s)
    assert e.startup.transfer_s == pytest.approx(e.model.shard_bytes / analytic_cost.link_bandwidth("pcie_h2d_pinned"),
                                                 rel=1e-6)
    warm = estimate(EstimateRequest("llama-2-7b", "h100_analytic", "prewarmed", 1024, device_prewarmed=True,
                                    engine_prewarmed=True), analytic_cost)
    assert warm.ttft_s == pytest.approx(warm.prefill_s)


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
