"""The model catalog: shapes of real models, one YAML file each in ``experiments/conf/model/``.

The same files form hydra's ``model/`` config group, so a user adds a model by adding a file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from warmsim.sim.errors import UserError
from warmsim.sim.models import ModelShape

CATALOG_DIR = Path(__file__).resolve().parent.parent / "experiments" / "conf" / "model"
_FIELDS = ("name", "layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab",
           "dtype_bytes", "max_model_len")


def known_models() -> list[str]:
    """Names of every model in the catalog."""
    return sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))


def shape_from_mapping(d: dict, where: str) -> ModelShape:
    """Build a :class:`ModelShape` from a mapping, naming ``where`` in errors."""
    missing = [f for f in _FIELDS if f not in d]
    if missing:
        raise UserError(f"{where}: model shape lacks {', '.join(missing)}")
    try:
        sizes = {f: int(d[f]) for f in _FIELDS if f != "name"}
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: model shape field is not an integer ({e})") from None
    bad = [f for f in sizes if sizes[f] <= 0]
    if bad:
        raise UserError(f"{where}: model shape fields must be positive: {', '.join(bad)}")
    return ModelShape(name=str(d["name"]), **sizes)


@cache
def get_shape(name: str) -> ModelShape:
    """The catalog's shape called ``name``; :class:`UserError` naming the known ones otherwise."""
    path = CATALOG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown model '{name}' (known: {', '.join(known_models())})")
    return shape_from_mapping(yaml.safe_load(path.read_text()) or {}, str(path))
