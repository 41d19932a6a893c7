"""A hand-driven engine with prefix caching / chunked prefill (as tests/sim/test_engine_mutants.py's
harness, plus prompt-block ids, the prefix-hit callback and step rows)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tests.sim.test_engine_mutants import MODEL, Cost, Host, Inst
from warmsim.sim.engine import EngineSpec
from warmsim.sim.engine_features import make_engine
from warmsim.traces.workload import PrefixBlocks


class PHost(Host):
    def __init__(self, prompts, outputs, ids, trace_block):
        super().__init__(prompts, outputs)
        self.workload = SimpleNamespace(prompt_tokens=np.asarray(prompts), output_tokens=np.asarray(outputs),
                                        prefix=None if ids is None else PrefixBlocks.from_lists(ids, trace_block))
        self.hits: dict[int, int] = {}
        self.step_rows: list[tuple] = []

    def on_prefix_hit(self, rid, tokens):
        self.hits.setdefault(rid, tokens)


def pengine(prompts, outputs, arrivals, ids=None, *, kv_blocks=100, block_size=4, trace_block=4, prefix=True,
            chunked=False, steps=False, max_batched_tokens=2048, max_num_seqs=256, cost=None):
    """A feature engine on a fresh host; request i (prompt-block ids ``ids[i]``) is submitted at ``arrivals[i]``."""
    h = PHost(prompts, outputs, ids, trace_block)
    inst = Inst(h)
    spec = EngineSpec(block_size=block_size, max_num_seqs=max_num_seqs, max_batched_tokens=max_batched_tokens,
                      prefix_caching=prefix, chunked_prefill=chunked, record_steps=steps)
    e = make_engine(h, inst, MODEL, cost or Cost(MODEL), spec, kv_blocks)
    inst.engine, h.engine, h.inst = e, e, inst
    e.start()

    def arrive(rid, t):
        yield h.env.timeout(t)
        e.submit(rid)

    for rid, t in enumerate(arrivals):
        h.env.process(arrive(rid, t))
    return h, e
