"""GPU memory accounting at 2 MiB granularity never over-commits."""

import pytest

from warmsim.sim.errors import PlanError
from warmsim.sim.memory import KV, PREWARM, WEIGHTS, GPUMemory
from warmsim.sim.models import CHUNK_BYTES, align_up


def test_align_up_to_chunks():
    assert align_up(1) == CHUNK_BYTES
    assert align_up(CHUNK_BYTES) == CHUNK_BYTES
    assert align_up(CHUNK_BYTES + 1) == 2 * CHUNK_BYTES


def test_holdings_round_up_and_release():
    m = GPUMemory(0, 10 * CHUNK_BYTES)
    m.set(WEIGHTS, 1, CHUNK_BYTES + 1)
    assert m.used_bytes == 2 * CHUNK_BYTES
    m.set(KV, 1, 3 * CHUNK_BYTES)
    m.release(WEIGHTS, 1)
    assert m.used_bytes == 3 * CHUNK_BYTES and m.kind_bytes(KV) == 3 * CHUNK_BYTES


def test_over_commit_is_refused_and_changes_nothing():
    m = GPUMemory(0, 4 * CHUNK_BYTES)
    m.set(PREWARM, 7, 3 * CHUNK_BYTES)
    with pytest.raises(PlanError, match="GPU 0"):
        m.set(WEIGHTS, 1, 2 * CHUNK_BYTES)
    assert m.used_bytes == 3 * CHUNK_BYTES
    assert m.fits(CHUNK_BYTES) and not m.fits(2 * CHUNK_BYTES)
    assert m.fits(4 * CHUNK_BYTES, PREWARM, 7)  # growing its own holding counts what it has
