#!/usr/bin/env python3
"""Mutation testing of the modules that decide results (issue 12, item 4), with mutmut 3.

Not part of CI (about 15 minutes on 2 busy cores; docs/testing.md); run it by hand:

    pip install "mutmut>=3.8"
    nice -n 10 python scripts/mutation.py                   # every module below, one after another
    nice -n 10 python scripts/mutation.py engine summary    # some modules
    python scripts/mutation.py --list                       # the modules and their test subsets
    python scripts/mutation.py mesh --sample 100            # a seeded random sample of 100 mutants
    python scripts/mutation.py engine --only '<glob>'       # rerun some mutants (mutmut names, e.g.
                                                            #   'sim.engine.xǁEngineǁ_admit__mutmut_*')
    python scripts/mutation.py --table                      # reprint the table from the last runs
    python scripts/mutation.py engine --show                # the diff of every mutant not killed
    python scripts/mutation.py --explain                    # equivalents by reason, the rest (markdown)

How it works. For each module it makes a scratch project under ``mutants/<module>/`` (``mutants/`` is
git-ignored): the committed source (``git archive HEAD``, its commit noted in ``COMMIT``; colleagues'
uncommitted work in the tree does not leak in), laid out as the ``warmsim`` package the tests import with the working tree's ``tests/`` on top, and a
``pyproject.toml`` whose ``[tool.mutmut]`` section is the repository's plus, for this module,
``only_mutate`` (the module's file) and ``pytest_add_cli_args_test_selection`` (the test files that
cover it, ``MODULES`` below). Then it runs ``mutmut run`` there (mutmut copies that project into
``mutants/<module>/mutants/`` and runs, for each mutant, only the selected tests that reach the
mutated function; ``ONLY`` restricts a module to some functions). Results are read from mutmut's
``.meta`` files, written to ``mutants/report.md`` and printed, one row per module:

    module | commit | mutants | run | killed | survived | timeout | no tests | other | equivalent | score | killed or timeout

where score = killed / (run - equivalent). A timeout (the mutant makes a test run past mutmut's time
limit, e.g. an endless loop) is shown apart and not counted as killed (the last column counts it);
"no tests" is a mutant in a function that none of the module's selected tests reaches, and counts
against the score. Equivalent mutants (no behaviour can change) are listed with the reason in
``EQUIVALENT`` below; docs/testing.md explains each mutant not killed.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutants"

# module -> (files to mutate, tests that cover them). Tests are the unit, hand-computed and golden
# tests that exercise the module; mutmut runs, per mutant, only those that reach its function.
MODULES: dict[str, tuple[list[str], list[str]]] = {
    "engine": (["sim/engine.py"],
               ["tests/sim/test_kv_exact.py", "tests/sim/test_engine.py", "tests/sim/test_toy_exact.py",
                "tests/sim/test_reserve_evict.py", "tests/sim/test_engine_mutants.py",
                "tests/sim/test_engine_events.py"]),
    "flows": (["sim/flows.py"],
              ["tests/sim/test_flows.py", "tests/sim/test_host_link.py", "tests/sim/test_flows_mutants.py"]),
    "summary": (["experiments/summary.py"],
                ["tests/experiments/test_summary_exact.py", "tests/experiments/test_summary_mutants.py"]),
    "predictor": (["policies/warmserve/predictor.py"],
                  ["tests/policies/test_warmserve_predictor.py", "tests/policies/test_predictor_mutants.py"]),
    "scores": (["policies/warmserve/scores.py"],
               ["tests/policies/test_warmserve_placement.py", "tests/policies/test_scores_mutants.py"]),
    "groups": (["policies/warmserve/groups.py"],
               ["tests/policies/test_warmserve_placement.py", "tests/policies/test_groups_mutants.py"]),
    "placement": (["policies/warmserve/placement.py"],
                  ["tests/policies/test_warmserve_placement.py", "tests/policies/test_placement_mutants.py"]),
    "kv_reserve": (["policies/warmserve/kv_reserve.py"],
                   ["tests/policies/test_warmserve_kv_reserve.py", "tests/sim/test_reserve_evict.py",
                    "tests/policies/test_kv_reserve_mutants.py"]),
    "activation": (["policies/warmserve/activation.py"],
                   ["tests/policies/test_warmserve_activation.py", "tests/sim/test_reserve_evict.py",
                    "tests/policies/test_activation_mutants.py"]),
    "kv_lending": (["sim/kv_lending.py"],
                   ["tests/sim/test_reserve_evict.py", "tests/sim/test_kv_lending_mutants.py"]),
    "evict": (["sim/weights.py"],
              ["tests/sim/test_reserve_evict.py", "tests/sim/test_replicas.py", "tests/sim/test_kv_lending_mutants.py",
               "tests/sim/test_evict_mutants.py"]),
    "mesh": (["policies/muxserve/mesh.py", "policies/muxserve/estimator.py"],
             ["tests/policies/test_muxserve_mesh.py", "tests/policies/test_mesh_mutants.py"]),
}

# Modules mutated only in part: mutmut names (globs) of the functions to run. sim/weights.py holds the
# weight loads and the placement loop too; the eviction of a replica is its ``evict``.
ONLY: dict[str, list[str]] = {"evict": ["sim.weights.xǁWeightsǁevict__mutmut_*"]}

# Mutants that cannot change behaviour, with the reason (mutmut's name -> why). Each is explained in
# docs/testing.md; they are left out of the score's denominator.
EQUIVALENT: dict[str, str] = {}


def _eq(prefix: str, numbers: str, why: str) -> None:
    for n in numbers.split():
        EQUIVALENT[f"{prefix}__mutmut_{n}"] = why


# sim/engine.py
_E = "sim.engine.xǁEngineǁ"
_eq(_E + "_steps_done", "2 4 5 6 7 8 11 12 13 18 19 20 21 23 26 28",
    "changes only the closed-form first guess of the step count; the two correction loops that follow "
    "move any guess in [0, k] to the exact answer (t(n) is increasing), so only the number of loop "
    "iterations changes")
_eq(_E + "_steps_done", "39 40 51 53",
    "the first correction loop may now step below the answer, the second loop climbs back to it "
    "(exact result, more iterations)")
_eq(_E + "_steps_done", "44 47",
    "overstates t(n) in the downward correction loop: it may step below the answer, and the upward "
    "loop (with the true t) climbs back to it")
_eq(_E + "_steps_done", "50",
    "'>=' vs '>' in the downward loop: if it steps once too far (t(n) == elapsed), the upward loop "
    "climbs back (exact result)")
_eq(_E + "_steps_before_kv_full", "3",
    "exactly 64 running sequences take the numpy path instead of the Python one; both are exact "
    "integer arithmetic (tested equal to brute force at 64 and 65)")
_eq(_E + "_steps_before_kv_full", "15 22",
    "numpy arrays of float64 instead of int64: floor division of integers below 2**53 is exact")
_eq(_E + "_steps_before_kv_full", "19 26", "np.fromiter without count builds the same array")
_eq(_E + "_head_admissible", "6",
    "x / bs <= free and ceil(x / bs) <= free agree for an integer number of free blocks")
_eq(_E + "_maybe_cut", "17",
    "when the cut would fall on the run's last step, a new timer at now + (start + t(k) - now) "
    "replaces the run's own at start + t(k): the same instant (up to the rounding of the last bit)")
_eq(_E + "__init__", "14",
    "mode None instead of _NEW before start: a poke is ignored in both (only _IDLE and _DECODE react)")
_eq(_E + "__init__", "16 17 18 19 20 21 22 23",
    "overwritten before it is read: _on_stop by start(), _admitted at each prefill step, _run and _k "
    "at each decode run")
_eq(_E + "__init__", "24", "stopping None instead of False: only read as a truth value")
_eq(_E + "_advance", "3", "done None instead of False: only read as a truth value")
_eq(_E + "_advance", "4", "_retire after every run: it returns at once when no sequence is done")
_eq(_E + "_loop", "13", "_admit() with an empty queue admits nothing")
_eq(_E + "_loop", "8 27", "a mode other than _IDLE or _DECODE replaced by None: pokes are ignored in both")
_eq(_E + "_maybe_cut", "2", "a mode other than _IDLE or _DECODE replaced by None: pokes are ignored in both")
_eq(_E + "_poke", "3", "a mode other than _IDLE or _DECODE replaced by None: pokes are ignored in both")
_eq(_E + "halt", "5", "a mode other than _IDLE or _DECODE replaced by None: pokes are ignored in both")
_eq(_E + "_loop", "60", "'<=' instead of '<' while taking the minimum: the same minimum")
_eq(_E + "_loop", "62 63 68 75",
    "makes the one-pass fit check pessimistic (a larger need, or '<' at equality): the exact search "
    "that follows returns the same number of steps (all of them when they fit)")
_eq(_E + "__init__", "15", "_ev = '' instead of None: 'ev is self._ev' is false for both")
_eq(_E + "_on_decode_end", "2", "_ev = '' instead of None: 'ev is self._ev' is false for both")
_eq(_E + "_on_prefill_end", "2", "_ev = '' instead of None: 'ev is self._ev' is false for both")
_eq(_E + "_on_wake", "2", "_ev = '' instead of None: 'ev is self._ev' is false for both")
_eq(_E + "halt", "6", "_ev = '' instead of None: 'ev is self._ev' is false for both")
_eq("sim.engine.xǁSeqǁ__init__", "6 7",
    "a sequence's initial block count is overwritten at admission before anything reads it")
_eq("sim.engine.xǁSeqǁ__init__", "8", "started None instead of False: only read as a truth value")
# experiments/summary.py
_eq("experiments.summary.x_summarize", "129",
    "five NaN placeholders instead of four: only the first four are read")
_eq("experiments.summary.x_summarize", "263 265",
    "the row dicts' keys are COLUMNS in the same order (a test checks the columns), so "
    "pd.DataFrame gives the same frame without columns=")
# sim/flows.py
_F = "sim.flows.xǁFlowNetworkǁ"
_eq(_F + "__init__", "5", "the generation counter is only compared for equality; starting at 1 is the same")
_eq(_F + "_reschedule", "2 3",
    "the generation still changes at every reschedule (down, or by 2), so stale timers are still told apart")
_eq(_F + "_reschedule", "1",
    "generation fixed at 1: stale timers are no longer ignored, but a stale timer only advances the "
    "flows to now and finishes those already done (no flow finishes early); extra events only")
_eq(_F + "_advance", "3", "advancing by dt = 0 subtracts nothing")
_eq(_F + "_allocate", "11 19",
    "marking a link bottleneck where a cap bound at the same increment also freezes the flows of "
    "that link now instead of in the next round (where their increment would be 0): same rates")
_eq(_F + "_allocate", "28 29 40",
    "the cap-reached test is done twice (in the branch and again after it): a change to one "
    "copy is covered by the other, and cap - rate is exactly 0 for a flow that reached its cap")
_eq(_F + "_allocate", "34",
    "'<' vs '<=' on a saturated link's residual differs only if it is exactly 1e-9 x capacity")
_eq(_F + "_on_timer", "4", "a remaining of exactly 1e-3 bytes after an advance: never in practice")
_eq(_F + "_on_timer", "6",
    "a flow with rate 0 never exists: progressive filling gives every flow a positive rate when "
    "every link capacity and cap is positive (the configuration refuses others: bandwidths > 0, a "
    "link_degrade factor in (0, 1])")
_eq(_F + "_reschedule", "8", "same: no flow has rate 0")
_eq(_F + "_on_timer", "7",
    "for rate <= 1 B/s, remaining / rate < 1e-12 implies remaining < 1e-3, already finished by the first test")
_eq(_F + "_on_timer", "9", "'<' vs '<=' 1e-12 s: differs only at exactly 1e-12 s")
_eq(_F + "_allocate", "39",
    "the second cap-reached test: in the cap branch the first one already froze those flows; in the "
    "link branch the increment was below every flow's cap headroom, so no flow is at its cap")
_eq("policies.warmserve.placement.xǁRoundRobinPlacerǁplan", "107 108",
    "i + 1 and (index of the model just served + 1) mod len(active) name the same next model: the "
    "model served is active[i mod len(active)] and models are unique")
_eq("policies.warmserve.placement.xǁRoundRobinPlacerǁplan", "57 59",
    "our variant starts from every model instead of those with demand left: a model with none is "
    "removed at its first turn without moving the turn, as if it had not been there")
# sim/kv_lending.py
_eq("sim.kv_lending.xǁKVLendingǁloop", "36",
    "a give-back of 0 blocks: reclaim(inst, 0) evicts nothing (0 bytes always fit) and lends the same blocks")
_eq("sim.kv_lending.xǁKVLendingǁreclaim", "24",
    "room is below the blocks asked for only if every replica was evicted and the pool is still short, "
    "which cannot happen: lent KV memory can only be taken by prewarmed replicas (engines that share a "
    "GPU do not lend); so min(blocks, room) is blocks, an int, either way")
# sim/weights.py (evict)
_eq("sim.weights.xǁWeightsǁevict", "1",
    "the default reason: every caller (Simulation.evict, the placement loop) passes one")
_eq("sim.weights.xǁWeightsǁevict", "11", "cancelled None instead of False: only read as a truth value")
# policies/muxserve/estimator.py (MuxServe's estimator; mesh.py, the placer, has no equivalent mutant)
_M = "policies.muxserve.estimator.xǁMeshEstimatorǁ"
_eq(_M + "can_place", "18",
    "remaining == pct fails the first test but passes the second (remaining + threshold >= pct, the "
    "threshold being >= 0)")
_eq(_M + "max_batch_for_cache", "14", "int() of a positive quotient truncates like floor division")
_eq(_M + "mesh_throughput", "24",
    "the even KV split is used only when every rate is 0; then every mesh throughput is 0 whatever "
    "the batches")
_eq(_M + "smart_placement", "4",
    "free memory as ngpus / pool - weights: meshes of one size keep their relative order (the same "
    "first term), and a tie in the rise between sizes goes to the smaller mesh whatever the order")
_eq(_M + "optimize", "22 24",
    "every split's score is scaled by the same positive constant (or is 0 for every split when no model "
    "has a rate): the best split is the same")
# policies/warmserve/predictor.py
_P = "policies.warmserve.predictor.x"
_DT = "dtype left to numpy: the values are Python floats or already float64, so the arrays are float64 anyway"
_eq(_P + "__as_profile", "3 5", "the array is only checked for shape; every value read from it goes through float()")
_eq(_P + "ǁCorrectiveSeasonalPredictorǁ__init__", "38 40",
    "history of integers kept as integers: its mean over days is the same float")
_eq(_P + "ǁCorrectiveSeasonalPredictorǁ__init__", "67 69", "decay (a float) ** integer exponents gives the same float64 weights")
_eq(_P + "ǁCorrectiveSeasonalPredictorǁobserve", "16 18", _DT)
_eq(_P + "ǁPredictionAccuracyǁreport", "14 16", _DT)
_eq(_P + "ǁPredictionAccuracyǁreport", "18", "numpy takes any negative size in reshape as 'the rest'")
_eq(_P + "ǁPredictionAccuracyǁ_score", "17", 'float("NAN") is the same NaN')
# policies/warmserve/kv_reserve.py
_K = "policies.warmserve.kv_reserve.xǁKVReservePolicyǁstep"
_eq(_K, "5", "a negative total with free and reserved >= 0 also fails 'free + reserved > total'")
_eq(_K, "20 36 37 38",
    "the boundary case returns a step of 0 blocks, KVReserveStep(reserve=0) or (give_back=0), equal to KVReserveStep()")
# policies/warmserve/activation.py
_A = "policies.warmserve.activation.x"
_eq(_A + "__hit", "10", "replica ids are unique: '<=' and '<' never differ")
_eq(_A + "ǁWarmServeActivatorǁchoose", "37", "Activate.replica defaults to None")
_eq(_A + "ǁWarmServeActivatorǁmiss_gpus_for", "4 8",
    "adds 1 to every GPU's count, or doubles every count: the ranking of free GPUs is unchanged")
# policies/warmserve/groups.py
_G = "policies.warmserve.groups.x"
_eq(_G + "_subset_masks", "11 13", "Python ints become int64 arrays by default")
_eq(_G + "_scan_groups", "7 9 110 113", "np.arange/np.full of int64 values give int64 by default")
_eq(_G + "_scan_groups", "13 14",
    "the all-ones mask gets extra high bits: it is only ANDed with group masks inside the node's bits")
_eq(_G + "_scan_groups", "42 49 50 51 53 54 60",
    "the early return when no node or no subset can hold the replica: its ok array has no True, and "
    "the only reader (choose_group) returns None before looking at anything else")
_eq(_G + "_scan_groups", "68 72",
    "equal tp: either nesting rule alone forces group == replica GPUs (same size, one contains the other)")
_eq(_G + "ǁReplicaTableǁ__init__", "1 13", "the initial number of slots only; the table grows on demand")
_eq(_G + "ǁReplicaTableǁ__init__", "21 23 27 30 35 37 40 42",
    "dtype left to numpy (float64 zeros, int64 fill): values compared or converted with int() read the same")
_eq(_G + "ǁReplicaTableǁ__init__", "31 32",
    "the model index of an empty slot: every read of it is ANDed with the slot's GPU mask, 0 for an empty slot")
_eq(_G + "ǁReplicaTableǁ__init__", "5", "ReplicaTable.n_nodes is never read")
_eq(_G + "ǁReplicaTableǁadd", "21 41",
    "growing pads an extra node row at the end of the tp or score array: rows are read by node id, "
    "the extra row never")
_eq(_G + "ǁReplicaTableǁadd", "29 33 34",
    "the model index of the new empty slots (0, +1 or -2 instead of -1): every read of it is ANDed "
    "with the slot's GPU mask, 0 for an empty slot")
# policies/warmserve/placement.py
_L = "policies.warmserve.placement.xǁEvictAwarePlacerǁ"
_eq(_L + "plan", "18 20", "Python ints become an int64 array by default")
_eq(_L + "plan", "22 35 36 41 42", "the replica table's initial slots only; it grows on demand")
_eq(_L + "plan", "46",
    "the replica id in the second _replica_node call only names the replica in an error that the "
    "first call (in the Counter) would already have raised")
_eq(_L + "plan", "71 106",
    "a model that found no group (or does not fit a node) is scanned again instead of skipped: it "
    "finds none again (commits only remove memory and add replicas)")
_eq(_F + "_remove", "2",
    "a finished flow left in its links' sets is never counted: allocation counts only flows still "
    "in the network (memory only)")

PACKAGES = ["sim", "policies", "experiments", "traces", "calibrate", "figures"]
#: The import name the packages install under (setup.py); mutant names are shown without it.
PKG = "warmsim"


def _mutant_key(k: str):
    head, _, num = k.rpartition("__mutmut_")
    return head, int(num) if num.isdigit() else 0


def _short(keys: list[str]) -> str:
    """``Class.function`` 1, 2, 3 from mutmut names."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        head, num = _mutant_key(k)
        func = head.rsplit(".", 1)[-1]
        func = func[2:].replace("ǁ", ".") if func.startswith("xǁ") else func[2:] if func.startswith("x_") else func
        groups.setdefault(func, []).append(str(num))
    return "; ".join(f"`{f}` {', '.join(ns)}" for f, ns in groups.items())


