"""The ``warmsim`` command: compare, run, trace, calibrate, estimate, bench, figures.

Exit status: 0 success; 2 bad input or configuration (one line naming the file, row or key);
1 an internal error (one line; the traceback goes to a file it names); 130 interrupted (SIGINT),
143 terminated (SIGTERM), 141 stdout closed early (e.g. ``warmsim --help | head -1``): 128 + the
signal number. No command prints a Python traceback to the terminal (:func:`main`'s guard).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from warmsim.experiments.overrides import check_overrides
from warmsim.experiments.rundir import claim_new_dir, probe_dir
from warmsim.sim.errors import UserError

USAGE = """usage: warmsim COMMAND [args]

commands:
  compare [overrides]     run every system in `systems` on one workload; table + run directory
  run [-m] [overrides]    run one system (`system=NAME`); -m sweeps through a hydra launcher
  trace describe|plot X   look at a trace (a shipped name or a file)
  calibrate [--quick] [--out PATH]   measure a GPU's cost curves (needs the [calibrate] extra and a GPU)
  calibrate --check P | --diff A B   set a profile against public sanity ranges | compare two profiles
  estimate key=value ...  predicted start-up stages and first-request TTFT of one model
  bench [--quick]         speed and memory figures of the simulator and trace loaders
  figures [--out DIR] [--results DIR]  regenerate the figures from result tables
  sensitivity [--quick] [--out DIR]   every paper claim as a range over unmeasured costs (one knob at a time)
  report DIR [DIR ...] [--html]   one comparison table from many run directories (e.g. a hydra sweep)
  timeline RUN_DIR [--system S] [--out trace.json]   Chrome trace-event JSON for ui.perfetto.dev

