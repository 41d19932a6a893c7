"""Regenerate the golden summaries after an intended change of the model.

    python -m tests.golden.regen [small|paper ...]

Refuses to run in CI (``CI`` set): a golden file is a record of what a commit produced, written on
purpose by a person who then explains the change in the commit message. Each summary gets a
``.meta.json`` beside it naming the commit it was produced from (with ``+dirty`` when the working tree
had uncommitted changes), the overrides and the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.golden.cases import CASES, HERE, run_case


def _commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def main(argv: list[str]) -> int:
    if os.environ.get("CI"):
        print("regen: refusing to regenerate golden files in CI (CI is set)", file=sys.stderr)
        return 2
    names = argv or sorted(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"regen: unknown case(s) {', '.join(unknown)} (known: {', '.join(sorted(CASES))})", file=sys.stderr)
        return 2
    commit = _commit()
    for name in names:
        case = CASES[name]
        run_case(case).to_csv(case.csv, index=False)
        case.meta.write_text(json.dumps({"commit": commit, "overrides": list(case.overrides),
                                         "systems": list(case.systems),
                                         "command": f"python -m tests.golden.regen {name}"}, indent=1) + "\n")
        print(f"wrote {case.csv.name} ({commit})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
