"""sim/ is the bottom layer: it imports nothing from the packages built on it, and its modules import
each other without a circle (imports under ``TYPE_CHECKING`` count: they are dependencies too)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[2] / "sim"
UPPER = ("policies", "experiments", "calibrate", "figures", "traces")


def imports(root: Path) -> dict[str, set[str]]:
    """Each module's imported names under ``root`` (as package ``sim``; ``warmsim.`` dropped, relative
    imports resolved)."""
    out: dict[str, set[str]] = {}
    for f in sorted(root.rglob("*.py")):
        parts = ["sim", *f.relative_to(root).with_suffix("").parts]
        mod = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        pkg = mod if f.name == "__init__.py" else mod.rpartition(".")[0]
        names: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names |= {base} | {f"{base}.{a.name}" for a in node.names}
        out[mod] = {n.removeprefix("warmsim.") for n in names}
    return out


def upward(found: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((m, n) for m, names in found.items() for n in names if n.split(".")[0] in UPPER)


def check_no_circle(found: dict[str, set[str]]) -> None:
    """Raise :class:`graphlib.CycleError` (naming the circle) if the modules import each other in one."""
    mods = set(found)

    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: {o for n in names if (o := owner(n)) and o != m} for m, names in found.items()}
    graphlib.TopologicalSorter(graph).prepare()


def test_sim_imports_no_upper_layer():
    assert upward(imports(SIM)) == []


def test_sim_modules_import_each_other_without_a_circle():
    check_no_circle(imports(SIM))


def test_the_checks_see_a_circle_and_an_upward_import(tmp_path):
    (tmp_path / "a.py").write_text("from warmsim.sim.b import X\nfrom warmsim.policies.types import Snapshot\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from . import a\n")
    found = imports(tmp_path)
    assert upward(found) == [("sim.a", "policies.types"), ("sim.a", "policies.types.Snapshot")]
    with pytest.raises(graphlib.CycleError):
        check_no_circle(found)