`warmsim COMMAND --help` describes each command. Own configs: ./warmsim_conf/, --config-dir DIR or
WARMSIM_CONFIG_DIR (docs/configs.md); per-system knobs in compare: overrides.<system>.<key>=value.
Overrides are hydra's: e.g. `warmsim compare systems=[ondemand,warmserve] workload=warmserve_conv seed=1`.
Config groups: cluster, models, workload, cost, system, slo (see experiments/conf/)."""

#: Commands outside hydra: name -> (module, function taking the remaining argv), imported on use so
#: that e.g. ``warmsim trace`` never imports the simulator and only ``calibrate`` may import torch.
COMMANDS = {
    "trace": ("warmsim.traces.cli", "main"),
    "calibrate": ("warmsim.calibrate.cli", "calibrate_main"),
    "estimate": ("warmsim.calibrate.cli", "estimate_main"),
    "bench": ("warmsim.experiments.bench", "main"),
    "report": ("warmsim.experiments.report", "main"),
    "timeline": ("warmsim.experiments.timeline", "main"),
    "figures": ("warmsim.figures.make", "main"),
    "sensitivity": ("warmsim.experiments.sensitivity", "main"),
}
#: hydra's own options that ``compare`` / ``run`` pass through: option -> takes a value.
HYDRA_OPTIONS = {"-m": False, "--multirun": False, "-h": False, "--help": False, "--hydra-help": False,
                 "--version": False, "--cfg": True, "-c": True, "--resolve": False, "--package": True, "-p": True,
                 "--info": None, "-i": None}
#: Options after which hydra prints and exits without running anything.
_INFO_OPTIONS = {"-h", "--help", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i"}
_INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
#: Values hydra's options accept (hydra's own parser would print its usage text and exit 1).
_OPTION_VALUES = {"--cfg": ("job", "hydra", "all"), "-c": ("job", "hydra", "all"),
                  "--info": tuple(sorted(_INFO_VALUES)), "-i": tuple(sorted(_INFO_VALUES))}
#: A failed sweep job's record in its directory: {"status": 2 or 1, "error": one line, "overrides": [...]}.
FAILED = "FAILED.json"
#: Written into a sweep job's directory when its complete results were kept (the job skipped): the
#: progress line counts it as done.
SKIPPED = ".warmsim-skipped"

#: The run directory being produced, named when the run is interrupted.
_current: dict[str, Path | None] = {"outdir": None}


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or another signal) turned into the same path as Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, _frame):
    raise Interrupted(signum)


def _fail(msg: str) -> int:
    print(f"warmsim: error: {' '.join(str(msg).split())}", file=sys.stderr)
    return 2


def config_error(e: BaseException) -> str | None:
    """One line for an error of the config machinery (an OmegaConf interpolation or key error, a
    hydra composition error, a YAML syntax error in a config file), naming the key or file; None
    for any other exception."""
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    cause = e
    while isinstance(cause, HydraException) and cause.__cause__ is not None:
        cause = cause.__cause__  # hydra wraps the YAML or OmegaConf error it met
    if isinstance(cause, yaml.YAMLError):
        mark = getattr(cause, "problem_mark", None)
        where = f"{mark.name}:{mark.line + 1}: " if mark is not None else ""
        what = getattr(cause, "problem", None) or str(cause).splitlines()[0]
        return f"{where}not valid YAML ({what})"
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        msg = (str(getattr(cause, "msg", None) or cause).strip().splitlines() or [type(cause).__name__])[0]
        return (f"config key {key}: " if key else "config: ") + " ".join(msg.split())
    if isinstance(e, HydraException):
        lines = [x.strip() for x in str(e).strip().splitlines() if x.strip()]
        return "bad config: " + (lines[0] if lines else type(e).__name__)
    return None


def internal_error(e: BaseException) -> int:
    """An internal error (a bug): one line naming it and a file holding the traceback; status 1."""
    import tempfile
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    where = ""
    try:
        fd, path = tempfile.mkstemp(prefix="warmsim-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write(" ".join(sys.argv) + "\n\n" + text)
        where = f"; traceback in {path}"
    except OSError:
        pass
    print(f"warmsim: internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]} "
          f"(a bug in warmsim, please report it{where})", file=sys.stderr)
    return 1


def _exit_status(e: BaseException) -> int:
    """The exit status of an exception that reached the top: bad input (2, one line) or internal (1)."""
    if isinstance(e, UserError):
        return _fail(str(e))
    line = config_error(e)
    if line is not None:
        return _fail(line)
    if isinstance(e, OSError) and getattr(e, "filename", None):
        return _fail(f"{e.filename}: {e.strerror or e}")
    return internal_error(e)


#: Options that name a user config directory (experiments/confpath.py); warmsim handles them itself.
CONFIG_DIR_OPTIONS = ("--config-dir", "-cd")


def _config_dirs(argv: list[str]) -> list[str | Path]:
    """Take ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR`` and ``hydra.searchpath=[...]``
    out of ``argv`` (in place); register them as user config directories, first wins."""
    from warmsim.experiments import confpath
    dirs: list[str | Path] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        name, eq, val = a.partition("=")
        if name in CONFIG_DIR_OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    raise UserError(f"{name}: give a directory")
                val = argv[i + 1]
                i += 1
            dirs.append(val)
        elif name == "hydra.searchpath" and eq:
            items = [x.strip().strip("'\"") for x in val.strip().strip("[]").split(",") if x.strip()]
            for x in items:
                if x.startswith("pkg://"):
                    raise UserError(f"{a}: only file directories are supported (docs/configs.md)")
                dirs.append(x[len("file://"):] if x.startswith("file://") else x)
        else:
            rest.append(a)
        i += 1
    argv[:] = rest
    confpath.set_cli_dirs(dirs)
    confpath.user_dirs()  # a bad WARMSIM_CONFIG_DIR is a one-line error here
    confpath.export()
    confpath.register()
    return dirs


def _split(command: str, argv: list[str]) -> tuple[list[str], list[str]]:
    """(hydra options, overrides); an option hydra does not know is a one-line UserError."""
    opts, overrides = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and not a.startswith("--=") and a not in ("-",):
            name = a.split("=", 1)[0]
            if name not in HYDRA_OPTIONS:
                raise UserError(f"warmsim {command}: unknown option '{a}' (see warmsim {command} --help)")
            opts.append(a)
            takes = HYDRA_OPTIONS[name]
            value = a.split("=", 1)[1] if "=" in a else None
            if "=" not in a and i + 1 < len(argv) and (
                    takes is True or (takes is None and argv[i + 1] in _INFO_VALUES)):
                value = argv[i + 1]
                opts.append(value)
                i += 1
            if takes is True and value is None:
                raise UserError(f"warmsim {command}: option {name} needs a value (see warmsim {command} --help)")
            allowed = _OPTION_VALUES.get(name)
            if allowed and value is not None and value not in allowed:
                raise UserError(f"warmsim {command}: {name} {value}: allowed: {', '.join(allowed)}")
        else:
            overrides.append(a)
        i += 1
    return opts, overrides


def _explicit(overrides: list[str], key: str) -> str | None:
    for a in overrides:
        k, sep, v = a.partition("=")
        if sep and k.lstrip("+") == key:
            return v
    return None


def _output_dir(command: str, overrides: list[str], multirun: bool) -> tuple[Path | None, list[str]]:
    """The run (or sweep) directory, checked writable, and the overrides that pin it for hydra."""
    from omegaconf import OmegaConf

    from warmsim.experiments.confpath import compose

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = _explicit(overrides, key)
    if given is not None:
        if not given.strip() or given.strip() in ("null", "None"):
            raise UserError(f"{key}: empty; give a directory (or leave it out for a fresh one under "
                            f"{'multirun' if multirun else 'outputs'}/)")
        if "${" in given:
            return None, []
        probe_dir(Path(given), key)
        return Path(given), []
    hc = compose([f"hydra.job.name={command}"], return_hydra_config=True)
    pattern = str(OmegaConf.select(hc, key))
    path = claim_new_dir(Path(pattern), key)
    return path, [f"{key}={path}"]


def _job_label(hc, swept=frozenset()) -> str:
    """``job N (k=v ...)`` with the values the sweep varies (every override when none is known)."""
    items = [str(o) for o in hc.overrides.task if not str(o).startswith("hydra")]
    varied = [o for o in items if o.split("=", 1)[0].lstrip("+~") in swept]
    over = " ".join(varied or items)
    return f"job {hc.job.num}" + (f" ({over})" if over else "")


#: Set by the CLI for a sweep's jobs (inherited by launcher processes): start time and job count.
SWEEP_ENV = ("WARMSIM_SWEEP_STARTED", "WARMSIM_SWEEP_TOTAL")


def _sweep_total(overrides: list[str], hc_params: dict) -> int:
    """Jobs a sweep runs: the product of the value counts of its sweep overrides and of the
    experiment's ``hydra.sweeper.params`` (a command-line override of the same key wins)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    counts: dict[str, int] = {}
    parser = OverridesParser.create()
    for k, v in (hc_params or {}).items():
        try:
            o = parser.parse_overrides([f"{k}={v}"])[0]
            counts[str(k)] = len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
        except Exception:  # noqa: BLE001 - an unparsable param counts as one value
            counts[str(k)] = 1
    for o in parser.parse_overrides(overrides):
        key = o.get_key_element().lstrip("+~")
        counts[key] = len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
    total = 1
    for c in counts.values():
        total *= max(1, c)
    return total


