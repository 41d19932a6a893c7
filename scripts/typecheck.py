"""Type-check the packages that must stay type-clean (sim/ and policies/) under their installed names.

The design card's folders sit at the repository root and install as ``warmsim.sim``, ``warmsim.policies``,
...; mypy cannot follow setuptools' editable-install finder, so this lays the folders out as the
``warmsim`` package in a scratch directory (symbolic links, nothing copied) and runs mypy there with the
``[tool.mypy]`` section of pyproject.toml. Exit status is mypy's.

    python scripts/typecheck.py            # sim/ and policies/
    python scripts/typecheck.py experiments  # any of the packages, by folder name
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sim", "policies", "traces", "calibrate", "experiments", "figures")
CHECKED = ("sim", "policies")


def main(argv: list[str]) -> int:
    wanted = argv or list(CHECKED)
    unknown = [w for w in wanted if w not in PACKAGES]
    if unknown:
        print(f"typecheck: unknown package(s) {', '.join(unknown)}; choose from {', '.join(PACKAGES)}",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="warmsim-typecheck-") as tmp:
        top = Path(tmp) / "warmsim"
        top.mkdir()
        (top / "__init__.py").symlink_to(ROOT / "warmsim" / "__init__.py")
        for p in PACKAGES:
            (top / p).symlink_to(ROOT / p, target_is_directory=True)
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               *[a for w in wanted for a in ("-p", f"warmsim.{w}")]]
        return subprocess.run(cmd, cwd=tmp, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
