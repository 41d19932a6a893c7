"""docs/extending.md runs as written (issue 21): each extension point's example, added by following the
page alone, runs in ``warmsim compare`` with no other file touched, and the Protocol signatures the
page gives are the code's.

A section's code blocks whose first line is ``# <path>`` are files. Those under ``warmsim_conf/`` go to a
scratch user config directory. Those under ``sim/`` or ``traces/`` (the simulator's and the traces'
tables) go into a scratch copy of the source tree, where a block ``# <path>: add ... <TABLE>`` is the one
import and the one table entry the recipe asks for; the copy is then the ``warmsim`` that runs
(``PYTHONPATH``), so the installed tree is never touched. The section's ``bash`` block is the command.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.exe import warmsim_exe

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "extending.md"
PACKAGES = ("warmsim", "sim", "policies", "traces", "calibrate", "experiments", "figures")


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def blocks(sec: str) -> list[tuple[str, str, str]]:
    """(language, first line without '# ', body) of each fenced block."""
    out = []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", sec, re.S):
        first = body.splitlines()[0]
        out.append((lang, first[2:].strip() if first.startswith("# ") else "", body))
    return out


def example(title: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """A section's files (path -> text), its table edits (header -> body) and its command."""
    files, edits, command = {}, {}, None
    for lang, head, body in blocks(section(title)):
        if lang == "bash":
            command = shlex.split(body.replace("\\\n", " "))
        elif head.startswith("signatures:") or not head:
            continue
        elif ": add" in head:
            edits[head] = body
        else:
            files[head] = body
    assert files and command and command[0] == "warmsim", title
    return files, edits, command[1:]


def add_entry(src: Path, head: str, body: str) -> None:
    """Apply ``# <path>: add this import, and NAME ... <TABLE>``: the import below the file's last
    ``from warmsim.`` import, and NAME at the end of TABLE (a tuple in a comprehension, or a dict
    literal keyed by the module's name)."""
    path, _, what = head.partition(": ")
    table = what.split()[-1]
    imports = [ln for ln in body.splitlines()[1:] if ln.startswith(("from ", "import "))]
    assert len(imports) == 1, head
    name = imports[0].split()[-1]
    f = src / path
    lines = f.read_text().splitlines()
    last = max(i for i, ln in enumerate(lines) if ln.startswith("from warmsim."))
    lines.insert(last + 1, imports[0])
    text = "\n".join(lines) + "\n"
    m = re.search(rf"^{table}\b[^=\n]*= ", text, re.M)
    assert m, f"{table} not found in {path}"
    depth, i = 0, m.end()
    while True:  # the table's statement ends where its brackets close
        depth += text[i] in "([{"
        depth -= text[i] in ")]}"
        i += 1
        if depth == 0:
            break
    stmt = text[m.end():i]
    if " for " in stmt:
        new = stmt[:stmt.rindex(")")] + f", {name}" + stmt[stmt.rindex(")"):]
    else:
        new = stmt[:stmt.rindex("}")] + f', "{name}": {name}' + stmt[stmt.rindex("}"):]
    f.write_text(text[:m.end()] + new + text[i:])


