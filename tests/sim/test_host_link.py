"""Which links a weight load crosses, by hand: a load from pinned (or pageable) host memory crosses
the node's host-memory link as well as the GPU's PCIe link, so a slow host-memory link sets the
load time; TP shards share the node's link and each has its own PCIe link.

Cold starts here cost nothing but the transfer (no process start, engine init, load overhead or
prefill), so a request's first token comes exactly when the weights are in. Llama-2-7B: TP1 shard
13,478,395,904 B; TP2 shard 6,740,246,528 B (half the weights, 6,738,415,616 B, rounded up to 2 MiB).
"""

import pytest

from tests.sim.helpers import GIB, cost, model, ondemand, workload
from warmsim.sim.cluster import ClusterSpec
from warmsim.sim.simulation import Simulation

REL = 1e-9
SHARD1 = 13_478_395_904
SHARD2 = 6_740_246_528


def test_shard_sizes_by_hand():
    assert model().shard_bytes == SHARD1 and model(tp=2).shard_bytes == SHARD2


def spec(host_mem_bw, pcie=10e9, pageable=2.5e9, ssd=10e9, gpus=2):
    return ClusterSpec(nodes=1, gpus_per_node=gpus, gpu_hbm_bytes=80 * GIB, memory_fraction=0.9,
                       pcie_pinned_bw=pcie, pcie_pageable_bw=pageable, host_mem_bw=host_mem_bw, ssd_bw=ssd,
                       nic_bw=10e9, nvlink_bw=300e9)


def first_tokens(source, host_mem_bw, tp=1, n_models=1, **kw):
    models = {m: model(m, tp=tp) for m in "ab"[:n_models]}
    w = workload([0.0] * n_models, [10] * n_models, [1] * n_models, models=tuple(models),
                 model_idx=list(range(n_models)))
    c = cost(process_start=0.0, engine_init=0.0, prefill_base_s=0.0, load_overhead=0.0)
    s = Simulation(w, models, spec(host_mem_bw, **kw), c, ondemand(source=source))
    return s.run().requests_table().first_token_s.tolist()


def test_pinned_load_is_set_by_a_slow_host_memory_link():
    # host memory 1 GB/s < PCIe 10 GB/s: 13,478,395,904 B / 1e9 = 13.478 s (not 1.348 s over PCIe).
    assert first_tokens("host_pinned", 1e9) == pytest.approx([SHARD1 / 1e9], rel=REL)


def test_pinned_load_is_set_by_pcie_when_host_memory_is_fast():
    assert first_tokens("host_pinned", 100e9) == pytest.approx([SHARD1 / 10e9], rel=REL)


def test_tp2_shards_share_the_host_memory_link():
    # Two shards of 6,740,246,528 B over one 1 GB/s host link: 0.5 GB/s each -> 13.480 s.
    assert first_tokens("host_pinned", 1e9, tp=2) == pytest.approx([2 * SHARD2 / 1e9], rel=REL)
    # With fast host memory each shard has its own 10 GB/s PCIe link: 0.674 s.
    assert first_tokens("host_pinned", 100e9, tp=2) == pytest.approx([SHARD2 / 10e9], rel=REL)


def test_two_models_loading_on_one_node_share_its_host_memory_link():
    # Two TP1 loads onto GPUs 0 and 1 at once: 0.5 GB/s each over a 1 GB/s host link -> 26.957 s.
    assert first_tokens("host_pinned", 1e9, n_models=2) == pytest.approx([2 * SHARD1 / 1e9] * 2, rel=REL)


def test_pageable_load_crosses_host_memory_and_is_capped_per_flow():
    # Pageable: a per-flow ceiling of 2.5 GB/s on PCIe, and the host-memory link as well.
    assert first_tokens("host_pageable", 100e9) == pytest.approx([SHARD1 / 2.5e9], rel=REL)
    assert first_tokens("host_pageable", 1e9) == pytest.approx([SHARD1 / 1e9], rel=REL)


def test_ssd_load_does_not_touch_host_memory():
    # From SSD (10 GB/s) onto PCIe: a slow host-memory link does not matter.
    assert first_tokens("ssd", 1e9, ssd=5e9) == pytest.approx([SHARD1 / 5e9], rel=REL)
