"""Prompt-block ids in workloads (traces/workload.py PrefixBlocks, traces/prefix.py): stored flat, kept
aligned with the requests through windows, sorting, replication and caps; the multi-turn recipe by hand;
bad hash_ids in a file are one clear error."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from warmsim.sim.errors import UserError
from warmsim.traces import prefix
from warmsim.traces.builders import build_workload
from warmsim.traces.mooncake import HASH_BLOCK_TOKENS, load_mooncake
from warmsim.traces.registry import load_trace
from warmsim.traces.workload import PrefixBlocks


def test_ids_are_one_flat_array_with_offsets_and_take_keeps_them_per_request():
    p = PrefixBlocks.from_lists([[1, 2], [], [3, 4, 5]], 512)
    assert p.ids.dtype == np.int64 and list(p.ids) == [1, 2, 3, 4, 5] and list(p.offsets) == [0, 2, 2, 5]
    q = p.take(np.array([2, 0, 2, 1]))
    assert [list(q.of(i)) for i in range(4)] == [[3, 4, 5], [1, 2], [3, 4, 5], []]
    q.validate(4)
    with pytest.raises(ValueError):
        q.validate(3)


def test_the_mooncake_loader_keeps_hash_ids_with_their_block_size(tmp_path):
    df = load_trace("mooncake_conv", duration_s=60)
    assert df.attrs["hash_block_tokens"] == HASH_BLOCK_TOKENS == 512
    n = df["hash_ids"].map(len).to_numpy()
    assert (n == -(-df["prompt_tokens"].to_numpy() // 512)).all()  # ceil(input_length / 512) each


@pytest.mark.parametrize("bad", [[1, -2], "1,2", [1.5], None])
def test_hash_ids_that_are_not_lists_of_non_negative_integers_name_the_row(tmp_path, bad):
    f = tmp_path / "t.jsonl"
    rows = [{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [0]},
            {"timestamp": 5, "input_length": 10, "output_length": 2, "hash_ids": bad}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(UserError, match=r"t.jsonl: row 2 \(line 2\): hash_ids must be a list of integers >= 0"):
        load_mooncake(f)


def _file(tmp_path, rows):
    f = tmp_path / "t.jsonl.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(f)


def test_kind_trace_keeps_each_requests_ids_through_the_window_and_the_caps(tmp_path):
    rows = [{"timestamp": 3000, "input_length": 1500, "output_length": 5, "hash_ids": [0, 1, 2]},
            {"timestamp": 1000, "input_length": 600, "output_length": 5, "hash_ids": [0, 3]},
            {"timestamp": 9000, "input_length": 100, "output_length": 5, "hash_ids": [4]}]
    path = _file(tmp_path, rows)
    wl = build_workload({"kind": "trace", "trace": path, "sort": True, "duration_s": 5.0, "max_prompt_tokens": 1024,
                         "model_map": {"t": "m"}}, ["m"], 0)
    # Sorted: the 600-token request first; the 9 s one is outside the 5 s window; 1500 capped to 1024.
    assert list(wl.prompt_tokens) == [600, 1024]
    assert wl.prefix.block_tokens == 512 and [list(wl.prefix.of(i)) for i in range(2)] == [[0, 3], [0, 1, 2]]


def test_kind_mapped_gives_copies_their_sources_ids_and_split_conversation_keeps_them_on_one_model():
    wl = build_workload({"kind": "mapped", "trace": "mooncake_conv", "duration_s": 300, "rate_scale": 2.0,
                         "alpha": 0.0, "split": "conversation"}, ["a", "b", "c"], 0)
    assert len(wl.prefix.offsets) == len(wl) + 1
    lens = np.diff(wl.prefix.offsets)
    assert (lens == -(-wl.prompt_tokens.astype(np.int64) // 512)).all()  # uncapped: ceil(prompt / 512) each
    second = {}
    for i in range(len(wl)):
        ids = wl.prefix.of(i)
        if len(ids) >= 2:
            assert second.setdefault(int(ids[1]), int(wl.model[i])) == int(wl.model[i])
    assert len(set(second.values())) == 3  # conversations spread over the models


def test_conversations_are_rows_sharing_their_first_two_ids():
    df = pd.DataFrame({"hash_ids": [[0, 1, 2], [0, 5], [0, 1, 9], [7], [0, 5, 6]]})
    assert list(prefix.conversations(df)) == [0, 1, 0, 2, 1]
    assert prefix.conversations(pd.DataFrame({"x": [1]})) is None


def test_multi_turn_turns_share_the_previous_turns_prompt_and_the_system_prompt():
    # One model, one session, conversations never end (turns huge): each request continues the
    # previous one. Blocks of 4 tokens, a 4-token system prompt (id 0).
    # Prompts 10, 13, 6: request 0: [sys=0, 1, 2]; request 1 shares min(13, 10) = 10 tokens = 2 full
    # blocks (0, 1), new 3, 4 (13 tokens -> 4 ids); request 2 shares min(6, 13) = 6 -> 1 block (0), new 5.
    m = np.zeros(3, dtype=np.int32)
    p, shared = prefix.multi_turn(m, np.array([10, 13, 6]), 1, sessions=1, turns=1e12, system=4, block=4,
                                  rng=np.random.default_rng(0))
    assert [list(p.of(i)) for i in range(3)] == [[0, 1, 2], [0, 1, 3, 4], [0, 5]]
    assert shared == 4 + 8 + 4


def test_multi_turn_new_conversations_share_only_the_system_prompt_and_models_do_not_mix():
    # turns = 1: every conversation ends after one turn; two models with system prompts of 8 tokens.
    m = np.array([0, 1, 0], dtype=np.int32)
    p, _ = prefix.multi_turn(m, np.array([12, 12, 12]), 2, sessions=1, turns=1.0, system=8, block=4,
                             rng=np.random.default_rng(0))
    assert [list(p.of(i)) for i in range(3)] == [[0, 1, 4], [2, 3, 5], [0, 1, 6]]


def test_the_recipe_is_a_workload_option_of_any_kind_and_refuses_traces_with_ids():
    cfg = {"kind": "synthetic", "duration_s": 60, "total_rate": 2.0,
           "prefix": {"kind": "multi_turn", "sessions": 4, "system_prompt_tokens": 512}}
    wl = build_workload(cfg, ["a", "b"], 0)
    assert wl.prefix is not None and wl.meta["prefix"]["shared_share"] > 0
    assert build_workload({**cfg, "prefix": None}, ["a", "b"], 0).prefix is None
    assert build_workload({**cfg, "prefix": {"kind": "none"}}, ["a", "b"], 0).prefix is None
    with pytest.raises(UserError, match="already has prefix ids"):
        build_workload({"kind": "mapped", "trace": "mooncake_conv", "duration_s": 60, "prefix": {"kind": "multi_turn"}},
                       ["a"], 0)
    with pytest.raises(UserError, match="workload.prefix.turn: unknown key"):
        build_workload({**cfg, "prefix": {"turn": 3}}, ["a", "b"], 0)
