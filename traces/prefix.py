"""Which requests share a prompt prefix: prompt-block ids (:class:`~warmsim.traces.workload.PrefixBlocks`)
from a trace's ``hash_ids``, or from a multi-turn recipe for sources without them.

The ids feed the engines' prefix cache (``engine.prefix_caching``, :mod:`warmsim.sim.prefix_cache`);
without prefix caching they are never read.

The recipe (``workload.prefix``, applied after any workload kind whose source has no ids):

* ``kind: multi_turn``: the requests of each model, in arrival order, are turns of conversations.
  ``sessions`` conversations are open per model; each request continues one of them, chosen
  uniformly at random, and after its turn that conversation ends with probability ``1 / turns``
  (a new one takes its place), so conversations last ``turns`` turns on average (geometric). A turn
  shares its first ``min(P, P_prev)`` prompt tokens with the conversation's previous turn (``P``: the
  prompt lengths the workload already has; they are not changed), and every request of a model
  shares its first ``min(P, system_prompt_tokens)`` tokens with every other (a system prompt).
  Ids stand for ``block_tokens`` tokens each: a block is shared only if it lies wholly inside the
  shared part (chained ids, as in the Mooncake traces), so a ``block_tokens`` that divides
  ``engine.block_size`` loses nothing at the engine's block boundaries.
* ``kind: none`` (or ``prefix: null``): no ids.

*Simplification*: a turn's prompt does not contain the previous turn's answer (the lengths come
from the source), so only prompt tokens are shared; the same holds for the traces' ids, which say
nothing about generated tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError
from warmsim.traces.knobs import Knobs
from warmsim.traces.workload import PrefixBlocks, Workload

#: The recipe's knobs and defaults (``workload.prefix``).
RECIPE_DEFAULTS = {
    "kind": "multi_turn",  # multi_turn | none
    "sessions": 32,  # conversations open at once per model; a request continues one, chosen uniformly
    "turns": 4.0,  # mean turns per conversation (geometric): after a turn it ends with probability 1 / turns
    "system_prompt_tokens": 0,  # leading prompt tokens every request of a model shares (0 = none)
    "block_tokens": 256,  # prompt tokens one id stands for (a divisor of engine.block_size matches exactly)
}


def from_trace(df: pd.DataFrame, rows: np.ndarray) -> PrefixBlocks | None:
    """The ids of a loaded trace's ``rows`` (in that order), or None if it has no ``hash_ids``."""
    if "hash_ids" not in df.columns:
        return None
    block = int(df.attrs.get("hash_block_tokens") or 0)
    if block < 1:
        return None
    return PrefixBlocks.from_lists(df["hash_ids"].to_numpy(object), block).take(np.asarray(rows, dtype=np.int64))


def conversations(df: pd.DataFrame) -> np.ndarray | None:
    """Per row of a loaded trace, a conversation number (0, 1, ... in order of first appearance):
    rows whose ``hash_ids`` share their first two ids share a number (chained ids: the same first
    1024 tokens in the Mooncake traces); a row with one id has its own. None without ``hash_ids``."""
    if "hash_ids" not in df.columns:
        return None
    seen: dict[int, int] = {}
    out = np.empty(len(df), dtype=np.int64)
    n = 0
    for i, ids in enumerate(df["hash_ids"].to_numpy(object)):
        if len(ids) >= 2:
            g = seen.get(ids[1])
            if g is None:
                g = seen[ids[1]] = n
                n += 1
        else:
            g, n = n, n + 1
        out[i] = g
    return out


def apply(wl: Workload, cfg, rng: np.random.Generator) -> Workload:
    """``wl`` with the ids the ``workload.prefix`` recipe ``cfg`` gives (unchanged for none/null)."""
    if cfg is None:
        return wl
    if not isinstance(cfg, Mapping):
        raise UserError(f"workload.prefix: want a mapping with kind (multi_turn | none), got {cfg!r}")
    kind = cfg.get("kind", RECIPE_DEFAULTS["kind"])
    if kind not in ("multi_turn", "none"):
        raise UserError(f"workload.prefix.kind: must be one of ['multi_turn', 'none'], got {kind!r}")
    k = Knobs(cfg, RECIPE_DEFAULTS, prefix="workload.prefix")
    if kind == "none":
        return wl
    if wl.prefix is not None:
        raise UserError("workload.prefix: this workload's trace already has prefix ids (hash_ids); "
                        "drop workload.prefix (or set its kind: none)")
    sessions = k.integer("sessions", lo=1)
    turns = k.number("turns", lo=1)
    system = k.integer("system_prompt_tokens", lo=0)
    block = k.integer("block_tokens", lo=1)
    prefix, shared = multi_turn(wl.model, wl.prompt_tokens, len(wl.models), sessions, turns, system, block, rng)
    total = int(wl.prompt_tokens.sum())
    wl.meta["prefix"] = {"kind": kind, "sessions": sessions, "turns": turns, "system_prompt_tokens": system,
                         "block_tokens": block, "shared_block_tokens": shared,
                         "shared_share": round(shared / total, 4) if total else 0.0}
    out = replace(wl, prefix=prefix)
    out.validate()
    return out


def multi_turn(model: np.ndarray, prompt: np.ndarray, n_models: int, sessions: int, turns: float, system: int,
               block: int, rng: np.random.Generator) -> tuple[PrefixBlocks, int]:
    """The recipe's ids (module docstring) and the prompt tokens in the blocks it shares (system prompt
    or previous turn; a model's first request counts its system-prompt blocks too)."""
    n = len(prompt)
    pick = rng.integers(0, sessions, size=n)  # which open conversation each request continues
    ends = rng.random(n) < 1.0 / turns  # whether its conversation ends after it
    sys_blocks = system // block
    next_id = n_models * sys_blocks  # ids 0 .. n_models * sys_blocks - 1: the system prompts' blocks
    last: list[list[tuple[int, list[int]] | None]] = [[None] * sessions for _ in range(n_models)]
    lens = -(-prompt.astype(np.int64) // block)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    ids = np.empty(int(offsets[-1]), dtype=np.int64)
    shared_tokens = 0
    for i in range(n):
        m, p, s = int(model[i]), int(prompt[i]), int(pick[i])
        prev = last[m][s]
        own_sys = min(p, system) // block
        keep = own_sys
        if prev is not None:
            keep = max(keep, min(p, prev[0]) // block)
        row = []
        for b in range(int(lens[i])):
            if b < own_sys:
                row.append(m * sys_blocks + b)
            elif b < keep:
                row.append(prev[1][b])
            else:
                row.append(next_id)
                next_id += 1
        shared_tokens += keep * block
        ids[offsets[i]:offsets[i + 1]] = row
        last[m][s] = None if ends[i] else (p, row)
    return PrefixBlocks(ids, offsets, block), shared_tokens
