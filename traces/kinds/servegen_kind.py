"""ServeGen client series as an N-model workload.

* ``source: models``: the listed ServeGen models (default the 3 language models) are the served
  models, one to one (needs as many served models as listed);
* ``source: clients``: every (ServeGen model, client) series of the listed models is a stream; streams
  are ordered by their mean rate in the window (highest first) and mapped onto the N served models,
  ``contiguous`` (blocks of consecutive streams) or ``striped`` (stream i -> model i mod N).

Rates are scaled by one factor so that the mean total rate over the window is ``total_rate`` (null:
keep the recorded rates); the daily shape and the clients' relative rates are kept. Arrivals follow
ServeGen's per-window fitted Gamma/Weibull gaps (:func:`warmsim.traces.servegen.generate_arrivals`). Token
pairs come from ``tokens_from`` (ServeGen's language-model length PDFs are not shipped). History:
the same window on up to ``history_days`` previous days that exist in the series (same scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError
from warmsim.traces import registry, servegen
from warmsim.traces.assemble import CAP_DEFAULTS, cap_tokens, caps_from, finish
from warmsim.traces.knobs import Knobs
from warmsim.traces.tokens import sample_pairs
from warmsim.traces.workload import Workload

DAY_S = 86400.0

DEFAULTS = {
    "source": "models",  # models: ServeGen models -> served models 1:1; clients: client streams mapped onto N
    "servegen_models": ["m-large", "m-mid", "m-small"],  # ServeGen models to use (m-large, m-mid, m-small, deepseek-r1, mm-image)
    "mapping": "striped",  # clients only: contiguous | striped assignment of rate-ordered streams to models
    "total_rate": 20.0,  # mean total req/s over the window after scaling; null = recorded rates
    "start_s": 0.0,  # window start, seconds from the series start (00:00 of day 1)
    "duration_s": 3600.0,  # window length in seconds
    "history_days": 0,  # previous days of history (only days inside the series are used)
    "tokens_from": "azure2023_conv",  # per-request trace to draw (prompt, output) pairs from
    **CAP_DEFAULTS,
}


def _stream_table(names: list[str]) -> pd.DataFrame:
    """All client rows of the listed ServeGen models with a ``stream`` id (model name, client)."""
    parts = []
    for m in names:
        spec = registry.resolve(f"servegen_{m}") if not m.startswith("servegen_") else registry.resolve(m)
        if spec.kind != "rates":
            raise UserError(f"workload.servegen_models: {m!r} is not a ServeGen model")
        t = registry.load_rates(spec)
        t.insert(0, "sg_model", spec.service)
        parts.append(t)
    windows = {p.attrs["window_s"] for p in parts}
    if len(windows) != 1:
        raise UserError(f"workload.servegen_models: models have different window lengths {sorted(windows)}")
    table = pd.concat(parts, ignore_index=True)
    table.attrs.update(window_s=windows.pop(), span_s=min(p.attrs["span_s"] for p in parts))
    return table


def _generate(rows: pd.DataFrame, stream_model: np.ndarray, scale: float, window_s: float, lo: float, hi: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t, idx = servegen.generate_arrivals(rows, scale, window_s, rng)
    keep = (t >= lo) & (t < hi)
    return t[keep] - lo, stream_model[rows["stream"].to_numpy()[idx[keep]]]


def build(cfg: Mapping, models: Sequence[str], rng: np.random.Generator) -> Workload:
    """Build a ServeGen workload (see the module docstring)."""
    k = Knobs(cfg, DEFAULTS)
    source = k.choice("source", ("models", "clients"))
    names = k.strings("servegen_models")
    mapping = k.choice("mapping", ("contiguous", "striped"))
    total_rate = k.number("total_rate", lo=0, lo_open=True, optional=True)
    start = k.number("start_s", lo=0)
    duration = k.number("duration_s", lo=0, lo_open=True)
    hist_days = k.integer("history_days", lo=0)
    max_p, min_o, max_o = caps_from(k)
    n = len(models)
    if source == "models" and len(names) != n:
        raise UserError(f"workload.servegen_models: source 'models' maps {len(names)} ServeGen models one to one, "
                        f"but {n} models are served; list {n} or use source: clients")
    table = _stream_table(names)
    window_s = table.attrs["window_s"]
    end = registry.check_window("servegen:" + ",".join(names), table.attrs["span_s"], start, duration)
    keys = table["sg_model"].astype(str) + "/" + table["client"].astype(str)
    codes, uniques = pd.factorize(keys)
    table["stream"] = codes
    rows = servegen.windows_in_range(table, start, end)
    ws = rows["window_start_s"].to_numpy()
    overlap = np.minimum(ws + window_s, end) - np.maximum(ws, start)
    stream_rate = np.bincount(rows["stream"].to_numpy(), weights=rows["rate"].to_numpy() * overlap,
                              minlength=len(uniques)) / duration
    if source == "models":
        sg_of_stream = pd.Series(uniques).str.split("/").str[0].to_numpy()
        stream_model = np.array([names.index(s) if s in names else [registry.resolve(f"servegen_{x}").service
                                 for x in names].index(s) for s in sg_of_stream])
    else:
        order = np.argsort(-stream_rate, kind="stable")
        pos = np.empty(len(uniques), dtype=np.int64)
        pos[order] = np.arange(len(uniques))
        if mapping == "striped":
            stream_model = pos % n
        else:
            stream_model = pos * n // len(uniques)
    recorded = float(stream_rate.sum())
    if recorded <= 0:
        raise UserError(f"workload.start_s: the ServeGen series have no requests in {start:g} .. {end:g} s")
    scale = 1.0 if total_rate is None else total_rate / recorded
    t, model = _generate(rows, stream_model, scale, window_s, start, end, rng)
    tokens = registry.load_requests_file(registry.resolve(k.text("tokens_from")))
    p, o = sample_pairs(tokens, t.shape[0], rng)
    p, o, stats = cap_tokens(p, o, max_p, min_o, max_o)
    history: dict[str, list[np.ndarray]] = {m: [] for m in models}
    days_used = [b for b in range(hist_days, 0, -1) if start - b * DAY_S >= 0]
    for back in days_used:
        lo = start - back * DAY_S
        hrows = servegen.windows_in_range(table, lo, lo + duration)
        ht, hm = _generate(hrows, stream_model, scale, window_s, lo, lo + duration, rng)
        _, ho = sample_pairs(tokens, ht.shape[0], rng)
        ho = np.clip(ho, min_o, max_o)
        order = np.argsort(ht, kind="stable")
        ht, hm, ho = ht[order], hm[order], ho[order]
        for j, m in enumerate(models):
            sel = hm == j
            history[m].append(np.column_stack([ht[sel], ho[sel].astype(np.float64)]))
    meta = {"kind": "servegen", "knobs": k.as_dict(), "rate_scale": scale, "recorded_mean_rate": recorded,
            "streams": int(len(uniques)), "streams_per_model": np.bincount(stream_model, minlength=n).tolist(),
            "history_days_used": len(days_used), "token_caps": stats, "dropped_rows": 0}
    return finish(t, model, p, o, models, duration, history, meta)
