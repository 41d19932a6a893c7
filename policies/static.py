"""Static dedicated allocation: fixed GPUs per model, sized for its peak, no loading after start."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from warmsim.policies.types import Activate, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import Knob


@dataclass(frozen=True)
class StaticPlacer:
    """Create ``instances[model]`` dedicated instances at time 0 on the lowest free GPU groups.

    Models are placed largest TP first so that TP groups find whole free GPU runs inside a node.
    """

    instances: Mapping[str, int]

    def __post_init__(self) -> None:
        if not isinstance(self.instances, Mapping):
            raise UserError(f"StaticPlacer.instances: got {self.instances!r}; allowed: \"auto\" in a config, or a "
                            "mapping model -> instances (a whole number >= 1 each)")
        for m, n in self.instances.items():
            Knob("int", 1, 100_000, help="a model the static system serves gets at least one instance: it "
                 "starts nothing later").check(f"StaticPlacer.instances.{m}", n, label="")

    def place(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[Activate]:
        unknown = sorted(set(self.instances) - set(snap.models))
        if unknown:
            raise UserError(f"StaticPlacer.instances: unknown model(s) {', '.join(unknown)} (models: "
                            f"{', '.join(snap.models)})")
        taken: set[int] = set()
        plans: list[Activate] = []
        for name in sorted(self.instances, key=lambda m: (-snap.models[m].tp, m)):
            tp = snap.models[name].tp
            for _ in range(self.instances[name]):
                group = _first_free_group(snap, tp, taken)
                if group is None:
                    need = sum(self.instances[m] * snap.models[m].tp for m in self.instances)
                    raise UserError(f"system static: {dict(self.instances)} needs {need} GPUs in TP groups "
                                    f"inside nodes; the cluster has {len(snap.gpus)}")
                taken.update(group)
                plans.append(Activate(name, group, source="prewarmed"))
        return plans


def _first_free_group(snap: Snapshot, tp: int, taken: set[int]) -> tuple[int, ...] | None:
    for node in range(snap.n_nodes):
        free = [g for g in snap.node_gpus(node) if g not in taken]
        if len(free) >= tp:
            return tuple(free[:tp])
    return None


def size_for_peak(peak_inflight: Mapping[str, float], tp: Mapping[str, int], per_instance: int,
                  n_gpus: int, headroom: float = 1.0) -> dict[str, int]:
    """Instances per model to serve ``headroom`` x its peak in-flight load at ``per_instance`` each,
    scaled down proportionally (at least one each) when the cluster is too small."""
    want = {m: max(1, math.ceil(p * headroom / per_instance - 1e-9)) for m, p in peak_inflight.items()}
    while sum(want[m] * tp[m] for m in want) > n_gpus and any(v > 1 for v in want.values()):
        m = max((m for m in want if want[m] > 1), key=lambda m: (want[m] * tp[m] / max(peak_inflight[m], 1e-9), m))
        want[m] -= 1
    return want
