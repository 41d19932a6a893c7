#!/usr/bin/env python3
"""Mutation testing of the modules that decide results (issue 12, item 4), with mutmut 3.

Not part of CI (it takes tens of minutes); run it by hand:

    pip install "mutmut>=3.8"
    nice -n 10 python scripts/mutation.py                   # every module below, one after another
    nice -n 10 python scripts/mutation.py engine summary    # some modules
    python scripts/mutation.py --list                       # the modules and their test subsets
    python scripts/mutation.py engine --sample 60           # a deterministic sample of 60 mutants
    python scripts/mutation.py --table                      # reprint the table from the last runs

How it works. For each module it makes a scratch project under ``mutants/<module>/`` (``mutants/`` is
git-ignored): the committed source (``git archive HEAD``; colleagues' uncommitted work in the tree
does not leak in) with the working tree's ``tests/`` on top, and a ``pyproject.toml`` whose
``[tool.mutmut]`` section is the repository's plus, for this module, ``only_mutate`` (the module's
file or files) and ``pytest_add_cli_args_test_selection`` (the test files that cover it, below).
Then it runs ``mutmut run`` there (mutmut copies that project into ``mutants/<module>/mutants/`` and
runs, for each mutant, only the selected tests that reach the mutated function). Results are read from
mutmut's ``.meta`` files and written to ``mutants/report.md`` and printed:

    module | mutants | killed | survived | timeout | no tests | equivalent | score

where score = killed / (mutants - equivalent). A timeout (the mutant makes a test run past mutmut's
time limit, e.g. an endless loop) is shown apart and is not counted as killed; "no tests" is a mutant
in a function that none of the module's selected tests reaches, and counts against the score.
Equivalent mutants (no behaviour can change) are listed with the reason in EQUIVALENT below; each one
is explained in docs/testing.md.

To look at one mutant: ``cd mutants/<module> && mutmut show <name>``; to rerun some:
``python scripts/mutation.py <module> --only '<glob>'`` (mutmut's names, e.g.
``sim.engine.xǁEngineǁ_admit__mutmut_*``).
"""

from __future__ import annotations

import argparse
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
                "tests/sim/test_reserve_evict.py", "tests/sim/test_engine_mutants.py"]),
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
    "mesh": (["policies/muxserve/mesh.py"],
             ["tests/policies/test_muxserve_mesh.py", "tests/policies/test_mesh_mutants.py"]),
}

# Mutants that cannot change behaviour, with the reason (mutmut's name -> why). Each is explained in
# docs/testing.md; they are left out of the score's denominator.
EQUIVALENT: dict[str, str] = {}

PACKAGES = ["sim", "policies", "experiments", "traces", "calibrate", "figures"]


def _status(code):
    from mutmut.stats import status_by_exit_code
    return status_by_exit_code[code]


def prepare(name: str) -> Path:
    files, tests = MODULES[name]
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD", *PACKAGES, "pyproject.toml"],
                             cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(work, filter="data")
    shutil.copytree(ROOT / "tests", work / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache"))
    with open(ROOT / "pyproject.toml", "rb") as f:
        base = tomllib.load(f).get("tool", {}).get("mutmut", {})
    conf = dict(base)
    conf["only_mutate"] = files
    conf["pytest_add_cli_args_test_selection"] = [t for t in tests if (ROOT / t).exists()]
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in conf.items()]
    text = (work / "pyproject.toml").read_text()
    head, sep, rest = text.partition("[tool.mutmut]")
    if sep:  # drop the repository's own section; ours replaces it
        nxt = rest.find("\n[")
        text = head + (rest[nxt + 1:] if nxt >= 0 else "")
    (work / "pyproject.toml").write_text(text.rstrip() + "\n" + "\n".join(lines) + "\n")
    return work


def mutant_names(work: Path) -> list[str]:
    """Every mutant of the module (generates them without running any test)."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "print-time-estimates"], cwd=work,
                         capture_output=True, text=True)
    return sorted({ln.split()[-1] for ln in out.stdout.splitlines() if "__mutmut_" in ln})


def results(name: str) -> dict[str, str]:
    files, _ = MODULES[name]
    work = WORK / name
    out: dict[str, str] = {}
    for f in files:
        meta = work / "mutants" / (f + ".meta")
        if meta.exists():
            for k, v in json.loads(meta.read_text())["exit_code_by_key"].items():
                out[k] = _status(v)
    return out


def row(name: str, res: dict[str, str]) -> dict:
    checked = {k: v for k, v in res.items() if v != "not checked"}
    eq = [k for k in checked if k in EQUIVALENT]
    killed = sum(v == "killed" for k, v in checked.items() if k not in EQUIVALENT)
    n = len(checked)
    denom = n - len(eq)
    return dict(module=name, mutants=len(res), run=n, killed=killed,
                survived=sum(v == "survived" for k, v in checked.items() if k not in EQUIVALENT),
                timeout=sum(v == "timeout" for v in checked.values()),
                no_tests=sum(v == "no tests" for v in checked.values()),
                other=sum(v not in ("killed", "survived", "timeout", "no tests") for v in checked.values()),
                equivalent=len(eq), score=(killed / denom if denom else float("nan")),
                alive=sorted(k for k, v in checked.items()
                             if v != "killed" and k not in EQUIVALENT))


def table(names: list[str]) -> str:
    head = ("| module | mutants | run | killed | survived | timeout | no tests | other | equivalent | score |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    alive = []
    for name in names:
        r = row(name, results(name))
        lines.append(f"| {name} | {r['mutants']} | {r['run']} | {r['killed']} | {r['survived']} | {r['timeout']} | "
                     f"{r['no_tests']} | {r['other']} | {r['equivalent']} | {r['score']:.1%} |")
        alive += [f"- {name}: `{k}` ({results(name)[k]})" for k in r["alive"]]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return (f"Mutation testing, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}\n\n"
            + "\n".join(lines) + "\n\nNot killed (and not listed as equivalent):\n" + ("\n".join(alive) or "- none")
            + "\n")


def run(name: str, only: list[str], sample: int | None, seed: int, max_children: int) -> None:
    work = prepare(name) if not only or not (WORK / name / "mutants").exists() else WORK / name
    if only:  # rerun: refresh the tests from the working tree, keep mutmut's state
        shutil.rmtree(work / "mutants" / "tests", ignore_errors=True)
        shutil.copytree(ROOT / "tests", work / "mutants" / "tests",
                        ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache"))
    names = list(only)
    if sample:
        every = mutant_names(work)
        names = sorted(random.Random(seed).sample(every, min(sample, len(every))))
        print(f"[{name}] sample of {len(names)} out of {len(every)} mutants (seed {seed})", flush=True)
    t0 = time.time()
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names]
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
    if a.show:
        for n in names:
            for k in row(n, results(n))["alive"]:
                out = subprocess.run([sys.executable, "-m", "mutmut", "show", k], cwd=WORK / n,
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