def _sweep_progress(out: Path) -> None:
    """One line after each job: jobs done of the sweep's total (complete or failed directories
    under the sweep directory, written since it started, whichever process ran them), elapsed, ETA."""
    from warmsim.experiments.jobs import progress_line
    from warmsim.experiments.outputs import MARKER
    try:
        started, total = float(os.environ[SWEEP_ENV[0]]), int(os.environ[SWEEP_ENV[1]])
    except (KeyError, ValueError):
        return
    root = out.parent
    done = 0
    for d in root.iterdir():
        for mark in (d / MARKER, d / FAILED, d / SKIPPED):
            try:
                if mark.stat().st_mtime >= started - 1:
                    done += 1
                    break
            except OSError:
                continue
    done = min(done, total) if total else done
    print(f"warmsim: sweep: {progress_line(done, max(total, done), time.time() - started)}", file=sys.stderr,
          flush=True)


def _sweep_job(command: str, cfg, out: Path, hc, swept=frozenset()) -> None:
    """One job of a sweep (then a progress line): see :func:`_sweep_job_body`."""
    try:
        _sweep_job_body(command, cfg, out, hc, swept)
    finally:
        try:
            _sweep_progress(out)
        except OSError:
            pass


def _sweep_job_body(command: str, cfg, out: Path, hc, swept=frozenset()) -> None:
    """One job of a sweep: skipped when its complete results (same config) are there; a failure is
    recorded in ``FAILED.json`` and reported on one line, and the sweep goes on."""
    from omegaconf import OmegaConf

    from warmsim.experiments.outputs import run_state
    label = _job_label(hc, swept)
    record: dict[str, Any] = {"label": label, "overrides": [str(o) for o in hc.overrides.task]}
    try:
        resolved = OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - a broken ${...}: reported below as the job's bad input
        resolved = None
    conf = out / "config.yaml"
    if resolved is not None and run_state(out) == "complete" and conf.is_file() and conf.read_text() == resolved:
        print(f"warmsim: {label}: complete results in {out}, skipped")
        try:  # counted as done by this sweep's progress line
            (out / SKIPPED).write_text(f"{time.time()}\n")
        except OSError:
            pass
        return
    (out / FAILED).unlink(missing_ok=True)
    try:
        from warmsim.experiments.validate import check_config
        check_config(cfg)
        _body(command, cfg, out)
        return
    except UserError as e:
        record.update(status=2, error=str(e))
        print(f"warmsim: error: {label}: {e}", file=sys.stderr)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - an internal error of one job; the others still run
        line = config_error(e)
        if line is not None:  # a config that cannot be resolved (e.g. a broken ${...}): bad input
            record.update(status=2, error=line)
            print(f"warmsim: error: {label}: {line}", file=sys.stderr)
            try:
                (out / FAILED).write_text(json.dumps(record, indent=1) + "\n")
            except OSError:
                pass
            return
        record.update(status=1, error=f"internal error: {type(e).__name__}: {' '.join(str(e).split())}",
                      traceback=traceback.format_exc())
        print(f"warmsim: {label}: {record['error']} (traceback in {out / FAILED})", file=sys.stderr)
    try:
        (out / FAILED).write_text(json.dumps(record, indent=1) + "\n")
    except OSError:
        pass


