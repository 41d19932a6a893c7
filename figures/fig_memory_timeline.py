"""GPU memory over time for one system: weights / KV cache / prewarmed weights per node, plus a
per-GPU timeline of instances and prewarmed replicas.

Input: timeline.parquet rows of one system. ``kind == 'memory'`` rows (time_s, gpu, used_bytes,
prewarm_bytes, kv_bytes) are per-GPU states after each change; weights = used - prewarm - kv.
``kind == 'instance'`` / ``'replica'`` rows (time_s, id, model, gpus, state) are lifecycle events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from warmsim.figures import style

#: Replica states after which a prewarmed replica no longer occupies its GPUs.
_REPLICA_LIVE = {"loading", "ready"}
#: Instance states after which an instance no longer holds its GPUs.
_INSTANCE_END = {"stopped", "failed"}


def memory_grid(mem: pd.DataFrame, n_gpus: int, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Per-GPU weights / kv / prewarm bytes sampled on ``grid`` (shape n_gpus x len(grid)); the state
    at t is the last row at or before t (0 before a GPU's first row)."""
    out = {k: np.zeros((n_gpus, len(grid))) for k in ("weights", "kv", "prewarm")}
    mem = mem.sort_values("time_s", kind="stable")
    for g, rows in mem.groupby(mem["gpu"].astype(int)):
        if g >= n_gpus:
            continue
        t = rows["time_s"].to_numpy()
        idx = np.searchsorted(t, grid, side="right") - 1
        ok = idx >= 0
        used, pw, kv = (rows[c].to_numpy()[np.maximum(idx, 0)] for c in ("used_bytes", "prewarm_bytes", "kv_bytes"))
        out["kv"][g] = np.where(ok, kv, 0)
        out["prewarm"][g] = np.where(ok, pw, 0)
        out["weights"][g] = np.where(ok, np.maximum(used - pw - kv, 0), 0)
    return out


def intervals(events: pd.DataFrame, end_s: float, live_until) -> pd.DataFrame:
    """One row per object id: model, gpus (list), start, ready (first 'active'/'ready'), end."""
    rows = []
    for oid, g in events.sort_values("time_s", kind="stable").groupby("id"):
        states = g["state"].astype(str).to_numpy()
        times = g["time_s"].to_numpy()
        start = float(times[0])
        ready = next((float(t) for s, t in zip(states, times) if s in ("active", "ready")), np.nan)
        end = next((float(t) for s, t in zip(states, times) if live_until(s)), end_s)
        gpus = [int(x) for x in str(g["gpus"].iloc[0]).split(",") if x.strip() != ""]
        rows.append({"id": oid, "model": g["model"].iloc[0], "gpus": gpus, "start": start, "ready": ready,
                     "end": end})
    return pd.DataFrame(rows, columns=["id", "model", "gpus", "start", "ready", "end"])


