"""How much slower one step of a colocated engine runs than the same step alone on its GPUs.

MuxServe (and WarmServe's emulation of it) runs every colocated model in its own process under
NVIDIA MPS, each limited to a percentage of the SMs (``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE``). The
simulator models that as: the engine's isolated step time (from the cost model) divided by its
compute share, times a contention factor that grows with the number of engines sharing the GPUs
(memory bandwidth, L2 and scheduler interference that SM partitioning does not isolate).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import UserError


def colocated_step_time(isolated_s: float, compute_share: float, n_colocated: int,
                        contention: float) -> float:
    """Step time of an engine holding ``compute_share`` of its GPUs' SMs while ``n_colocated``
    engines (itself included) share those GPUs:
    ``isolated_s / compute_share * (1 + contention * (n_colocated - 1))``.

    ``compute_share`` in (0, 1]; ``n_colocated`` >= 1; ``contention`` >= 0 (the fractional slowdown
    each additional colocated engine adds). Alone with the whole GPU (share 1, n 1) it is
    ``isolated_s``.
    """
    if isolated_s < 0:
        raise ValueError(f"isolated_s must be >= 0, got {isolated_s}")
    if not 0 < compute_share <= 1:
        raise ValueError(f"compute_share must be in (0, 1], got {compute_share}")
    if n_colocated < 1:
        raise ValueError(f"n_colocated must be >= 1, got {n_colocated}")
    if contention < 0:
        raise ValueError(f"contention must be >= 0, got {contention}")
    return isolated_s / compute_share * (1.0 + contention * (n_colocated - 1))


@dataclass(frozen=True)
class ColocationSlowdown:
    """:func:`colocated_step_time` with its ``contention`` fixed from configuration.

    The calibration profile's ``Interference`` measures a weight copy against compute, not two
    computing processes against each other, so it does not apply here; ``contention`` is a config
    knob until the harness measures two MPS clients side by side.
    """

    #: Fractional step-time increase per additional engine on the same GPUs, beyond the division by
    #: the compute share. Default 0.0 [I]: no published number; the division by the share already
    #: slows a memory-bound decode step more than MPS does, so 0 is the neutral choice. Raise it to
    #: study sensitivity.
    contention: float = 0.0

    def __post_init__(self) -> None:
        if self.contention < 0:
            raise UserError(f"muxserve: contention must be >= 0, got {self.contention}")

    def step_s(self, isolated_s: float, compute_share: float, n_colocated: int) -> float:
        """Step time of one colocated engine; see :func:`colocated_step_time`."""
        return colocated_step_time(isolated_s, compute_share, n_colocated, self.contention)