def _status(code):
    from mutmut.stats import status_by_exit_code
    return status_by_exit_code[code]


def prepare(name: str) -> Path:
    files, tests = MODULES[name]
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", commit, PKG, *PACKAGES, "pyproject.toml"],
                             cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(work, filter="data")
    # Lay the folders out as the installed import name (warmsim/sim, warmsim/policies, ...): the tests
    # import ``warmsim.*``, and mutmut expects a mutant's module name to follow its file's path.
    for pkg in PACKAGES:
        shutil.move(work / pkg, work / PKG / pkg)
    shutil.copytree(ROOT / "tests", work / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache"))
    with open(ROOT / "pyproject.toml", "rb") as f:
        base = tomllib.load(f).get("tool", {}).get("mutmut", {})
    conf = dict(base)
    conf["source_paths"] = [PKG]
    conf["only_mutate"] = [f"{PKG}/{f}" for f in files]
    conf["pytest_add_cli_args_test_selection"] = [t for t in tests if (ROOT / t).exists()]
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in conf.items()]
    text = (work / "pyproject.toml").read_text()
    head, sep, rest = text.partition("[tool.mutmut]")
    if sep:  # drop the repository's own section; ours replaces it
        nxt = rest.find("\n[")
        text = head + (rest[nxt + 1:] if nxt >= 0 else "")
    (work / "pyproject.toml").write_text(text.rstrip() + "\n" + "\n".join(lines) + "\n")
    (work / "COMMIT").write_text(commit + "\n")  # the source tree mutated (tests: the working tree's)
    return work


