"""ProfileCostModel on the shipped analytic profile: sane numbers, checked against the analytic
parameters that generated it."""

from __future__ import annotations

import warnings

import pytest

from warmsim.calibrate.analytic import AnalyticDevice, H100Params
from warmsim.sim.catalog import get_shape
from warmsim.sim.cost import LINKS, SOURCES, CostModel, DecodeCoeffs, Interference
from warmsim.sim.costmodel import ProfileCostModel
from warmsim.sim.costprofile.assumptions import Assumptions
from warmsim.sim.costprofile.compute import ScalingWarning
from warmsim.sim.costprofile.shapes import shard_dims
from warmsim.sim.costprofile.shipped import known_profiles, resolve
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel

P = H100Params()
A = Assumptions()


def served(name: str, tp: int = 1) -> ServedModel:
    return ServedModel(name, get_shape(name), tp)


def test_shipped_and_labelled(analytic_cost):
    assert "h100_analytic" in known_profiles()
    assert isinstance(analytic_cost, CostModel)
    assert analytic_cost.name == "h100_analytic" and analytic_cost.measured is False
    assert "NOT MEASURED" in analytic_cost.fitted.meta["label"]


def test_prefill_7b_1024(analytic_cost):
    m = served("llama-2-7b")
    got = analytic_cost.prefill_s(m, 1024, 1)
    dims = shard_dims(m.shape, 1)
    dev = AnalyticDevice(P)
    expect = m.shape.layers * dev.prefill_layer_s(dims, 1024, 1) + dev.head_step_s(dims, 1)
    assert got == pytest.approx(expect, rel=0.01)
    assert 0.01 < got < 0.1  # tens of ms
    flops_bound = 2 * m.shape.params * 1024 / (P.peak_flops * P.prefill_mfu)
    assert got >= 0.9 * flops_bound


def test_decode_step_is_weights_over_hbm(analytic_cost):
    m = served("llama-2-7b")
    c = analytic_cost.decode_coeffs(m)
    assert isinstance(c, DecodeCoeffs)
    hbm = P.hbm_bytes_per_s * P.hbm_efficiency
    assert c.base_s == pytest.approx(m.weight_bytes / hbm, rel=0.15)
    kv_per_token = m.shape.kv_bytes_per_token
    assert c.per_ctx_token_s == pytest.approx(kv_per_token / hbm, rel=0.01)
    assert c.step_s(8, 8000) > c.step_s(1, 100)


def test_pinned_copy_of_7b(analytic_cost):
    bw = analytic_cost.link_bandwidth("pcie_h2d_pinned")
    assert bw == pytest.approx(P.h2d_pinned_bytes_per_s, rel=1e-6)
    # (was a restatement of the line above.) By hand: Llama-2-7B has 6,738,415,616 parameters, 2 B
    # each = 13,476,831,232 B, rounded up to 2 MiB = 13,478,395,904 B; over 50 GB/s pinned PCIe that
    # is 0.269568 s.
    assert served("llama-2-7b").shard_bytes / bw == pytest.approx(13_478_395_904 / 50e9, rel=1e-9)
    assert analytic_cost.link_bandwidth("pcie_h2d_pageable") == pytest.approx(P.h2d_pageable_bytes_per_s)
    assert analytic_cost.link_bandwidth("ssd_read") == pytest.approx(P.nvme_bytes_per_s)
    assert analytic_cost.link_bandwidth("host_mem") == pytest.approx(P.host_mem_bytes_per_s)
    assert analytic_cost.link_bandwidth("nvlink") == A.nvlink_bytes_per_s
    assert analytic_cost.link_bandwidth("nic") == A.nic_bytes_per_s
    for link in LINKS:
        assert analytic_cost.link_bandwidth(link) > 0
    with pytest.raises(UserError, match="unknown link"):
        analytic_cost.link_bandwidth("carrier_pigeon")


