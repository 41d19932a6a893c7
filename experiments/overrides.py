"""Hydra overrides checked before anything runs: unknown groups, keys and values are one line (exit 2).

Used by the ``warmsim`` command (:mod:`warmsim.experiments.cli`) and the Python API
(:func:`warmsim.experiments.api.config`) alike.
"""

from __future__ import annotations

from warmsim.sim.errors import UserError

#: The config groups every command composes (experiments/conf/).
HYDRA_GROUPS = ("cluster", "models", "workload", "cost", "system", "slo")


def check_overrides(command: str, overrides: list[str], multirun: bool):
    """Parse the overrides; reject unknown group choices (every value of a sweep), ``+key`` that adds
    a key nothing reads, and anything hydra cannot compose; returns the composed config of the first
    job) and the keys a sweep varies. One line, exit 2 for every problem."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from warmsim.experiments.confpath import compose, group_choices
    from warmsim.experiments.confpath import groups as conf_groups

    groups = set(conf_groups())
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except (HydraException, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"bad override: {first}") from None
    first_job, adds, swept, hydra_items = [], [], set(), []
    for a, o in zip(overrides, parsed):
        key = o.key_or_group
        if o.is_sweep_override() and not multirun:
            raise UserError(f"override {a}: a sweep (several values) needs `warmsim {command} -m`")
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        if o.is_sweep_override():
            swept.add(o.get_key_element().lstrip("+~"))
        if key.split("@")[0] in groups and "/" not in key and not o.is_delete():
            known = group_choices(key)
            for v in values:
                if v not in known and not (v == "null" and key not in HYDRA_GROUPS):
                    raise UserError(f"override {a}: unknown {key} '{v}' (known: {', '.join(known)})")
        one = f"{o.get_key_element()}={values[0]}" if o.is_sweep_override() else a
        if key.startswith("hydra"):
            hydra_items.append(one)
            continue
        first_job.append(one)
        if (o.is_add() or o.is_force_add()) and key.split("@")[0] not in groups and not key.startswith("overrides."):
            adds.append((a, key))
    try:
        cfg = compose(first_job)
        if adds:
            base = compose([x for x in first_job if not x.startswith("+")])
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        from warmsim.experiments.systems import hint_for
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = next((hint_for(a) for a in first_job if hint_for(a)), "") if command == "compare" else ""
        raise UserError(f"bad override: {first}{hint}") from None
    if hydra_items:  # hydra's own settings (a launcher, a directory), composed as hydra will
        try:
            compose(hydra_items, return_hydra_config=True)
        except (HydraException, OmegaConfBaseException, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            extra = (" (hydra/launcher=ray needs `pip install warmsim[ray]`, submitit_slurm `warmsim[slurm]`, "
                     "joblib `hydra-joblib-launcher`; docs/sweeps.md)") if "launcher" in first else ""
            raise UserError(f"bad override: {first}{extra}") from None
    from warmsim.experiments.systems import check_system_keys, is_mechanism_key
    check_system_keys(command, cfg, first_job)
    deleted = {o.key_or_group for o in parsed if o.is_delete()}
    for a, key in adds:
        if OmegaConf.select(base, key, default=None) is not None:
            continue  # ++key on an existing key: a plain override
        if key in deleted:
            continue  # `~key +key={...}`: the whole slot replaced (a policy of another class, docs/configs.md)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        node = OmegaConf.select(base, parent, default=None) if parent else None
        if node is not None and OmegaConf.is_dict(node) and "_target_" in node:
            continue  # an argument of a policy: the policy's constructor checks it
        if is_mechanism_key(key):
            continue  # a mechanism flag the system's file leaves at its default: checked with the bundle
        if key.startswith("system.mechanisms."):
            from warmsim.policies.bundle import MECHANISM_KNOBS
            raise UserError(f"override {a}: unknown mechanism '{key.rsplit('.', 1)[1]}' (known: "
                            f"{', '.join(MECHANISM_KNOBS)}: the fields of policies/bundle.py Bundle)")
        raise UserError(f"override {a}: unknown config key '{key}' (a '+' override adds a key that nothing "
                        "reads; see experiments/conf/)")
    return cfg, swept