def _body(command: str, cfg, out: Path) -> None:
    _current["outdir"] = out
    if command == "compare":
        from warmsim.experiments.commands import compare
        compare(cfg, out)
    else:
        from warmsim.experiments.commands import run_one
        run_one(cfg, out)
    _current["outdir"] = None


def _sweep_report(sweep_dir: Path, started: float) -> int:
    """After a sweep: the failed jobs (one line each) and the exit status (2: all bad input, 1)."""
    from warmsim.experiments.outputs import run_state
    jobs = sorted((p.parent for p in sweep_dir.rglob(".hydra")), key=lambda p: str(p))
    failed = []
    for d in jobs:
        if run_state(d) == "complete":
            continue
        rec = {}
        try:
            rec = json.loads((d / FAILED).read_text())
        except (OSError, ValueError):
            mark = d / ".hydra" / "overrides.yaml"
            if not mark.is_file() or mark.stat().st_mtime < started:
                continue  # a job of an earlier sweep into the same directory, not run this time
        label = rec.get("label") or f"job {d.name}"
        failed.append((int(rec.get("status", 1)), label,
                       rec.get("error", "no results (the job stopped before writing them)")))
    if not failed:
        return 0
    print(f"warmsim: {len(failed)} of {len(jobs)} sweep job(s) failed:", file=sys.stderr)
    for _, label, err in failed:
        print(f"  {label}: {err}", file=sys.stderr)
    return 2 if all(s == 2 for s, _, _ in failed) else 1