def test_memory_costs(analytic_cost):
    n = served("llama-2-7b").shard_bytes
    chunks = n // (2 << 20)
    assert analytic_cost.vmm_map_s(n) == pytest.approx(chunks * (P.vmm_map_s + P.vmm_set_access_s), rel=0.01)
    assert analytic_cost.vmm_unmap_s(n) == pytest.approx(chunks * P.vmm_unmap_s, rel=0.01)
    calls = -(-n // int(A.mean_tensor_bytes))
    assert analytic_cost.alloc_s(n) == pytest.approx(calls * P.malloc_call_s + n / 2**30 * P.malloc_s_per_gib,
                                                     rel=0.01)
    assert analytic_cost.free_s(n) > 0 and analytic_cost.alloc_s(0) == 0


def test_start_costs(analytic_cost):
    m = served("llama-2-7b")
    assert analytic_cost.process_start_s() == pytest.approx(
        P.python_start_s + P.import_torch_s + P.cuda_context_s + P.first_gemm_s)
    assert analytic_cost.stage_s("engine_process", m) == A.engine_import_s
    assert analytic_cost.stage_s("engine_prepare", m) == pytest.approx(A.engine_config_s + A.tokenizer_s
                                                                       + A.worker_handoff_s)
    assert analytic_cost.stage_s("engine_init", m) == pytest.approx(A.model_init_s + A.kv_setup_s + A.api_server_s)
    assert analytic_cost.stage_s("tp_comm", m) == A.tp1_group_init_s
    assert analytic_cost.stage_s("tp_comm", served("llama-2-70b", 4)) == A.tp_comm_init_s
    graphs = A.engine_cuda_graphs * (A.engine_graph_overhead_s + analytic_cost.decode_coeffs(m).step_s(1, 0))
    assert analytic_cost.stage_s("cuda_graphs", m) == pytest.approx(graphs) and graphs > 0
    with pytest.raises(KeyError):
        analytic_cost.stage_s("coffee", m)
    assert analytic_cost.load_overhead_s("prewarmed", 10**9) == 0.0
    assert analytic_cost.load_overhead_s("ssd", 10**9) == pytest.approx(P.file_open_s, rel=0.01)
    assert 0 < analytic_cost.load_overhead_s("host_pinned", m.shard_bytes) < 0.1
    with pytest.raises(UserError):
        analytic_cost.load_overhead_s("floppy", 1)
    i = analytic_cost.interference()
    assert isinstance(i, Interference)
    assert i.compute_slowdown == pytest.approx(P.compute_slowdown) and i.copy_slowdown == pytest.approx(P.copy_slowdown)


def test_tensor_parallel_adds_allreduce(analytic_cost):
    """70B at TP 4: per-shard compute + 2 all-reduces per layer."""
    m = served("llama-2-70b", 4)
    t = analytic_cost.prefill_s(m, 1024, 1)
    dims = shard_dims(m.shape, 4)
    dev = AnalyticDevice(P)
    compute = m.shape.layers * dev.prefill_layer_s(dims, 1024, 1) + dev.head_step_s(dims, 1)
    ar = 2 * m.shape.layers * (A.allreduce_latency_s + 2 * 3 / 4 * 1024 * m.shape.hidden * 2 / A.nvlink_bytes_per_s)
    assert t == pytest.approx(compute + ar, rel=0.01)
    assert analytic_cost.prefill_s(served("llama-2-70b", 8), 1024, 1) < t


def test_unmeasured_shape_is_scaled_and_says_so(analytic_cost):
    m = served("llama-3-8b", 2)
    with pytest.warns(ScalingWarning, match="scaled from the profile's shard"):
        fresh = ProfileCostModel(analytic_cost.fitted)
        t = fresh.prefill_s(m, 1024, 1)
    ref = analytic_cost.prefill_s(served("llama-3-8b", 1), 1024, 1)
    assert 0.3 * ref < t < 0.8 * ref


def test_batched_prefill_and_determinism(analytic_cost):
    m = served("llama-2-7b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = [analytic_cost.prefill_s(m, 2048, s) for s in (1, 2, 4, 8, 64)]
        b = [analytic_cost.prefill_s(m, 2048, s) for s in (1, 2, 4, 8, 64)]
    assert a == b
    assert all(x > 0 for x in a)
    assert a[-1] <= a[0]  # same tokens in more sequences: less attention


def test_resolver():
    assert resolve("h100_analytic").is_dir()
    assert resolve(str(resolve("h100_analytic"))) == resolve("h100_analytic")
    with pytest.raises(UserError, match="h100_analytic"):
        resolve("no_such_gpu")


# ---- fitted once: the in-process memo and the on-disk cache (sim/costprofile/cache.py) ---------------

def _isolated_cache(monkeypatch, where):
    """The on-disk cache in ``where`` and an empty in-process memo, for this test only."""
    from warmsim.sim.costprofile import cache
    monkeypatch.setenv(cache.CACHE_ENV, str(where))
    monkeypatch.setattr(cache, "_memo", {})
    return cache


def _costs(cost: ProfileCostModel) -> list[float]:
    """Many of a cost model's answers, to compare two models bit for bit."""
    out: list[float] = [cost.process_start_s(), cost.pipeline_hop_s(), cost.interference().compute_slowdown]
    for name, tp in (("llama-2-7b", 1), ("llama-2-13b", 2), ("llama-2-70b", 4)):
        m = served(name, tp)
        out += [cost.prefill_s(m, t, s) for t in (1, 100, 1024, 4000) for s in (1, 3, 16)]
        out += list(cost.decode_coeffs(m).__dict__.values())
        out += [cost.stage_s(st, m) for st in ("engine_process", "engine_prepare", "tp_comm", "engine_init",
                                               "cuda_graphs", "engine_wake")]
    for n in (2 << 20, 1 << 30, 13 << 30):
        out += [cost.alloc_s(n), cost.free_s(n), cost.vmm_map_s(n), cost.vmm_unmap_s(n), cost.vmm_alloc_s(n)]
        out += [cost.load_overhead_s(src, n) for src in SOURCES]
    out += [cost.link_bandwidth(link) for link in LINKS]
    return out


@pytest.mark.parametrize("name", ["h100_reference", "h100_analytic"])
def test_a_fit_from_the_cache_is_bit_identical_to_a_fresh_one(monkeypatch, tmp_path, name):
    import pickle

    from warmsim.sim.costprofile.fit import fit_profile
    from warmsim.sim.costprofile.profile import load_profile
    cache = _isolated_cache(monkeypatch, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = fit_profile(load_profile(resolve(name)))  # no cache involved
        first = ProfileCostModel.load(name)  # fitted now, stored on disk
        assert list((tmp_path / "fits").glob("*.pickle")), "the fit was not stored"
        cache.clear_memo()
        from_disk = ProfileCostModel.load(name)  # read back from disk
        memo = ProfileCostModel.load(name)  # the in-process memo
        assert from_disk.fitted is not first.fitted and memo.fitted is from_disk.fitted
        assert from_disk.fitted == fresh and pickle.dumps(from_disk.fitted) == pickle.dumps(fresh)
        assert _costs(from_disk) == _costs(ProfileCostModel(fresh)) == _costs(first)


def test_a_corrupt_or_stale_entry_is_refitted_never_trusted(monkeypatch, tmp_path):
    cache = _isolated_cache(monkeypatch, tmp_path)
    good = ProfileCostModel.load("h100_analytic").fitted
    other = ProfileCostModel.load("h100_reference").fitted
    key = cache.profile_key(resolve("h100_analytic"))
    entry = tmp_path / "fits" / f"{key}.pickle"
    for bad in (b"", b"not a pickle", entry.read_bytes()[:100]):  # empty, foreign, truncated
        entry.write_bytes(bad)
        cache.clear_memo()
        assert ProfileCostModel.load("h100_analytic").fitted == good
        assert cache._read(entry, key) is not None  # rewritten whole
    # an entry of another profile (or written by older fitting code) filed under this key: refitted
    stale = cache._Entry("0" * 64, other, ())
    entry.write_bytes(__import__("pickle").dumps(stale))
    cache.clear_memo()
    assert ProfileCostModel.load("h100_analytic").fitted == good


def test_the_key_follows_the_profiles_content(monkeypatch, tmp_path):
    import shutil
    cache = _isolated_cache(monkeypatch, tmp_path / "cache")
    d = tmp_path / "prof"
    shutil.copytree(resolve("h100_reference"), d)
    before = cache.profile_key(d)
    assert before == cache.profile_key(resolve("h100_reference"))  # the content, not the path
    a = ProfileCostModel.load(d).fitted
    rows = (d / "disk.csv").read_text().splitlines()
    rows[1] = rows[1].replace("0.13772327314285715", "0.2")  # one cold disk read slower
    (d / "disk.csv").write_text("\n".join(rows) + "\n")
    assert cache.profile_key(d) != before
    b = ProfileCostModel.load(d).fitted
    assert b.disk_cold.fit.points[0][-1] == 0.2 and b.disk_cold != a.disk_cold  # refitted, not the old entry


def test_the_fits_warnings_are_raised_again_from_the_cache(monkeypatch, tmp_path):
    import json
    import shutil
    cache = _isolated_cache(monkeypatch, tmp_path / "cache")
    d = tmp_path / "prof"
    shutil.copytree(resolve("h100_reference"), d)
    meta = json.loads((d / "meta.json").read_text())
    meta["host"]["scratch_fs"] = "tmpfs"  # the disk table then measured memory: the fit warns
    (d / "meta.json").write_text(json.dumps(meta))
    for _ in range(2):
        with pytest.warns(UserWarning, match="scratch directory was on tmpfs"):
            ProfileCostModel.load(d)  # fitted, then from the memo
        cache.clear_memo()
    with pytest.warns(UserWarning, match="scratch directory was on tmpfs"):
        ProfileCostModel.load(d)  # from disk


def test_where_the_cache_lives(monkeypatch, tmp_path):
    from warmsim.sim.costprofile import cache
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "warmsim"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "warmsim"
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


def test_an_unwritable_cache_costs_only_the_refit(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache directory should be
    _isolated_cache(monkeypatch, blocked)
    assert ProfileCostModel.load("h100_analytic").name == "h100_analytic"


def test_the_old_import_still_works():
    """docs/calibration.md showed ``warmsim.calibrate.costmodel`` before the model moved to sim/."""
    from warmsim.calibrate.costmodel import ProfileCostModel as Old
    assert Old is ProfileCostModel
