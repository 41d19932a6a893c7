"""Checks shared by every plan that names a model on a TP group (activations, prewarms)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from warmsim.sim.errors import PlanError
from warmsim.sim.models import ServedModel

if TYPE_CHECKING:
    from warmsim.sim.cluster import GPU


def check_group(models: Mapping[str, ServedModel], gpus_: Sequence[GPU], model_name: str, gpus: tuple[int, ...],
                what: str, tp: int | None = None) -> ServedModel:
    """The model (at ``tp``) a plan names, if ``gpus`` is a valid TP group for it on GPUs ``gpus_``;
    a :class:`~warmsim.sim.errors.PlanError` naming the plan (``what``) otherwise."""
    model = models.get(model_name)
    if model is None:
        raise PlanError(f"{what}: unknown model {model_name}")
    if tp is not None and tp != model.tp:
        if tp < 1 or model.shape.heads % tp:
            raise PlanError(f"{what} {model_name}: tp {tp} does not divide its {model.shape.heads} heads")
        model = model.at_tp(tp)
    if len(gpus) != model.tp or len(set(gpus)) != len(gpus):
        raise PlanError(f"{what} {model_name}: needs {model.tp} distinct GPUs, got {gpus}")
    if any(g < 0 or g >= len(gpus_) for g in gpus):
        raise PlanError(f"{what} {model_name}: GPU id out of range in {gpus}")
    if len({gpus_[g].node for g in gpus}) != 1:
        raise PlanError(f"{what} {model_name}: TP group {gpus} spans nodes")
    return model
