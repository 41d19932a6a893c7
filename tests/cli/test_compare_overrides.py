"""Per-system overrides in ``warmsim compare`` (issue 14): ``overrides.<system>.<key>=value``, checked
against that system's config, and each system's resolved config in ``systems/<name>.yaml``."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml

from tests.exe import warmsim_exe

TINY = ["cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=60", "workload.total_rate=1",
        "workload.tokens_from=null", "workload.prompt_tokens=200", "workload.output_tokens=20"]


def warmsim(*args, cwd):
    return subprocess.run([warmsim_exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_per_system_override_reaches_only_its_system_and_is_recorded(tmp_path):
    out, base = tmp_path / "r", tmp_path / "base"
    p = warmsim("compare", *TINY, "systems=[static,muxserve]", "overrides.muxserve.initial.max_gpus=1",
                "overrides.static.sizing.headroom=2.0", "overrides.static.router.max_inflight=1",
                f"hydra.run.dir={out}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert warmsim("compare", *TINY, "systems=[static,muxserve]", f"hydra.run.dir={base}", cwd=tmp_path).returncode == 0
    mux = yaml.safe_load((out / "systems" / "muxserve.yaml").read_text())
    static = yaml.safe_load((out / "systems" / "static.yaml").read_text())
    assert mux["initial"]["max_gpus"] == 1 and mux["name"] == "muxserve"
    assert static["sizing"]["headroom"] == 2.0 and "max_gpus" not in static["initial"]
    marker = (out / "COMPLETE").read_text()
    assert "systems/muxserve.yaml" in marker
    # ... and the runs did what the overrides say: MuxServe on 1 GPU (its mesh is both GPUs, TP2, without),
    req, req0 = pd.read_parquet(out / "requests.parquet"), pd.read_parquet(base / "requests.parquet")
    assert set(req0[req0.system == "muxserve"].gpus) == {"0,1"} and set(req[req.system == "muxserve"].gpus) == {"0"}
    # static's router admits one request at a time: none starts before the one before it has finished
    st = req[req.system == "static"].sort_values("first_token_s")
    assert (st.first_token_s.to_numpy()[1:] >= st.finish_s.to_numpy()[:-1]).all()
    st0 = req0[req0.system == "static"].sort_values("first_token_s")
    assert (st0.first_token_s.to_numpy()[1:] < st0.finish_s.to_numpy()[:-1]).any()  # without it, they overlap


@pytest.mark.parametrize("override,needle", [
    ("overrides.muxserve.initial.nope=1", "MuxServeMeshPlacer"),      # a policy argument: its constructor
    ("overrides.muxserve.nope.deeper=1", "system 'muxserve' has no key 'nope.deeper'"),
    ("overrides.sllm.visible_nodes=1", "'sllm' is not run here"),
    ("system.initial.max_gpus=1", "overrides.<system>.initial.max_gpus"),  # the old trap, now with the way out
])
def test_bad_per_system_overrides_are_one_line(tmp_path, override, needle):
    p = warmsim("compare", *TINY, "systems=[static,muxserve]", override, f"hydra.run.dir={tmp_path / 'r'}",
                cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.count("\n") == 1 and needle in p.stderr, p.stderr
