"""Small hand-made result tables with the documented columns (summary.csv, requests.parquet,
timeline.parquet, predictions.csv) for the figure tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

SYSTEMS = ["static", "sllm", "muxserve", "warmserve"]
MODELS = ["m-a", "m-b"]


def summary(systems=SYSTEMS, rps: float | None = None, scale: float = 1.0) -> pd.DataFrame:
    """One row per (system, model) plus ALL, with latency growing with ``scale``."""
    rows = []
    for i, s in enumerate(systems):
        for j, m in enumerate(MODELS + ["ALL"]):
            p99 = 0.05 * (i + 1) * (j + 1) * scale * (100 if s == "sllm" else 1)
            rows.append({"system": s, "model": m, "requests": 100, "completed": 100, "dropped": 0,
                         "ttft_p50_s": p99 / 4, "ttft_p90_s": p99 / 2, "ttft_p95_s": p99 / 1.5, "ttft_p99_s": p99,
                         "ttft_mean_s": p99 / 3, "tpot_mean_s": 0.01, "slo_attainment": max(0.0, 1 - 0.002 * i * scale),
                         "ttft_under_fast": 1 - 0.1 * i, "throughput_rps": 1.0,
                         "mean_gpus_busy": 4.0 + i if m == "ALL" else np.nan,
                         "gpu_hours": (4.0 + i) / 3 if m == "ALL" else np.nan,
                         "pred_acc_avg": 0.9, "pred_acc_peak": 0.8,
                         "start_hit_ratio": np.nan if s in ("static", "muxserve") else 1 - 0.2 * i,
                         "start_requests": 0 if s in ("static", "muxserve") else 10 * (i + 1),
                         "start_ttft_p99_s": np.nan if s in ("static", "muxserve") else 2 * p99,
                         "start_ttft_fast": np.nan if s in ("static", "muxserve") else 0.5 - 0.1 * i})
    df = pd.DataFrame(rows)
    if rps is not None:
        df["rps"] = rps
    return df


def requests(systems=SYSTEMS, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """``n`` requests per system with log-normal TTFTs; sllm drops a few."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, s in enumerate(systems):
        ttft = rng.lognormal(np.log(0.03 * (i + 1)), 0.8, n)
        status = np.array(["completed"] * n, dtype=object)
        if s == "sllm":
            status[:5] = "dropped"
            ttft[:5] = np.nan
        parts.append(pd.DataFrame({"system": s, "request": np.arange(n), "model": rng.choice(MODELS, n),
                                   "arrival_s": np.sort(rng.uniform(0, 60, n)), "ttft_s": ttft,
                                   "status": pd.Categorical(status, ["completed", "pending", "dropped"])}))
    return pd.concat(parts, ignore_index=True)


def timeline(system: str = "warmserve") -> pd.DataFrame:
    """Two GPUs: an instance of m-a on GPU 0, a prewarmed replica of m-b on GPU 1 that is activated."""
    G = 2**30
    ev = [  # time, kind, id, model, gpus, state
        (0.0, "instance", 1, "m-a", "0", "starting"), (1.0, "instance", 1, "m-a", "0", "active"),
        (50.0, "instance", 1, "m-a", "0", "draining"), (51.0, "instance", 1, "m-a", "0", "stopped"),
        (0.0, "replica", 2, "m-b", "1", "loading"), (2.0, "replica", 2, "m-b", "1", "ready"),
        (30.0, "replica", 2, "m-b", "1", "activated"), (30.0, "instance", 3, "m-b", "1", "starting"),
        (30.0, "instance", 3, "m-b", "1", "active"), (40.0, "replica", 4, "m-a", "0,1", "loading"),
        (45.0, "replica", 4, "m-a", "0,1", "evicted"),
    ]
    rows = [{"system": system, "time_s": t, "kind": k, "id": float(i), "model": m, "gpus": g, "state": st,
             "detail": "", "gpu": np.nan, "used_bytes": np.nan, "prewarm_bytes": np.nan, "kv_bytes": np.nan}
            for t, k, i, m, g, st in ev]
    mem = [(0.0, 0, 40 * G, 0, 27 * G), (0.0, 1, 13 * G, 13 * G, 0), (30.0, 1, 60 * G, 0, 47 * G),
           (51.0, 0, 13 * G, 13 * G, 0), (60.0, 1, 50 * G, 0, 37 * G)]
    rows += [{"system": system, "time_s": t, "kind": "memory", "id": np.nan, "model": None, "gpus": None,
              "state": None, "detail": None, "gpu": float(g), "used_bytes": float(u), "prewarm_bytes": float(p),
              "kv_bytes": float(kv)} for t, g, u, p, kv in mem]
    return pd.DataFrame(rows).sort_values("time_s", kind="stable").reset_index(drop=True)


def predictions(system: str = "warmserve", windows: int = 4) -> pd.DataFrame:
    """Predicted and observed load per model and window."""
    rows = []
    for m_i, m in enumerate(MODELS):
        for w in range(windows):
            obs = 5.0 + m_i + w
            rows.append({"system": system, "model": m, "window": w, "pred_avg": obs * 1.1, "pred_peak": obs * 2.2,
                         "obs_avg": obs, "obs_peak": obs * 2})
    return pd.DataFrame(rows)
