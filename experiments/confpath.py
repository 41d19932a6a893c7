"""Where warmsim looks for configs: user config directories in front of the shipped ones.

A user config directory has the layout of ``experiments/conf/`` (``model/``, ``models/``,
``cluster/``, ``workload/``, ``system/``, ``experiment/``, ...): a file there adds a choice to its
group, and a file with a shipped name replaces the shipped one. Directories, first wins:

1. ``--config-dir DIR`` (``-cd DIR``) given to ``warmsim compare`` / ``run`` (repeatable);
2. ``WARMSIM_CONFIG_DIR`` (one directory, or several separated by ``:``);
3. ``./warmsim_conf/`` in the working directory, when it exists;
4. the shipped ``experiments/conf/`` of the installed package.

Nothing needs an editable install: hydra's search path gets the user directories in front of the
shipped one through a search-path plugin registered at run time (:func:`register`), and everything
else that lists or reads configs (group choices, model shapes, the schema's known keys) goes through
:func:`search_dirs`. The CLI exports the resolved list in ``WARMSIM_CONFIG_DIR`` (absolute paths),
so that sweep jobs in other processes (joblib, Ray, submitit) see the same directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from warmsim.sim.errors import UserError

#: The shipped config directory.
CONF_DIR = Path(__file__).resolve().parent / "conf"
ENV = "WARMSIM_CONFIG_DIR"
LOCAL = "warmsim_conf"

#: Directories given on the command line (``--config-dir``), first wins.
_cli_dirs: list[Path] = []


def set_cli_dirs(dirs: list[str | Path]) -> None:
    """Directories from ``--config-dir`` (checked: each must be a directory)."""
    out = []
    for d in dirs:
        p = Path(d).expanduser().resolve()
        if not p.is_dir():
            raise UserError(f"--config-dir {d}: not a directory")
        out.append(p)
    _cli_dirs[:] = out


def user_dirs(cwd: Path | None = None) -> list[Path]:
    """The user config directories, first wins (see the module docstring); duplicates once."""
    found: list[Path] = list(_cli_dirs)
    env = os.environ.get(ENV, "")
    for part in env.split(os.pathsep):
        if part.strip():
            p = Path(part.strip()).expanduser().resolve()
            if not p.is_dir():
                raise UserError(f"{ENV}={env}: {part.strip()} is not a directory")
            found.append(p)
    local = (cwd or Path.cwd()) / LOCAL
    if local.is_dir():
        found.append(local.resolve())
    out: list[Path] = []
    for p in found:
        if p not in out and p != CONF_DIR:
            out.append(p)
    return out


def search_dirs() -> list[Path]:
    """User directories, then the shipped one."""
    return [*user_dirs(), CONF_DIR]


def export() -> None:
    """Put the resolved user directories into ``WARMSIM_CONFIG_DIR`` for child processes."""
    dirs = user_dirs()
    if dirs:
        os.environ[ENV] = os.pathsep.join(str(d) for d in dirs)


def group_choices(group: str) -> list[str]:
    """Names of the configs in ``group`` over every search directory."""
    names = set()
    for d in search_dirs():
        names |= {p.stem for p in (d / group).glob("*.yaml")}
    return sorted(names)


def groups() -> list[str]:
    """Config group names (sub-directories) over every search directory."""
    names = set()
    for d in search_dirs():
        names |= {p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    return sorted(names)


def find(group: str, name: str) -> Path | None:
    """The file ``<group>/<name>.yaml`` that wins (first search directory holding it), or None."""
    for d in search_dirs():
        p = d / group / f"{name}.yaml"
        if p.is_file():
            return p
    return None


def model_shape(name: str):
    """A model shape: ``model/<name>.yaml`` of a user directory, else the shipped catalog."""
    from warmsim.sim.catalog import get_shape, shape_from_mapping
    for d in user_dirs():
        p = d / "model" / f"{name}.yaml"
        if p.is_file():
            try:
                data = yaml.safe_load(p.read_text()) or {}
            except (OSError, yaml.YAMLError) as e:
                raise UserError(f"{p}: not a readable YAML file ({' '.join(str(e).split())})") from None
            if not isinstance(data, dict):
                raise UserError(f"{p}: want a mapping of the model's shape")
            return shape_from_mapping(data, str(p))
    try:
        return get_shape(name)
    except UserError:
        raise UserError(f"unknown model '{name}' (known: {', '.join(group_choices('model'))}; "
                        "a new one is a file model/NAME.yaml in a user config directory, docs/configs.md)") from None


# ---- hydra ------------------------------------------------------------------------------------------
from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery  # noqa: E402
from hydra.plugins.search_path_plugin import SearchPathPlugin  # noqa: E402


class WarmsimUserConfigs(SearchPathPlugin):
    """Puts the user config directories in front of warmsim's shipped ``conf/`` (only in a search
    path that holds it: other hydra applications are left alone)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        forms = (str(CONF_DIR), f"file://{CONF_DIR}")
        shipped = next((e.path for e in search_path.get_path() if e.path in forms), None)
        if shipped is None:
            return
        for d in user_dirs():
            path = f"file://{d}"
            if not any(e.path in (path, str(d)) for e in search_path.get_path()):
                search_path.prepend("warmsim-user", path, anchor=SearchPathQuery(path=shipped))


def register() -> None:
    """Register the search-path plugin with hydra (idempotent)."""
    from hydra.core.plugins import Plugins
    Plugins.instance().register(WarmsimUserConfigs)


def compose(overrides: list[str] = (), return_hydra_config: bool = False):
    """hydra's compose of ``config`` over the search directories (inside an initialized hydra, e.g. a
    job, its own search path, which holds the same directories)."""
    from hydra import compose as _compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    register()
    if GlobalHydra.instance().is_initialized():
        return _compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return _compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def add_import_paths() -> None:
    """Make Python modules in the user config directories importable (``_target_: mymod.MyPolicy``
    with ``mymod.py`` next to the YAML files); appended, so they never shadow installed packages."""
    import sys
    for d in [*user_dirs(), Path.cwd()]:
        if str(d) not in sys.path:
            sys.path.append(str(d))
