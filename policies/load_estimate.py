"""Load estimation from a workload: how many requests of each model are in flight, per window,
when each request occupies an estimated service time.

Used where a policy needs a load figure before the run (the static system's sizing from each
model's peak, a predictor's seasonal history and the oracle's truth): the experiment builder and
``experiments.predictor_inputs`` call these; the estimates are modelling, so they live with the
policies, and the builder only wires their results in.
"""

from __future__ import annotations

import numpy as np

from warmsim.policies.load_profile import inflight_windows
from warmsim.sim.cost import CostModel
from warmsim.sim.models import ServedModel


def service_estimate_s(model: ServedModel, cost: CostModel, prompt: np.ndarray, output: np.ndarray,
                       batch: int) -> np.ndarray:
    """Rough per-request service time (prefill + output x decode step at ``batch``), for load estimates."""
    mean_ctx = float(np.mean(prompt) + np.mean(output) / 2) if len(prompt) else 512.0
    step = cost.decode_coeffs(model).step_s(batch, int(batch * mean_ctx))
    prefill = cost.prefill_s(model, int(np.mean(prompt)) if len(prompt) else 512, 1)
    return prefill + output.astype(np.float64) * step


def inflight_estimate(model: ServedModel, cost: CostModel, arrival_s: np.ndarray, prompt: np.ndarray,
                      output: np.ndarray, max_batch: int, window_s: float, n_windows: int,
                      iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(avg, peak) in-flight load per window when each request occupies its estimated service time.

    The service time depends on the batch it runs in, which depends on the load: start from
    ``max_batch`` and re-estimate with the mean in-flight load (at most ``max_batch``) until it
    stops changing (a few fixed-point steps of Little's law)."""
    batch = max_batch
    for _ in range(iterations):
        svc = service_estimate_s(model, cost, prompt, output, batch)
        avg, peak = inflight_windows(arrival_s, svc, window_s, n_windows)
        busy = avg[avg > 0]
        nxt = int(min(max_batch, max(1, round(float(busy.mean()))))) if len(busy) else 1
        if nxt == batch:
            break
        batch = nxt
    return avg, peak


def peak_inflight(workload, models, cost, batch: int, window_s: float = 60.0) -> dict[str, float]:
    """Per model, the largest in-flight load of any ``window_s`` window of the workload (see
    :func:`inflight_estimate`)."""
    n_windows = max(1, int(np.ceil(workload.duration_s / window_s)))
    peaks = {}
    for j, name in enumerate(workload.models):
        idx = workload.model == j
        _, peak = inflight_estimate(models[name], cost, workload.arrival_s[idx], workload.prompt_tokens[idx],
                                    workload.output_tokens[idx], batch, window_s, n_windows)
        peaks[name] = float(peak.max())
    return peaks