def draw(timeline: pd.DataFrame, out_path, *, system: str | None = None, gpus_per_node: int = 8,
         n_gpus: int | None = None, end_s: float | None = None, points: int = 800,
         title_extra: str = "", faults: pd.DataFrame | None = None) -> dict:
    """Stacked memory per node over time, then the per-GPU instance / replica timeline, for any
    system (``system``: one of the timeline's, default its first); labels come from the caller (the
    run's rate in ``title_extra``). ``faults`` (a run's faults.csv): each of the system's faults is a
    dashed vertical line on every panel."""
    if system is None:
        system = str(timeline["system"].iloc[0]) if "system" in timeline and len(timeline) else "?"
    tl = timeline[timeline["system"] == system] if "system" in timeline else timeline
    mem = tl[tl["kind"] == "memory"]
    inst, rep = tl[tl["kind"] == "instance"], tl[tl["kind"] == "replica"]
    gpu_ids = [int(x) for x in mem["gpu"].dropna()]
    for gs in pd.concat([inst["gpus"], rep["gpus"]]).dropna().astype(str):
        gpu_ids += [int(x) for x in gs.split(",") if x.strip()]
    if n_gpus is None:
        top = max(gpu_ids, default=0) + 1
        n_gpus = -(-top // gpus_per_node) * gpus_per_node
    end = float(end_s if end_s is not None else tl["time_s"].max() if len(tl) else 1.0)
    end = end if end > 0 else 1.0  # a system whose every event is at t=0 (static placement)
    grid = np.linspace(0.0, end, points)
    m = memory_grid(mem, n_gpus, grid)
    n_nodes = -(-n_gpus // gpus_per_node)
    fig, axes = style.new_figure(n_nodes + 1, 1, width=10, height=2.2 * n_nodes + 0.32 * n_gpus + 1.5,
                                 sharex=True, gridspec_kw={"height_ratios": [1] * n_nodes + [max(1.5, n_gpus / 6)]})
    kinds = [("weights", "#4c72b0", "serving weights"), ("kv", "#dd8452", "KV cache"),
             ("prewarm", "#55a868", "prewarmed weights")]
    for node in range(n_nodes):
        ax = axes[node]
        sl = slice(node * gpus_per_node, (node + 1) * gpus_per_node)
        ax.stackplot(grid, *[m[k][sl].sum(0) / 2**30 for k, _, _ in kinds], colors=[c for _, c, _ in kinds],
                     labels=[lab for _, _, lab in kinds], step="post", alpha=0.9)
        ax.set_ylabel(f"node {node}\nmemory (GiB)")
        if node == 0:
            ax.legend(fontsize=7.5, loc="upper right", ncol=3)
    ax = axes[-1]
    models = style.model_order(pd.concat([inst["model"], rep["model"]]).dropna())
    colors = style.model_colors(models)
    ri = intervals(rep, end, lambda s: s not in _REPLICA_LIVE)
    ii = intervals(inst, end, lambda s: s in _INSTANCE_END)
    for _, r in ri.iterrows():
        for g in r["gpus"]:
            ax.broken_barh([(r["start"], r["end"] - r["start"])], (g - 0.45, 0.4), color=colors[r["model"]],
                           alpha=0.35)
    for _, r in ii.iterrows():
        ready = r["ready"] if r["ready"] == r["ready"] else r["end"]
        for g in r["gpus"]:
            ax.broken_barh([(r["start"], ready - r["start"])], (g - 0.02, 0.45), facecolor="white",
                           edgecolor=colors[r["model"]], hatch="////", lw=0.5)
            ax.broken_barh([(ready, r["end"] - ready)], (g - 0.02, 0.45), color=colors[r["model"]])
    ev = rep[rep["state"].astype(str) == "evicted"]
    for _, e in ev.iterrows():
        gs = [int(x) for x in str(e["gpus"]).split(",") if x.strip()]
        ax.scatter([e["time_s"]] * len(gs), [g - 0.25 for g in gs], marker="x", color="#b00000", s=14, zorder=3)
    ax.set_ylim(n_gpus - 0.5, -0.5)
    ax.set_yticks(range(n_gpus))
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel("GPU")
    ax.set_xlabel("simulated time (s)")
    ax.set_xlim(0, end)
    handles = [Patch(color=colors[mm], label=mm) for mm in models] + [
        Patch(facecolor="white", edgecolor="black", hatch="////", label="instance starting"),
        Patch(color="grey", alpha=0.35, label="prewarmed replica (lower half)"),
        Patch(color="grey", label="serving instance (upper half)")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if len(ev):
        ax.scatter([], [], marker="x", color="#b00000", label="eviction")
        ax.legend(handles=handles + [ax.collections[-1]], fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    marks = _fault_marks(faults, system)
    for ax_ in axes:
        for t, _ in marks:
            ax_.axvline(t, color="#b00000", lw=1.0, ls="--", zorder=4)
    for k, (t, what) in enumerate(marks):
        axes[0].annotate(f"fault: {what}", xy=(t, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10 - 10 * k),
                         textcoords="offset points", fontsize=7, color="#b00000", va="top")
    fig.suptitle(f"{style.system_label(system)}: GPU memory and instances over time{title_extra}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    style.save(fig, out_path)
    tot = {k: m[k].sum(0) / 2**30 for k in m}
    return {"mean_gib": {k: float(v.mean()) for k, v in tot.items()},
            "peak_prewarm_gib": float(tot["prewarm"].max()), "instances": int(len(ii)), "replicas": int(len(ri)),
            "evictions": int(len(ev)), "faults": [t for t, _ in marks]}


def _fault_marks(faults: pd.DataFrame | None, system: str) -> list[tuple[float, str]]:
    """(time, what) of ``system``'s faults in a faults.csv table (sim/faults.py FAULT_COLUMNS)."""
    if faults is None or not len(faults):
        return []
    rows = faults[faults["system"].astype(str) == system] if "system" in faults else faults
    return [(float(r.time_s), str(r.fault)) for r in rows.itertuples(index=False)]