def _hydra(command: str, argv: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from warmsim.experiments.builder import CONF_DIR

    argv = list(argv)
    _config_dirs(argv)
    opts, overrides = _split(command, argv)
    from warmsim.experiments.systems import rewrite
    overrides = rewrite(overrides)
    info = any(o.split("=", 1)[0] in _INFO_OPTIONS for o in opts)
    multirun = any(o in ("-m", "--multirun") for o in opts)
    pin: list[str] = []
    outdir, swept = None, set()
    if not info:
        cfg, swept = check_overrides(command, overrides, multirun)
        if not multirun:
            from warmsim.experiments.validate import check_config
            check_config(cfg)
        outdir, pin = _output_dir(command, overrides, multirun)
    started = time.time()
    if multirun and not info:
        try:
            from warmsim.experiments.confpath import compose
            hc = compose([o for o in overrides if "," not in o.partition("=")[2] or o.startswith("hydra")],
                         return_hydra_config=True)
            params = dict(hc.hydra.sweeper.get("params") or {})
        except Exception:  # noqa: BLE001 - progress is best effort
            params = {}
        os.environ[SWEEP_ENV[0]] = str(started)
        os.environ[SWEEP_ENV[1]] = str(_sweep_total(overrides, params))

    def task(cfg):
        hc = HydraConfig.get()
        out = Path(hc.runtime.output_dir)
        if hc.mode == RunMode.MULTIRUN:
            return _sweep_job(command, cfg, out, hc, swept)
        try:
            from warmsim.experiments.validate import check_config
            check_config(cfg)
            _body(command, cfg, out)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - one line, never hydra's traceback (see _exit_status)
            sys.exit(_exit_status(e))

    app = hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")(task)
    old = sys.argv
    # options before the overrides: hydra's parser takes the overrides as one positional list
    sys.argv = [f"warmsim-{command}"] + opts + overrides + pin + [f"hydra.job.name={command}"]
    try:
        app()
    finally:
        sys.argv = old
    if multirun and outdir is not None and outdir.is_dir():
        return _sweep_report(outdir, started - 1)
    return 0


def _interrupted(e: KeyboardInterrupt) -> int:
    signum = getattr(e, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    out = _current["outdir"]
    where = f"; {out} is incomplete (no COMPLETE marker)" if out is not None else ""
    print(f"warmsim: {'interrupted' if signum == signal.SIGINT else 'terminated'} ({name}){where}", file=sys.stderr)
    return 128 + int(signum)


def _stdout_closed() -> int:
    """stdout was closed by its reader (``warmsim ... | head``): stop quietly, with 128 + SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
    except (OSError, ValueError):
        pass
    return 128 + int(getattr(signal, "SIGPIPE", 13))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            print(USAGE, flush=True)
            return 0 if argv else _fail("give a command (usage above)")
        return _main(argv)
    except BrokenPipeError:
        return _stdout_closed()


def _main(argv: list[str]) -> int:
    cmd, rest = argv[0], argv[1:]
    old_term = None
    try:
        old_term = signal.signal(signal.SIGTERM, _on_signal)
    except ValueError:  # not the main thread (e.g. called from a test's worker): leave signals alone
        pass
    try:
        if cmd in ("compare", "run"):
            return _hydra(cmd, rest)
        if cmd not in COMMANDS:
            return _fail(f"unknown command '{cmd}' (see warmsim --help)")
        module, func = COMMANDS[cmd]
        return getattr(importlib.import_module(module), func)(rest)
    except KeyboardInterrupt as e:
        return _interrupted(e)
    except BrokenPipeError:
        raise
    except Exception as e:  # noqa: BLE001 - the guard: bad input is one line (2), anything else (1) too
        return _exit_status(e)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def entry() -> None:
    """Console-script entry point."""
    status = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = _stdout_closed()
    sys.exit(status)


if __name__ == "__main__":
    entry()
