"""The ``warmsim`` command: compare, run, trace, calibrate, estimate, bench, figures.

Exit status: 0 success; 2 bad input or configuration (one line naming the file, row or key);
1 an internal error.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from sim.errors import UserError

USAGE = """usage: warmsim COMMAND [args]

commands:
  compare [overrides]     run every system in `systems` on one workload; table + run directory
  run [-m] [overrides]    run one system (`system=NAME`); -m sweeps through a hydra launcher
  trace describe|plot X   look at a trace (a shipped name or a file)
  calibrate [--quick] [--out PATH]   measure a GPU's cost curves (needs the [calibrate] extra and a GPU)
  calibrate --check P | --diff A B   set a profile against public sanity ranges | compare two profiles
  estimate key=value ...  predicted cold-start breakdown and first-request TTFT from a profile
  bench [--quick]         speed and memory figures of the simulator and trace loaders
  figures [--out DIR] [--results DIR]  regenerate the figures from result tables
  report DIR [DIR ...]    one comparison table from many run directories (e.g. a hydra sweep)

Overrides are hydra's: e.g. `warmsim compare systems=[ondemand,warmserve] workload=warmserve_conv seed=1`.
Config groups: cluster, models, workload, cost, system, slo (see experiments/conf/)."""

HYDRA_GROUPS = ("cluster", "models", "workload", "cost", "system", "slo")
#: Commands outside hydra: name -> (module, function taking the remaining argv), imported on use so
#: that e.g. ``warmsim trace`` never imports the simulator and only ``calibrate`` may import torch.
COMMANDS = {
    "trace": ("traces.cli", "main"),
    "calibrate": ("calibrate.cli", "calibrate_main"),
    "estimate": ("calibrate.cli", "estimate_main"),
    "bench": ("experiments.bench", "main"),
    "report": ("experiments.report", "main"),
    "figures": ("figures.make", "main"),
}


def _fail(msg: str) -> int:
    print(f"warmsim: error: {msg}", file=sys.stderr)
    return 2


def _prevalidate(argv: list[str]) -> None:
    """Reject unknown group choices and unparsable overrides with one clear message (exit 2)."""
    if any(a in ("-m", "--multirun") for a in argv):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from experiments.builder import CONF_DIR, group_choices
    overrides = [a for a in argv if not a.startswith("-") and not a.startswith("hydra")]
    for a in overrides:
        key, _, val = a.lstrip("+~").partition("=")
        if key in HYDRA_GROUPS and val and val not in group_choices(key):
            raise UserError(f"override {a}: unknown {key} '{val}' (known: {', '.join(group_choices(key))})")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"bad override: {first}") from None


def _hydra(command: str, argv: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from experiments.builder import CONF_DIR

    def task(cfg):
        try:
            out = Path(HydraConfig.get().runtime.output_dir)
            if command == "compare":
                from experiments.commands import compare
                compare(cfg, out)
            else:
                from experiments.commands import run_one
                run_one(cfg, out)
        except UserError as e:
            sys.exit(_fail(str(e)))

    app = hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")(task)
    old = sys.argv
    sys.argv = [f"warmsim-{command}"] + argv + [f"hydra.job.name={command}"]
    try:
        app()
    finally:
        sys.argv = old
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd in ("compare", "run"):
            if not any(a in ("-h", "--help") for a in rest):
                _prevalidate(rest)
            return _hydra(cmd, rest)
        if cmd not in COMMANDS:
            return _fail(f"unknown command '{cmd}'\n{USAGE}")
        module, func = COMMANDS[cmd]
        return getattr(importlib.import_module(module), func)(rest)
    except UserError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("warmsim: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
