"""Load prediction: predicted vs observed in-flight load per window and model, and the accuracy.

Inputs: predictions.csv rows of one system (columns model, window, pred_avg, pred_peak, obs_avg,
obs_peak) and its summary.csv rows (pred_acc_avg, pred_acc_peak). Paper (5-min windows, AzureConv,
third-party summary): 94.7% accuracy for the average, 92.7% for the peak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.figures import style

#: Accuracy reported for the paper's predictor (average, peak); third-party summary.
PAPER_ACCURACY = (0.947, 0.927)


def draw(predictions: pd.DataFrame, summary: pd.DataFrame, out_path, *, system: str = "warmserve",
         window_s: float | None = None, title_extra: str = "") -> dict:
    """A 2 x n_models grid: rows average / peak load; solid observed, dashed predicted."""
    pr = predictions[predictions["system"] == system] if "system" in predictions else predictions
    sm = summary[summary["system"] == system].set_index("model")
    models = [m for m in style.model_order(pr["model"])]
    colors = style.model_colors(models)
    fig, axes = style.new_figure(2, max(len(models), 1), width=3.0 * max(len(models), 1) + 1, height=5.6,
                                 squeeze=False)
    scale, unit = ((window_s / 60.0, "min") if window_s else (1.0, "index"))
    for j, m in enumerate(models):
        g = pr[pr["model"] == m].sort_values("window")
        x = g["window"].to_numpy() * scale
        for i, (kind, acc_col) in enumerate((("avg", "pred_acc_avg"), ("peak", "pred_acc_peak"))):
            ax = axes[i][j]
            ax.plot(x, g[f"obs_{kind}"], "-o", color=colors[m], ms=4, label="observed")
            ax.plot(x, g[f"pred_{kind}"], "--s", color="black", ms=3.5, lw=1.2, label="predicted")
            acc = sm[acc_col].get(m, np.nan) if acc_col in sm else np.nan
            ax.set_title(f"{m} {kind}: accuracy {acc:.1%}", fontsize=8.5)
            ax.set_ylim(bottom=0)
            ax.set_xlabel(f"window start ({unit})")
            if j == 0:
                ax.set_ylabel(f"{'time-averaged' if kind == 'avg' else 'peak'} in-flight requests")
            if i == 0 and j == 0:
                ax.legend(fontsize=7.5)
    acc_all = (sm["pred_acc_avg"].get("ALL", np.nan), sm["pred_acc_peak"].get("ALL", np.nan)) \
        if "pred_acc_avg" in sm else (np.nan, np.nan)
    wtxt = f"{window_s / 60:g}-min windows" if window_s else "windows"
    fig.suptitle(f"{style.system_label(system)} load prediction ({wtxt}){title_extra}: mean accuracy "
                 f"{acc_all[0]:.1%} (avg), {acc_all[1]:.1%} (peak)", fontsize=10)
    style.caption(fig, "Accuracy = 1 - mean |pred - obs| / max(obs, 1) over windows with load (summary.csv "
                       f"pred_acc_*). Paper (third-party summary): {PAPER_ACCURACY[0]:.1%} avg, "
                       f"{PAPER_ACCURACY[1]:.1%} peak on AzureConv with 5-min windows.")
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    style.save(fig, out_path)
    per_model = {m: (float(sm["pred_acc_avg"].get(m, np.nan)), float(sm["pred_acc_peak"].get(m, np.nan)))
                 for m in models} if "pred_acc_avg" in sm else {}
    return {"pred_acc_avg": float(acc_all[0]), "pred_acc_peak": float(acc_all[1]), "per_model": per_model,
            "windows": int(pr["window"].nunique()), "paper": PAPER_ACCURACY}
