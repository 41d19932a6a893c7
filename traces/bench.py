"""Timings of the trace layer, for ``warmsim bench``: loading every family and building workloads."""

from __future__ import annotations

import time

from warmsim.traces import registry
from warmsim.traces.builders import build_workload


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run() -> dict[str, float]:
    """Seconds taken by each step (loads are uncached, so each includes reading the files)."""
    out: dict[str, float] = {}
    for name in registry.trace_names():
        spec = registry.resolve(name)
        loader = {"requests": registry.load_requests_file, "counts": registry.load_counts,
                  "rates": registry.load_rates}[spec.kind]
        out[f"load_{name}_s"] = _timed(lambda spec=spec, loader=loader: loader(spec))
    out["load_all_s"] = sum(out.values())
    out["build_mapped_azure_conv_4_models_s"] = _timed(
        lambda: build_workload({"kind": "mapped"}, [f"m{i}" for i in range(4)], seed=0))
    out["build_warmserve_conv_4_models_s"] = _timed(
        lambda: build_workload({"kind": "warmserve", "rps": 10}, [f"m{i}" for i in range(4)], seed=0))
    out["build_servegen_day_64_models_100rps_s"] = _timed(
        lambda: build_workload({"kind": "servegen", "source": "clients", "duration_s": 86400.0, "total_rate": 100.0},
                               [f"m{i}" for i in range(64)], seed=0))
    return out


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k:45s} {v:8.3f}")
