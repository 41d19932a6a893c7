"""Cold-start systems side by side: tail TTFT and GPU-hours per system, one column per scenario.

Input: the run directories of ``warmsim compare -m experiment=coldstart_systems`` (summary.csv ``ALL``
rows: ttft_p99_s, gpu_hours, dropped; config.yaml tells the scenario). Command:

    python -m warmsim.figures.fig_coldstart_systems RUNS_DIR [--out figures/out/coldstart_systems.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from warmsim.figures import style, tables
from warmsim.sim.errors import UserArgumentParser, UserError

#: Scenario names in display order, as experiments/conf/scenario/ names them.
SCENARIOS = ("paper", "bursty", "slow_nic", "scale512")
TITLES = {"paper": "paper workload (16 GPUs)", "bursty": "burstier arrivals (CV 4)",
          "slow_nic": "16-Gbps NICs (HydraServe's)", "scale512": "512 GPUs, 64 models"}


def scenario_of(cfg: dict) -> str:
    """Which scenario (experiments/conf/scenario/) a run's resolved config is."""
    cl, wl = cfg.get("cluster") or {}, cfg.get("workload") or {}
    if int(cl.get("nodes", 0)) * int(cl.get("gpus_per_node", 0)) >= 512:
        return "scale512"
    if wl.get("burstiness_cv"):
        return "bursty"
    if cl.get("nic_gbps") is not None and float(cl["nic_gbps"]) <= 2.0:
        return "slow_nic"
    return "paper"


def table(runs) -> pd.DataFrame:
    """``ALL`` rows of every run with a ``scenario`` column."""
    parts = []
    for r in runs:
        t = r.table("summary")
        t = t[t["model"] == "ALL"].copy()
        t["scenario"] = scenario_of(r.cfg)
        parts.append(t)
    if not parts:
        raise UserError("no summary.csv under the runs")
    return pd.concat(parts, ignore_index=True)


def draw(allrows: pd.DataFrame, out_path) -> dict:
    """Two rows of bars per scenario: P99 TTFT (log) and GPU-hours, one bar per system."""
    scen = [s for s in SCENARIOS if s in set(allrows["scenario"])]
    systems = style.order_systems(allrows["system"])
    fig, axes = style.new_figure(2, len(scen), width=3.3 * len(scen) + 1, height=6.2, squeeze=False)
    top = max(1.0, float(allrows["ttft_p99_s"].max()))
    numbers: dict = {}
    for j, sc in enumerate(scen):
        g = allrows[allrows["scenario"] == sc].set_index("system")
        have = [s for s in systems if s in g.index]
        xs = range(len(have))
        colors = [style.system_color(s) for s in have]
        p99, gpuh = g.loc[have, "ttft_p99_s"], g.loc[have, "gpu_hours"]
        ax = axes[0][j]
        ax.bar(xs, p99, color=colors)
        ax.set_yscale("log")
        ax.set_ylim(0.03, top * 4)  # one scale for every scenario; bars grow from 30 ms
        ax.set_title(TITLES.get(sc, sc))
        for x, s in zip(xs, have):
            drops = int(g.loc[s, "dropped"])
            label = f"{p99[s]:.2g}" + (f"\n{drops} drop" if drops else "")
            ax.annotate(label, (x, p99[s]), ha="center", va="bottom", fontsize=6.5)
        ax2 = axes[1][j]
        ax2.bar(xs, gpuh, color=colors)
        for x, s in zip(xs, have):
            ax2.annotate(f"{gpuh[s]:.1f}", (x, gpuh[s]), ha="center", va="bottom", fontsize=6.5)
        for a in (ax, ax2):
            a.set_xticks(list(xs))
            a.set_xticklabels([style.system_label(s) for s in have], rotation=40, ha="right", fontsize=7)
        if j == 0:
            ax.set_ylabel("P99 TTFT, all requests (s, log)")
            ax2.set_ylabel("GPU-hours (GPUs holding an instance)")
        numbers[sc] = {s: {"ttft_p99_s": float(p99[s]), "gpu_hours": float(gpuh[s]), "dropped": int(g.loc[s, "dropped"])}
                       for s in have}
    fig.suptitle("Cold-start systems on one trace: tail TTFT and GPU cost")
    style.caption(fig, f"{style.profile_text(allrows)}. Dropped requests count as 999 s in the P99. "
                       "GPU-hours cover the whole run (until the last request ends). docs/systems.md lists each system's settings.")
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    style.save(fig, out_path)
    return numbers


def main(argv: list[str] | None = None) -> int:
    p = UserArgumentParser(prog="python -m warmsim.figures.fig_coldstart_systems", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", type=Path, help="folder holding the experiment's run directories (a multirun folder)")
    p.add_argument("--out", type=Path, default=Path("figures/out/coldstart_systems.png"), help="PNG to write")
    args = p.parse_args(argv)
    numbers = draw(table(tables.find_runs(args.runs)), args.out)
    args.out.with_suffix(".json").write_text(json.dumps(numbers, indent=1))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
