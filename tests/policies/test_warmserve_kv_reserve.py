"""Proactive KV reservation (warmserve.md section 5)."""

from __future__ import annotations

import pytest

from warmsim.policies.warmserve.kv_reserve import KVReservePolicy, KVReserveStep

P = KVReservePolicy()


def test_target_is_floor_of_share_and_capped():
    assert P.target_free(320, 10) == 100
    assert P.target_free(100, 1) == 3  # 3.125 -> 3
    assert P.target_free(320, 0) == 0
    assert P.target_free(320, 40) == 320


def test_reserve_blocks_freed_beyond_target():
    assert P.step(320, 10, free_blocks=150, reserved_blocks=0) == KVReserveStep(reserve=50)
    # only blocks freed since the last call may be newly reserved
    assert P.step(320, 10, free_blocks=150, reserved_blocks=0, freed_blocks=20) == KVReserveStep(reserve=20)
    assert P.step(320, 10, free_blocks=150, reserved_blocks=0, freed_blocks=0) == KVReserveStep()
    # idle engine: every free block may go, never one in use
    assert P.step(320, 0, free_blocks=10, reserved_blocks=200) == KVReserveStep(reserve=10)


def test_give_back_when_running_rises():
    assert P.step(320, 10, free_blocks=80, reserved_blocks=50) == KVReserveStep(give_back=20)
    assert P.step(320, 10, free_blocks=80, reserved_blocks=5) == KVReserveStep(give_back=5)
    assert P.step(320, 10, free_blocks=80, reserved_blocks=0) == KVReserveStep()
    assert KVReservePolicy(give_back=False).step(320, 10, free_blocks=80, reserved_blocks=50) == KVReserveStep()


def test_at_target_nothing_happens():
    assert P.step(320, 10, free_blocks=100, reserved_blocks=30) == KVReserveStep()


def test_inconsistent_counts_rejected():
    with pytest.raises(ValueError):
        P.step(100, 1, free_blocks=80, reserved_blocks=30)
    with pytest.raises(ValueError):
        P.step(100, 1, free_blocks=-1, reserved_blocks=0)
