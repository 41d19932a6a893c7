"""The engine's limits and features (vLLM's knobs), one frozen record per run (``engine:`` in the
config); :class:`warmsim.sim.engine.Engine` and its feature subclasses read it."""

from __future__ import annotations

from dataclasses import dataclass

from warmsim.sim.errors import UserError


@dataclass(frozen=True)
class EngineSpec:
    """Engine limits and features (vLLM's knobs)."""

    block_size: int = 256  # tokens per KV block (WarmServe's artifact: 256)
    max_num_seqs: int = 256  # sequences running at once
    # prompt tokens per prefill step (at least one sequence always fits); with chunked prefill, the
    # token budget of every step (vLLM's --max-num-batched-tokens)
    max_batched_tokens: int = 2048
    prefix_caching: bool = False  # vLLM's --enable-prefix-caching; off in WarmServe's artifact
    chunked_prefill: bool = False  # vLLM's --enable-chunked-prefill; off in WarmServe's artifact
    record_steps: bool = False  # keep one row of metrics per step (output.steps: steps.parquet)

    def __post_init__(self):
        if self.chunked_prefill and self.max_batched_tokens < self.max_num_seqs:
            # vLLM 0.6.3 config.py SchedulerConfig._verify_args: every running sequence's decode fits a step.
            raise UserError(f"engine.max_batched_tokens: {self.max_batched_tokens} is below engine.max_num_seqs "
                            f"({self.max_num_seqs}); chunked prefill needs a step budget of at least one token "
                            "per sequence")
        if self.chunked_prefill and self.prefix_caching and self.max_batched_tokens % self.block_size:
            # vLLM 0.6.3 core/scheduler.py Scheduler._get_num_new_tokens: chunks are whole blocks.
            raise UserError(f"engine.max_batched_tokens: {self.max_batched_tokens} is not a multiple of "
                            f"engine.block_size ({self.block_size}), which chunked prefill with prefix caching needs")

    @property
    def features(self) -> bool:
        """Whether any feature of :class:`~warmsim.sim.engine_features.FeatureEngine` is on."""
        return self.prefix_caching or self.chunked_prefill or self.record_steps
