"""The project's import graph has one direction: no import circle anywhere, sim/ imports no layer above
it, and only calibrate/ imports torch.

A small AST walk over every module of the packages (imports under ``TYPE_CHECKING`` and inside
functions included: a circle that only runs late is still a circle in the design; relative imports
resolved). A module is named as in the source tree (``sim.engine``), ``warmsim.sim.engine`` and
``sim.engine`` being the same module; an import of a name inside a module (``from warmsim.sim.cost
import LINKS``) is an import of that module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The repository's packages (folders at the root; ``warmsim`` is the top package holding the API names).
PACKAGES = ("sim", "policies", "traces", "calibrate", "experiments", "figures", "warmsim")
#: What sim/ must not import: the layers built on it.
ABOVE_SIM = ("policies", "experiments", "calibrate", "figures")

def _modules(root: Path) -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


def _local(name: str) -> str:
    """``warmsim.sim.x`` -> ``sim.x``; ``warmsim`` stays the top package."""
    return name[len("warmsim."):] if name.startswith("warmsim.") else name


def _imports(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports (absolute, ``warmsim.`` dropped), its names included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(_local(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                base = _local(base) if base.startswith("warmsim.") else base
            else:
                base = _local(node.module or "")
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the project's modules it imports, module -> the outside top-level names it imports)."""
    mods = _modules(root)
    inside: dict[str, set[str]] = {m: set() for m in mods}
    outside: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for name in _imports(m, f):
            target = name
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target:
                if target != m:
                    inside[m].add(target)
            elif name.split(".")[0] not in PACKAGES:
                outside[m].add(name.split(".")[0])
    return inside, outside


def circles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    comp.add(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_walk_sees_circles_upward_imports_and_torch(tmp_path):
    """The checker itself, on a hand-made tree: a relative-import circle, an import under TYPE_CHECKING,
    sim/ importing policies/, and torch outside calibrate/ are all found."""
    for pkg in ("sim", "policies", "experiments", "calibrate"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "sim" / "a.py").write_text("from .b import x\n")
    (tmp_path / "sim" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                           "    from warmsim.sim.a import y\n")
    (tmp_path / "sim" / "c.py").write_text("def f():\n    from warmsim.policies import types\n")
    (tmp_path / "experiments" / "d.py").write_text("import torch.nn\n")
    (tmp_path / "calibrate" / "e.py").write_text("import torch\nfrom ..sim import c\n")
    inside, outside = import_graph(tmp_path)
    assert circles(inside) == [frozenset({"sim.a", "sim.b"})]
    assert inside["sim.c"] == {"policies"} and inside["calibrate.e"] == {"sim", "sim.c"}  # a package runs its __init__
    assert outside["experiments.d"] == {"torch"} and outside["calibrate.e"] == {"torch"}


def test_no_import_circle_anywhere():
    inside, _ = import_graph()
    found = circles(inside)
    assert not found, f"import circles: {[sorted(c) for c in found]}"


def test_sim_imports_no_layer_above_it():
    inside, _ = import_graph()
    upward = {(m, t) for m, ts in inside.items() if _top(m) == "sim" for t in ts if _top(t) in ABOVE_SIM}
    assert not upward, f"sim/ imports upward: {sorted(upward)}"


def test_only_calibrate_imports_torch():
    _, outside = import_graph()
    bad = sorted(m for m, names in outside.items() if "torch" in names and _top(m) != "calibrate")
    assert not bad, f"torch imported outside calibrate/: {bad}"
