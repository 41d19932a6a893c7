"""Shared look of every figure: one color per system and per model, labels, and saving.

Colors are fixed per name so that a system looks the same in every figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Resolution of the written PNGs (dots per inch); ~110 keeps each file small.
DPI = 110

#: Order and color of the compared systems and of WarmServe's ablations.
SYSTEM_COLORS: dict[str, str] = {
    "static": "#7f7f7f",
    "ondemand": "#bcbd22",
    "sllm": "#d62728",
    "sllm_ssd": "#ff9896",
    "muxserve": "#1f77b4",
    "warmserve": "#2ca02c",
    "warmserve_oracle": "#98df8a",
    "warmserve_disable_prewarm": "#9467bd",
    "warmserve_default_mode": "#c5b0d5",
    "warmserve_no_placement": "#8c564b",
    "warmserve_no_kv_reserve": "#e377c2",
    "warmserve_free_malloc": "#17becf",
    "warmserve_window3": "#ff7f0e",
    "warmserve_window10": "#ffbb78",
    "warmserve_window40": "#c49c94",
    "sllm_remote": "#e7969c",
    "hydraserve": "#e6550d",
    "vllm_sleep": "#756bb1",
    "vllm_sleep_l2": "#bcbddc",
    "prism": "#e7ba52",
    "peerload": "#843c39",
}

#: Marker and line style per baseline, so that overlapping lines stay distinguishable.
SYSTEM_LINES: dict[str, tuple[str, str]] = {
    "static": ("s", "--"), "sllm": ("v", "-"), "muxserve": ("D", "-"), "warmserve": ("o", "-"),
    "ondemand": ("^", ":"), "sllm_ssd": ("<", ":"),
}

#: Display names (the paper's names for the baselines).
SYSTEM_LABELS: dict[str, str] = {
    "static": "Static", "ondemand": "On-demand", "sllm": "ServerlessLLM", "sllm_ssd": "ServerlessLLM (SSD)",
    "muxserve": "MuxServe", "warmserve": "WarmServe", "warmserve_oracle": "oracle predictor",
    "warmserve_disable_prewarm": "no predictive prewarm (--disable-prewarm)",
    "warmserve_default_mode": "artifact default mode (no model in GPU memory)", "warmserve_no_placement": "no placement",
    "warmserve_no_kv_reserve": "no KV reserve", "warmserve_free_malloc": "free/malloc switch",
    "warmserve_window3": "window 3 min", "warmserve_window10": "window 10 min",
    "warmserve_window40": "window 40 min",
    "sllm_remote": "ServerlessLLM (remote)", "hydraserve": "HydraServe", "vllm_sleep": "vLLM sleep (L1)",
    "vllm_sleep_l2": "vLLM sleep (L2)", "prism": "Prism", "peerload": "peer load (BlitzScale-style)",
}

_FALLBACK = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354"]
_MODEL_CYCLE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def system_color(name: str) -> str:
    """The color of ``name``; unknown systems get a stable color derived from the name."""
    return SYSTEM_COLORS.get(name) or _FALLBACK[sum(map(ord, name)) % len(_FALLBACK)]


def system_line(name: str) -> dict:
    """Matplotlib keyword arguments (color, marker, linestyle) of a system's line."""
    marker, ls = SYSTEM_LINES.get(name, ("o", "-"))
    return {"color": system_color(name), "marker": marker, "linestyle": ls}


def system_label(name: str) -> str:
    """Display name of a system (the config name if it has none)."""
    return SYSTEM_LABELS.get(name, name)


def order_systems(names) -> list[str]:
    """``names`` in the fixed display order (known systems first, then the rest sorted)."""
    names = list(dict.fromkeys(names))
    known = [s for s in SYSTEM_COLORS if s in names]
    return known + sorted(n for n in names if n not in SYSTEM_COLORS)


def model_colors(models) -> dict[str, str]:
    """A color per model name, in the given order."""
    return {m: _MODEL_CYCLE[i % len(_MODEL_CYCLE)] for i, m in enumerate(models)}


def model_order(models) -> list[str]:
    """Per-model names in a stable order with ``ALL`` last."""
    ms = [m for m in dict.fromkeys(models) if m != "ALL"]
    return ms + (["ALL"] if "ALL" in set(models) else [])


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 8.0, height: float = 4.5, **kw):
    """A figure and its axes with the shared defaults."""
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.grid": True, "grid.alpha": 0.3})
    return plt.subplots(nrows, ncols, figsize=(width, height), **kw)


def profile_text(rows) -> str:
    """"Cost profile NAME (how it was measured)" for a caption, from a summary table's ``profile`` and
    ``profile_measured`` columns; several profiles are listed together."""
    from warmsim.sim.costprofile.shipped import external_note_of

    if "profile" not in rows:
        return "Cost profile unknown"
    measured = rows["profile_measured"] if "profile_measured" in rows else [False] * len(rows)
    parts = []
    for name, m in dict(zip(rows["profile"], measured)).items():
        how = (external_note_of(str(name)) or "measured on a GPU") if bool(m) else "analytic, not measured"
        parts.append(f"{name} ({how})")
    return "Cost profile " + ", ".join(parts)


def caption(fig, text: str) -> None:
    """A small caption under the axes (source, criterion, paper comparison)."""
    fig.text(0.01, 0.005, text, ha="left", va="bottom", fontsize=7.5, color="#333333", wrap=True)


def save(fig, out_path) -> Path:
    """Write ``fig`` as PNG to ``out_path`` (parents created) and close it."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
