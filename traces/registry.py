"""Trace names -> files and loaders; one entry point for any trace name or user file.

Three kinds of trace:

* ``requests``: per-request logs (Azure 2023, Mooncake, user CSV/JSONL files);
* ``counts``: request counts per 10 s bin (Azure 2024 week); requests are generated for a window;
* ``rates``: ServeGen per-client rate series; requests are generated for a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError
from warmsim.traces import azure, mooncake, servegen
from warmsim.traces.tokens import sample_pairs

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class TraceSpec:
    """A named trace (or a user file).

    Attributes:
        name: registry name, or the path for user files.
        kind: ``requests``, ``counts`` or ``rates``.
        path: the file (or, for ServeGen, the model's folder).
        service: model / service name given to its requests.
        tokens_from: for ``counts``/``rates``: the registry name whose token lengths are sampled.
        description: one line for listings.
    """

    name: str
    kind: str
    path: Path
    service: str
    tokens_from: str | None = None
    description: str = ""


def _builtin() -> dict[str, TraceSpec]:
    az3, az4, mc, sg = (DATA_DIR / d for d in ("azure2023", "azure2024", "mooncake", "servegen"))
    specs = [
        TraceSpec("azure2023_code", "requests", az3 / "AzureLLMInferenceTrace_code.csv.gz", "code",
                  description="Azure LLM 2023 coding service, per request, ~57 min, 8,819 requests"),
        TraceSpec("azure2023_conv", "requests", az3 / "AzureLLMInferenceTrace_conv.csv.gz", "conv",
                  description="Azure LLM 2023 conversation service, per request, ~58 min, 19,366 requests"),
        TraceSpec("azure2024_code", "counts", az4 / "invocations_ten_second_Coding.csv.gz", "code",
                  tokens_from="azure2023_code",
                  description="Azure LLM 2024 coding, 10 s counts, 1 week from Fri 2024-05-10 UTC, 16.8 M requests"),
        TraceSpec("azure2024_conv", "counts", az4 / "invocations_ten_second_Conversation.csv.gz", "conv",
                  tokens_from="azure2023_conv",
                  description="Azure LLM 2024 conversation, 10 s counts, 1 week from Sun 2024-05-12 UTC, 27.3 M requests"),
        TraceSpec("mooncake_conv", "requests", mc / "conversation_trace.jsonl.gz", "mooncake_conv",
                  description="Mooncake FAST'25 conversation, per request with hash_ids, ~59 min, 12,031 requests"),
        TraceSpec("mooncake_synthetic", "requests", mc / "synthetic_trace.jsonl.gz", "mooncake_synthetic",
                  description="Mooncake FAST'25 synthetic (Poisson arrivals), ~17 min, 3,993 requests"),
    ]
    for cat, model, days in (("language", "m-large", 14), ("language", "m-mid", 14), ("language", "m-small", 14),
                             ("reason", "deepseek-r1", 1), ("multimodal", "mm-image", 1)):
        specs.append(TraceSpec(f"servegen_{model}", "rates", sg / cat / model, model, tokens_from="azure2023_conv",
                               description=f"ServeGen {cat}/{model}: per-client rates per 600 s, {days} day(s)"))
    return {s.name: s for s in specs}


def trace_names() -> list[str]:
    """Names of the built-in traces."""
    return list(_builtin())


def resolve(name_or_path: str | Path) -> TraceSpec:
    """The :class:`TraceSpec` of a registry name or a user file (CSV Azure-2023 style, or JSONL)."""
    specs = _builtin()
    key = str(name_or_path)
    if key in specs:
        return specs[key]
    path = Path(key)
    if path.exists():
        name = path.name
        if path.is_dir():
            return TraceSpec(key, "rates", path, path.name, tokens_from="azure2023_conv", description="ServeGen-style folder")
        if name.endswith((".jsonl", ".jsonl.gz")):
            return TraceSpec(key, "requests", path, azure._stem(path), description="user JSONL (Mooncake style)")
        if name.endswith((".csv", ".csv.gz")):
            return TraceSpec(key, "requests", path, azure._stem(path), description="user CSV (Azure 2023 columns)")
        raise UserError(f"{name}: unknown trace file type; want .csv[.gz] (Azure 2023 columns) or .jsonl[.gz] (Mooncake)")
    raise UserError(f"trace {key!r}: unknown trace name and no such file; known names: {', '.join(specs)}")


def load_requests_file(spec: TraceSpec, *, sort: bool = False) -> pd.DataFrame:
    """Load a ``requests``-kind trace (the whole file)."""
    if spec.kind != "requests":
        raise UserError(f"trace {spec.name!r}: is a {spec.kind} trace, not a per-request log")
    if spec.path.name.endswith((".jsonl", ".jsonl.gz")):
        return mooncake.load_mooncake(spec.path, model=spec.service, sort=sort)
    return azure.load_azure2023(spec.path, model=spec.service, sort=sort)


def load_counts(spec: TraceSpec) -> pd.DataFrame:
    """Load a ``counts``-kind trace (10 s bins)."""
    return azure.load_azure2024_counts(spec.path)


def load_rates(spec: TraceSpec) -> pd.DataFrame:
    """Load a ``rates``-kind trace (ServeGen clients)."""
    return servegen.load_servegen(spec.path)


def requests_span(df: pd.DataFrame) -> float:
    """The span of a loaded per-request trace (just past its last arrival; 0 when empty)."""
    return float(df["arrival_s"].iloc[-1]) + 1e-9 if len(df) else 0.0


def requests_window(df: pd.DataFrame, name: str, start_s: float, duration_s: float | None) -> pd.DataFrame:
    """The window ``[start_s, start_s + duration_s)`` of a loaded per-request trace (checked)."""
    end = check_window(name, requests_span(df), start_s, duration_s)
    t = df["arrival_s"].to_numpy()
    out = df.loc[(t >= start_s) & (t < end)].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


def check_window(name: str, span_s: float, start_s: float, duration_s: float | None) -> float:
    """Validate a window ``[start_s, start_s + duration_s)`` against a trace span; return its end."""
    if start_s < 0 or start_s >= span_s:
        raise UserError(f"trace {name!r}: window start {start_s:g} s is outside the trace (0 .. {span_s:g} s)")
    end = span_s if duration_s is None else start_s + duration_s
    if duration_s is not None and duration_s <= 0:
        raise UserError(f"trace {name!r}: window duration must be > 0, got {duration_s:g}")
    if end > span_s + 1e-9:
        raise UserError(f"trace {name!r}: window {start_s:g} .. {end:g} s ends after the trace ({span_s:g} s)")
    return end


def load_trace(
    name_or_path: str | Path,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    seed: int | np.random.Generator = 0,
    sort: bool = False,
    full: bool = False,
) -> pd.DataFrame:
    """The canonical request table of any trace, for a window.

    Args:
        name_or_path: a registry name (see :func:`trace_names`) or a user file.
        start_s: window start, seconds from the trace start.
        duration_s: window length; None = to the end of the trace. For count and rate traces a
            window is required unless ``full`` (a whole Azure 2024 week is 17-27 M requests).
        seed: seed or generator for traces whose requests are generated (counts, rates).
        sort: sort a per-request file by time instead of raising on backward timestamps.
        full: allow generating a whole count/rate trace.

    Returns:
        DataFrame ``arrival_s`` (from the trace start), ``model``, ``prompt_tokens``, ``output_tokens``
        plus source extras (``hash_ids`` for Mooncake, ``client`` for ServeGen), sorted by arrival.
    """
    spec = resolve(name_or_path)
    rng = np.random.default_rng(seed)
    if spec.kind == "requests":
        return requests_window(load_requests_file(spec, sort=sort), spec.name, start_s, duration_s)
    if duration_s is None and not full:
        raise UserError(
            f"trace {spec.name!r}: is a {spec.kind} trace; give a window (duration_s / --duration) "
            "or full=True to generate all of it"
        )
    tokens = load_requests_file(resolve(spec.tokens_from))
    if spec.kind == "counts":
        counts = load_counts(spec)
        end = check_window(spec.name, counts.attrs["span_s"], start_s, duration_s)
        df = azure.requests_from_counts(counts, start_s, end, rng, tokens, spec.service)
        df.attrs["tokens_from"] = spec.tokens_from
        return df
    table = load_rates(spec)
    end = check_window(spec.name, table.attrs["span_s"], start_s, duration_s)
    rows = servegen.windows_in_range(table, start_s, end).reset_index(drop=True)
    t, idx = servegen.generate_arrivals(rows, 1.0, table.attrs["window_s"], rng)
    keep = (t >= start_s) & (t < end)
    t, idx = t[keep], idx[keep]
    order = np.argsort(t, kind="stable")
    prompt, output = sample_pairs(tokens, t.shape[0], rng)
    df = pd.DataFrame({"arrival_s": t[order], "model": spec.service, "prompt_tokens": prompt, "output_tokens": output,
                       "client": rows["client"].to_numpy()[idx[order]]})
    df.attrs.update(table.attrs, tokens_from=spec.tokens_from)
    return df
