"""User config directories (issue 14): ``./warmsim_conf/``, ``WARMSIM_CONFIG_DIR`` and ``--config-dir``
add and override models, clusters, systems and policies without touching the install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.exe import warmsim_exe

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "experiments" / "conf"
TINY = ["cluster=tiny", "workload=synthetic", "workload.duration_s=60", "workload.total_rate=1",
        "workload.tokens_from=null", "workload.prompt_tokens=200", "workload.output_tokens=20"]

DOCS = (ROOT / "docs" / "configs.md").read_text()


def doc_block(lang: str, first_line: str) -> str:
    """The code block of docs/configs.md in ``lang`` whose first line is ``first_line``."""
    for block in re.findall(rf"```{lang}\n(.*?)```", DOCS, re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"docs/configs.md lacks the {lang} block starting {first_line!r}")


def warmsim(*args, cwd, env=None):
    exe = warmsim_exe()
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def user_dir(root: Path) -> Path:
    """A user config directory: a new model shape, a models list on it, a system using an own
    policy (a module next to the YAML files), and a replaced shipped cluster (2 nodes)."""
    d = root / "warmsim_conf"
    for g in ("model", "models", "system", "cluster"):
        (d / g).mkdir(parents=True)
    shape = yaml.safe_load((SHIPPED / "model" / "llama-2-7b.yaml").read_text())
    shape["name"] = "my-7b"
    (d / "model" / "my-7b.yaml").write_text(yaml.safe_dump(shape))
    (d / "models" / "mine.yaml").write_text("- {name: mine, base: my-7b, tp: 1}\n")
    # the own-policy example of docs/configs.md, as written there
    (d / "system" / "mystatic.yaml").write_text(doc_block("yaml", "# warmsim_conf/system/mystatic.yaml"))
    (d / "mypolicies.py").write_text(doc_block("python", "# warmsim_conf/mypolicies.py"))
    tiny = (SHIPPED / "cluster" / "tiny.yaml").read_text().replace("nodes: 1 ", "nodes: 2 ")
    (d / "cluster" / "tiny.yaml").write_text(tiny)
    return d


def test_a_user_config_directory_adds_models_systems_and_policies(tmp_path):
    user_dir(tmp_path)
    out = tmp_path / "run"
    p = warmsim("compare", *TINY, "models=mine", "systems=[static,mystatic]", f"hydra.run.dir={out}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    s = pd.read_csv(out / "summary.csv")
    assert set(s.model) == {"mine", "ALL"} and set(s.system) == {"static", "mystatic"}
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["cluster"]["nodes"] == 2  # the user's tiny.yaml replaced the shipped one
    mine = yaml.safe_load((out / "systems" / "mystatic.yaml").read_text())
    assert mine["router"]["_target_"] == "mypolicies.OldestFirstRouter"


def test_the_environment_variable_and_config_dir_option_name_other_directories(tmp_path):
    d = user_dir(tmp_path / "elsewhere")
    work = tmp_path / "work"
    work.mkdir()
    base = [*TINY, "models=mine", "systems=[mystatic]"]
    p = warmsim("compare", *base, f"hydra.run.dir={work / 'a'}", cwd=work, env={"WARMSIM_CONFIG_DIR": str(d)})
    assert p.returncode == 0, p.stderr
    p = warmsim("compare", "--config-dir", str(d), *base, f"hydra.run.dir={work / 'b'}", cwd=work)
    assert p.returncode == 0, p.stderr
    # without the directory the names are unknown: one line, exit 2
    p = warmsim("compare", *base, f"hydra.run.dir={work / 'c'}", cwd=work)
    assert p.returncode == 2 and "unknown models 'mine'" in p.stderr and "Traceback" not in p.stderr
    p = warmsim("compare", "--config-dir", str(work / "nope"), *base, cwd=work)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--config-dir" in p.stderr


@pytest.mark.slow
def test_a_non_editable_install_reads_the_user_directory(tmp_path, installed_site):
    """``pip install --target`` (a copy, as ``pip install .`` makes) runs a compare on a user model."""
    target = installed_site
    work = tmp_path / "work"
    work.mkdir()
    user_dir(work)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import warmsim.experiments as e; print(e.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    p = subprocess.run([sys.executable, "-m", "warmsim.experiments.cli", "compare", *TINY, "models=mine",
                        "systems=[mystatic]", f"hydra.run.dir={work / 'r'}"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert set(pd.read_csv(work / "r" / "summary.csv").model) == {"mine", "ALL"}