def mutant_names(name: str) -> list[str]:
    """Every mutant of the module: generates them (and mutmut's test stats, reused by the real run)
    by asking mutmut for a mutant that does not exist, then reads the names it wrote."""
    subprocess.run([sys.executable, "-m", "mutmut", "run", "no-such-mutant"], cwd=WORK / name,
                   capture_output=True, text=True)
    return sorted(results(name))


def results(name: str) -> dict[str, str]:
    files, _ = MODULES[name]
    work = WORK / name
    out: dict[str, str] = {}
    for f in files:
        meta = work / "mutants" / PKG / (f + ".meta")
        if meta.exists():
            for k, v in json.loads(meta.read_text())["exit_code_by_key"].items():
                out[k.removeprefix(PKG + ".")] = _status(v)
    return out


def row(name: str, res: dict[str, str]) -> dict:
    checked = {k: v for k, v in res.items() if v != "not checked"}
    eq = [k for k in checked if k in EQUIVALENT]
    killed = sum(v == "killed" for k, v in checked.items() if k not in EQUIVALENT)
    n = len(checked)
    denom = n - len(eq)
    return dict(module=name, mutants=len(res), run=n, killed=killed,
                survived=sum(v == "survived" for k, v in checked.items() if k not in EQUIVALENT),
                timeout=sum(v == "timeout" for k, v in checked.items() if k not in EQUIVALENT),
                no_tests=sum(v == "no tests" for k, v in checked.items() if k not in EQUIVALENT),
                other=sum(v not in ("killed", "survived", "timeout", "no tests")
                          for k, v in checked.items() if k not in EQUIVALENT),
                equivalent=len(eq), score=(killed / denom if denom else float("nan")),
                detected=((killed + sum(v == "timeout" for k, v in checked.items() if k not in EQUIVALENT)) / denom
                          if denom else float("nan")),
                alive=sorted(k for k, v in checked.items()
                             if v != "killed" and k not in EQUIVALENT))


