"""Synthetic arrivals for tests and what-ifs: Poisson or Gamma(CV) renewal processes per model.

Model j's rate is ``rates[j]`` or ``total_rate * (j+1)^-alpha / sum``. With ``diurnal_amplitude`` A
the rate is modulated as ``r * (1 + A sin(2 pi (t + diurnal_phase_s) / diurnal_period_s))``: a unit
renewal process is drawn in operational time and mapped back through the cumulative rate. Token
lengths are (prompt, output) pairs drawn from ``tokens_from``, or fixed when it is null.
History (optional): independent realisations of the same process, one per previous day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from warmsim.sim.errors import UserError
from warmsim.traces import registry
from warmsim.traces.assemble import CAP_DEFAULTS, cap_tokens, caps_from, finish, power_law_shares
from warmsim.traces.knobs import Knobs
from warmsim.traces.tokens import sample_pairs
from warmsim.traces.workload import Workload

DEFAULTS = {
    "process": "poisson",  # poisson | gamma: inter-arrival distribution
    "cv": 1.0,  # coefficient of variation of the gaps (gamma only; 1 = Poisson)
    "rates": None,  # list of per-model rates (req/s); null = split total_rate by alpha
    "total_rate": 10.0,  # total req/s over all models when rates is null
    "alpha": 1.0,  # popularity exponent for splitting total_rate
    "duration_s": 1200.0,  # workload length in seconds
    "diurnal_amplitude": 0.0,  # 0..1: relative amplitude of the sinusoidal rate modulation
    "diurnal_period_s": 86400.0,  # period of the modulation in seconds
    "diurnal_phase_s": 0.0,  # time shift of the modulation in seconds
    "tokens_from": "azure2023_conv",  # per-request trace to draw (prompt, output) pairs from; null = fixed
    "prompt_tokens": 512,  # fixed prompt length when tokens_from is null
    "output_tokens": 128,  # fixed output length when tokens_from is null
    "history_days": 0,  # number of history days (independent realisations of the same process)
    **CAP_DEFAULTS,
}


#: Most points of the grid that maps operational time back to real time (80 MB of float64): a diurnal
#: period far shorter than the workload would otherwise ask for terabytes.
MAX_GRID_POINTS = 10_000_000


def _cumulative(t: np.ndarray, amp: float, period: float, phase: float) -> np.ndarray:
    """Integral of ``1 + amp sin(2 pi (s + phase) / period)`` from 0 to t."""
    w = 2 * np.pi / period
    return t - amp / w * (np.cos(w * (t + phase)) - np.cos(w * phase))


def arrivals(rate: float, duration: float, cv: float, amp: float, period: float, phase: float,
             rng: np.random.Generator) -> np.ndarray:
    """Arrival times in ``[0, duration)`` of one modulated renewal process (gaps: Gamma, mean 1/rate)."""
    if rate <= 0:
        return np.empty(0)
    points = 4097 + 64 * duration / period  # 64 points per period follow the sine closely
    if points > MAX_GRID_POINTS:
        raise UserError(f"workload.diurnal_period_s: got {period:g}; a {duration:g} s workload then needs a grid of "
                        f"{points:.3g} points ({points * 8 / 2**30:.3g} GiB); allowed: at least "
                        f"{64 * duration / (MAX_GRID_POINTS - 4097):.3g} s (at most {MAX_GRID_POINTS:.0e} points)")
    grid = np.linspace(0.0, duration, 4097 + int(64 * duration / period))
    ops = rate * _cumulative(grid, amp, period, phase)
    total = ops[-1]
    shape = 1.0 / cv**2
    draw = int(total + 6 * np.sqrt(total * max(cv, 1) ** 2) + 16)
    gaps = rng.gamma(shape, 1.0 / shape, size=draw)
    u = np.cumsum(gaps)
    while u[-1] < total:
        more = np.cumsum(rng.gamma(shape, 1.0 / shape, size=draw)) + u[-1]
        u = np.concatenate([u, more])
    u = u[u < total]
    return np.interp(u, ops, grid)


def build(cfg: Mapping, models: Sequence[str], rng: np.random.Generator) -> Workload:
    """Build a synthetic workload (see the module docstring)."""
    k = Knobs(cfg, DEFAULTS)
    process = k.choice("process", ("poisson", "gamma"))
    cv = 1.0 if process == "poisson" else k.number("cv", lo=0, lo_open=True)
    n = len(models)
    rates = k.numbers("rates", n, optional=True)
    if rates is None:
        rates = list(k.number("total_rate", lo=0) * power_law_shares(n, k.number("alpha", lo=0)))
    duration = k.number("duration_s", lo=0, lo_open=True)
    amp = k.number("diurnal_amplitude", lo=0, hi=1)
    period = k.number("diurnal_period_s", lo=0, lo_open=True)
    phase = k.number("diurnal_phase_s")
    hist_days = k.integer("history_days", lo=0)
    max_p, min_o, max_o = caps_from(k)
    src = k.text("tokens_from", optional=True)
    tokens = registry.load_requests_file(registry.resolve(src)) if src else None
    fixed = (k.integer("prompt_tokens", lo=1), k.integer("output_tokens", lo=1))

    def lengths(m: int) -> tuple[np.ndarray, np.ndarray]:
        if tokens is None:
            return np.full(m, fixed[0]), np.full(m, fixed[1])
        return sample_pairs(tokens, m, rng)

    times, idx, prompts, outputs = [], [], [], []
    history: dict[str, list[np.ndarray]] = {}
    for j, name in enumerate(models):
        t = arrivals(rates[j], duration, cv, amp, period, phase, rng)
        p, o = lengths(t.shape[0])
        times.append(t)
        idx.append(np.full(t.shape[0], j))
        prompts.append(p)
        outputs.append(o)
        hist = []
        for _ in range(hist_days):
            ht = arrivals(rates[j], duration, cv, amp, period, phase, rng)
            _, ho = lengths(ht.shape[0])
            hist.append(np.column_stack([ht, np.clip(ho, min_o, max_o).astype(np.float64)]))
        history[name] = hist
    if not any(r > 0 for r in rates):
        raise UserError("workload.total_rate: all model rates are zero")
    prompt, output, stats = cap_tokens(np.concatenate(prompts), np.concatenate(outputs), max_p, min_o, max_o)
    meta = {"kind": "synthetic", "knobs": k.as_dict(), "rates": [float(r) for r in rates], "token_caps": stats,
            "dropped_rows": 0}
    return finish(np.concatenate(times), np.concatenate(idx), prompt, output, models, duration, history, meta)