def run_example(tmp: Path, title: str) -> tuple[Path, subprocess.CompletedProcess]:
    files, edits, command = example(title)
    work = tmp / "work"
    work.mkdir()
    env = dict(os.environ)
    package_files = {p: b for p, b in files.items() if not p.startswith("warmsim_conf/")}
    if package_files or edits:
        src = tmp / "src"
        for p in PACKAGES:
            shutil.copytree(ROOT / p, src / p, ignore=shutil.ignore_patterns("__pycache__", "data"))
            if (ROOT / p / "data").is_dir():
                (src / p / "data").symlink_to(ROOT / p / "data", target_is_directory=True)
        for rel, body in package_files.items():
            assert not (src / rel).exists(), f"{rel} exists already: the example must add a new file"
            (src / rel).write_text(body)
        for head, body in edits.items():
            add_entry(src, head, body)
        env["PYTHONPATH"] = str(src)
    for rel, body in files.items():
        if rel.startswith("warmsim_conf/"):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(body)
    p = subprocess.run([warmsim_exe(), *command, f"hydra.run.dir={work / 'out'}"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return work / "out", p


def system_file(out: Path, name: str) -> dict:
    return yaml.safe_load((out / "systems" / f"{name}.yaml").read_text())


def test_a_router_by_name_for_one_compared_system(tmp_path):
    out, _ = run_example(tmp_path, "A router")
    assert system_file(out, "ondemand")["router"] == "packing"
    assert system_file(out, "static")["router"]["_target_"] == "warmsim.policies.routing.LeastLoadedRouter"
    s = pd.read_csv(out / "summary.csv")
    assert set(s.system) == {"ondemand", "static"} and (s.dropped == 0).all()


def test_a_predictor_by_name(tmp_path):
    out, _ = run_example(tmp_path, "A predictor")
    assert system_file(out, "warmserve")["predictor"] == "ewma"
    p = pd.read_csv(out / "predictions.csv").sort_values("window")
    assert len(p) >= 3
    mean = None
    for row in p.itertuples():  # the text: 0 first, then each observation moves it half way
        want = (0.0, 0.0) if mean is None else mean
        assert (row.pred_avg, row.pred_peak) == pytest.approx(want, rel=1e-9, abs=1e-12)
        obs = (row.obs_avg, row.obs_peak)
        mean = obs if mean is None else tuple(m + 0.5 * (o - m) for m, o in zip(mean, obs))


def test_an_autoscaler_by_name(tmp_path):
    out, _ = run_example(tmp_path, "An autoscaler")
    assert system_file(out, "ondemand")["autoscaler"] == "proportional"
    s = pd.read_csv(out / "summary.csv").set_index("model")
    assert s.loc["ALL", "cold_starts"] > 1  # no keep-alive: idle instances stop and start again


def test_an_activator_by_name(tmp_path):
    out, _ = run_example(tmp_path, "An activator")
    t = pd.read_parquet(out / "timeline.parquet")
    starts = t[(t.kind == "instance") & (t.state == "starting")]
    assert len(starts) and set(starts.gpus.astype(str)) == {"1"}  # the last GPU of the tiny cluster


def test_a_weight_source_is_one_module_and_one_table_entry(tmp_path):
    out, _ = run_example(tmp_path, "A weight source")
    t = pd.read_parquet(out / "timeline.parquet")
    starts = t[(t.kind == "instance") & (t.state == "starting")]
    assert len(starts) and set(starts.detail) == {"ssd_capped"}


def test_a_memory_switch_is_one_module_and_one_table_entry(tmp_path):
    out, _ = run_example(tmp_path, "A memory-switch mechanism")
    assert system_file(out, "warmserve_free_malloc")["mechanisms"]["memswitch"] == "deferred_free"
    assert (pd.read_csv(out / "summary.csv").requests > 0).all()


def test_a_trace_family_is_one_module_one_table_entry_and_its_config(tmp_path):
    out, _ = run_example(tmp_path, "A trace family (workload kind)")
    s = pd.read_csv(out / "summary.csv").set_index("model")
    assert s.loc["ALL", "requests"] == 120  # 0.2 req/s for 600 s, as the text says
    assert (pd.read_parquet(out / "requests.parquet").prompt_tokens == 512).all()


# ---- the signatures the page gives are the code's ------------------------------------------------

def _shape(cls_node: ast.ClassDef) -> dict[str, str]:
    """Each method's arguments and return annotation, and each annotated attribute's annotation; a
    read-only property counts as the attribute it exposes (a frozen dataclass field satisfies both)."""
    out = {}
    for node in cls_node.body:
        if isinstance(node, ast.FunctionDef) and any(isinstance(d, ast.Name) and d.id == "property"
                                                     for d in node.decorator_list):
            out[node.name] = ast.dump(node.returns) if node.returns else ""
        elif isinstance(node, ast.FunctionDef):
            out[node.name] = ast.dump(node.args) + " -> " + (ast.dump(node.returns) if node.returns else "")
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = ast.dump(node.annotation)
    return out


def _signature_blocks():
    text = DOC.read_text()
    for lang, head, body in blocks(text):
        if lang == "python" and head.startswith("signatures:"):
            yield head.split(":", 1)[1].strip(), body


@pytest.mark.parametrize("path,body", list(_signature_blocks()), ids=lambda v: v if v.endswith(".py") else "")
def test_the_documented_signatures_are_the_codes(path, body):
    module = importlib.import_module("warmsim." + path.removesuffix(".py").removesuffix("/__init__").replace("/", "."))
    documented = {n.name: n for n in ast.parse(body).body if isinstance(n, ast.ClassDef)}
    found = {n: c for n, c in vars(module).items() if isinstance(c, type) and getattr(c, "_is_protocol", False)
             and c.__module__.startswith("warmsim.")}
    # the Protocols defined there (or, for a module that re-exports them from elsewhere, all it holds)
    protocols = {n for n, c in found.items() if c.__module__ == module.__name__} or set(found)
    assert set(documented) == protocols, path  # every Protocol of the module, and only those
    for name, node in documented.items():
        real = ast.parse(textwrap.dedent(inspect.getsource(getattr(module, name)))).body[0]
        assert _shape(node) == _shape(real), f"{path} {name}"
