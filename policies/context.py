"""What a policy may know about the run beyond a snapshot: the served models and step costs.

The builder makes one :class:`RunContext` per system and hands it to every policy that defines
``with_context(ctx)`` (which returns the policy ready to run), so no builder code recognises policy
classes. A policy still decides from snapshots; the context only answers "how long would a step of
model M at TP t take", which planners such as MuxServe's placer estimate throughput from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warmsim.sim.cost import CostModel
from warmsim.sim.models import ServedModel

if TYPE_CHECKING:
    from warmsim.policies.base import SharingModel


@dataclass(frozen=True)
class RunContext:
    """The run's models, cost model and GPU-sharing model, read-only."""

    models: Mapping[str, ServedModel]
    cost: CostModel
    #: The bundle's sharing model.
    sharing: SharingModel | None = None
    #: Each model's share of the requests as the workload's recipe sets it (``Workload.meta["shares"]``,
    #: e.g. the ``(j+1)^-alpha`` split), before sampling; None when the workload states none.
    rate_shares: Mapping[str, float] | None = None

    def model_at(self, name: str, tp: int) -> ServedModel:
        """``name`` served at tensor-parallel degree ``tp``."""
        return self.models[name].at_tp(tp)

    def prefill_s(self, model: str, tp: int, tokens: int, seqs: int) -> float:
        """One prefill step of ``model`` at ``tp`` on whole GPUs."""
        return self.cost.prefill_s(self.model_at(model, tp), int(tokens), int(seqs))

    def decode_s(self, model: str, tp: int, batch: int, ctx_tokens: int) -> float:
        """One decode step of ``model`` at ``tp`` on whole GPUs."""
        return self.cost.decode_coeffs(self.model_at(model, tp)).step_s(int(batch), int(ctx_tokens))