def table(names: list[str]) -> str:
    head = ("| module | commit | mutants | run | killed | survived | timeout | no tests | other | equivalent | score "
            "| killed or timeout |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    alive = []
    for name in names:
        r = row(name, results(name))
        c = WORK / name / "COMMIT"
        lines.append(f"| {name} | {c.read_text().strip() if c.exists() else '?'} | {r['mutants']} | {r['run']} | {r['killed']} | {r['survived']} | {r['timeout']} | "
                     f"{r['no_tests']} | {r['other']} | {r['equivalent']} | {r['score']:.1%} | {r['detected']:.1%} |")
        alive += [f"- {name}: `{k}` ({results(name)[k]})" for k in r["alive"]]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return (f"Mutation testing, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}\n\n"
            + "\n".join(lines) + "\n\nNot killed (and not listed as equivalent):\n" + ("\n".join(alive) or "- none")
            + "\n")


def run(name: str, only: list[str], sample: int | None, seed: int, max_children: int) -> None:
    work = prepare(name) if not only or not (WORK / name / "mutants").exists() else WORK / name
    if only:  # rerun: refresh the tests from the working tree (mutmut copies tests/ into mutants/), keep its state
        for d in (work / "tests", work / "mutants" / "tests"):
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(ROOT / "tests", d, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache"))
    names = list(only) or ONLY.get(name, [])
    if sample:
        every = [k for k in mutant_names(name) if not ONLY.get(name) or any(
            fnmatch.fnmatch(k, g) for g in ONLY[name])]
        names = sorted(random.Random(seed).sample(every, min(sample, len(every))))
        print(f"[{name}] sample of {len(names)} out of {len(every)} mutants (seed {seed})", flush=True)
    t0 = time.time()
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *(f"{PKG}.{n}" for n in names)]
    print(f"[{name}] {' '.join(cmd[1:])}  (in {work.relative_to(ROOT)})", flush=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with open(work / "mutmut.log", "w") as log:
        p = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"[{name}] mutmut exit {p.returncode} in {time.time() - t0:.0f} s (log: {work / 'mutmut.log'})", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    ap.add_argument("--list", action="store_true", help="print the modules and their tests")
    ap.add_argument("--table", action="store_true", help="only print the table from the last runs")
    ap.add_argument("--only", action="append", default=[], help="mutmut names or globs to (re)run")
    ap.add_argument("--sample", type=int, help="run a random sample of this many mutants per module")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", action="store_true", help="print the diff of every mutant not killed")
    ap.add_argument("--explain", action="store_true",
                    help="print, per module, the equivalent mutants grouped by reason and the others not killed (markdown)")
    ap.add_argument("--max-children", type=int, default=2)
    a = ap.parse_args(argv)
    names = a.modules or list(MODULES)
    bad = [n for n in names if n not in MODULES]
    if bad:
        ap.error(f"unknown module(s) {bad}; known: {', '.join(MODULES)}")
    if a.list:
        for n in names:
            print(f"{n}: {' '.join(MODULES[n][0])}\n    tests: {' '.join(MODULES[n][1])}")
        return 0
    if a.explain:
        for n in names:
            res = results(n)
            if not res:
                continue
            print(f"\n### {n} (`{' '.join(MODULES[n][0])}`)\n")
            by_reason: dict[str, list[str]] = {}
            for k in sorted(res, key=_mutant_key):
                if k in EQUIVALENT and res[k] != "not checked":
                    by_reason.setdefault(EQUIVALENT[k], []).append(k)
            for why, ks in by_reason.items():
                print(f"- equivalent, {_short(ks)}: {why}")
            for k in row(n, res)["alive"]:
                print(f"- **{res[k]}**, {_short([k])}: ")
        return 0
    if a.show:
        for n in names:
            for k in row(n, results(n))["alive"]:
                out = subprocess.run([sys.executable, "-m", "mutmut", "show", f"{PKG}.{k}"], cwd=WORK / n,
                                     capture_output=True, text=True).stdout
                print("\n".join(ln for ln in out.splitlines()
                                if ln[:1] in "-+#" and not ln.startswith(("---", "+++"))))
        return 0
    if not a.table:
        for n in names:
            run(n, a.only, a.sample, a.seed, a.max_children)
    text = table([n for n in names if (WORK / n / "mutants").exists()])
    WORK.mkdir(exist_ok=True)
    (WORK / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
