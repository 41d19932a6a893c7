"""Which system configs a run uses, with per-system overrides.

``warmsim compare`` runs every system in ``systems``; a knob of one of them is set by

    overrides.<system>.<key>=value        e.g.  overrides.muxserve.initial.max_gpus=4

(the CLI adds hydra's ``++``; in a config file or an experiment overlay it is the ``overrides:``
mapping). ``warmsim run`` applies ``overrides.<its system>`` too. Each key must exist in that system's
config, or sit under a policy (a node with ``_target_``), whose constructor checks its arguments. A
policy node with another ``_target_`` replaces the slot whole (the old class's arguments are not
merged into the new one's).
Each run directory keeps every system's resolved config in ``systems/<name>.yaml``.

``system.<key>=value`` sets the ``system`` group (default ``static``), which ``compare`` runs only
when ``systems`` lists it; :func:`check_system_keys` says so instead of hydra's "not in struct".
"""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from warmsim.sim.errors import UserError

KEY = "overrides"


def _leaves(node: Mapping, prefix: str = ""):
    for k, v in node.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and "_target_" not in v:
            yield from _leaves(v, path + ".")
        else:
            yield path, v


def is_mechanism_key(key: str) -> bool:
    """A key every system has even when its file leaves it out: ``system.mechanisms.<flag>`` (or
    ``mechanisms.<flag>``) for a flag the Bundle has (:data:`warmsim.policies.bundle.MECHANISM_KNOBS`),
    and ``system.<slot>`` for a policy slot or a system knob (``experiments.builder.POLICY_SLOTS``,
    ``SYSTEM_KNOBS``), e.g. ``+system.placer={_target_: ...}`` on a system without a placer."""
    from warmsim.experiments.builder import POLICY_SLOTS, SYSTEM_KNOBS
    from warmsim.policies.bundle import MECHANISM_KNOBS
    parts = key.split(".")
    if parts and parts[0] == "system":
        parts = parts[1:]
    if len(parts) == 1:
        return parts[0] in POLICY_SLOTS or parts[0] in SYSTEM_KNOBS
    return len(parts) == 2 and parts[0] == "mechanisms" and parts[1] in MECHANISM_KNOBS


def _check_key(scfg: DictConfig, name: str, path: str) -> None:
    if OmegaConf.select(scfg, path, default="__missing__") != "__missing__":
        return
    if is_mechanism_key(path):
        return
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        parent = OmegaConf.select(scfg, ".".join(parts[:i]), default=None)
        if parent is not None:
            if OmegaConf.is_dict(parent) and "_target_" in parent and i == len(parts) - 1:
                return  # an argument of a policy: its constructor checks it
            break
    top = ", ".join(str(k) for k in scfg.keys())
    raise UserError(f"config key {KEY}.{name}.{path}: system '{name}' has no key '{path}' (its keys: {top}; "
                    f"see systems/{name}.yaml of a run, or experiments/conf/system/{name}.yaml)")


def per_system(cfg) -> dict:
    """The ``overrides`` mapping as plain dicts (empty when absent); a UserError for a bad shape."""
    node = cfg.get(KEY) if hasattr(cfg, "get") else None
    if node is None:
        return {}
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if not isinstance(plain, Mapping):
        raise UserError(f"config key {KEY}: got {plain!r}; allowed: a mapping system -> knobs, "
                        f"e.g. {KEY}.muxserve.initial.max_gpus=4")
    for name, knobs in plain.items():
        if not isinstance(knobs, Mapping):
            raise UserError(f"config key {KEY}.{name}: got {knobs!r}; allowed: knobs of system '{name}', "
                            f"e.g. {KEY}.{name}.<key>=value")
    return dict(plain)


def apply(scfg: DictConfig, knobs: Mapping, name: str) -> DictConfig:
    """``scfg`` with ``knobs`` merged in, each key checked against the system's config."""
    out = OmegaConf.create(OmegaConf.to_container(scfg, resolve=True))
    for path, value in _leaves(knobs):
        _check_key(out, name, path)
        old = OmegaConf.select(out, path, default=None)
        swap = (isinstance(value, Mapping) and "_target_" in value and OmegaConf.is_dict(old)
                and old.get("_target_") != value["_target_"])  # another class: the whole slot, not a merge
        OmegaConf.update(out, path, value, merge=not swap, force_add=True)
    return out


def resolve(cfg, names: list[str] | None = None, strict: bool = True) -> list[DictConfig]:
    """The system configs to run: ``names`` (default ``cfg.systems``), each composed from its file
    (``cfg.system`` itself when it is that system) with ``overrides.<name>`` applied; ``strict``: an
    override for a system not run is an error (``compare``), else ignored (``run`` in a sweep)."""
    from warmsim.experiments.builder import system_config
    names = list(cfg.systems or []) if names is None else list(names)
    if not names:
        raise UserError("config key systems: empty; name at least one system")
    over = per_system(cfg)
    stray = [n for n in over if n not in names]
    if stray and strict:
        raise UserError(f"config key {KEY}.{stray[0]}: '{stray[0]}' is not run here (systems: {', '.join(names)}); "
                        f"per-system knobs go to a system that runs")
    out = []
    for n in names:
        base = cfg.system if cfg.system is not None and cfg.system.get("name") == n else system_config(n)
        out.append(apply(base, over.get(n) or {}, n) if n in over else base)
    return out


def check_system_keys(command: str, cfg, overrides: list[str]) -> None:
    """``compare`` with ``system.<key>=...`` for a system it does not run: say how to set it."""
    if command != "compare":
        return
    keys = [a for a in overrides if a.lstrip("+~").startswith("system.")]
    name = cfg.system.get("name") if cfg.get("system") is not None else None
    if keys and name not in list(cfg.systems or []):
        k = keys[0].lstrip("+~").split("=", 1)
        raise UserError(f"override {keys[0]}: `system.` sets the system group ('{name}'), which `systems` does not "
                        f"list; for a compared system write {KEY}.<system>.{k[0][len('system.'):]}={k[1] if len(k) > 1 else '...'}")


def hint_for(override: str) -> str:
    """A hint appended to hydra's composition error of a ``system.<key>`` override."""
    key = override.lstrip("+~").split("=", 1)[0]
    if key.startswith("system."):
        return (f" (in `warmsim compare`, `system.` is the default system; per-system knobs: "
                f"{KEY}.<system>.{key[len('system.'):]}=value)")
    return ""


def rewrite(overrides: list[str]) -> list[str]:
    """``overrides.<system>.<key>=v`` -> ``++overrides...`` (the mapping starts empty, so hydra
    needs the add form); everything else unchanged."""
    out = []
    for a in overrides:
        if a.startswith(f"{KEY}.") and "=" in a:
            a = "++" + a
        elif a.startswith(f"+{KEY}.") and not a.startswith(f"++{KEY}."):
            a = "+" + a
        out.append(a)
    return out
