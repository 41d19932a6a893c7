"""KV reservation's rule (policies/warmserve/kv_reserve.py) at its boundaries, by hand: an excess of
exactly one block, a single reserved block to give back, and negative counts. Written for the mutants
that survived tests/policies/test_warmserve_kv_reserve.py (docs/testing.md)."""

import pytest

from warmsim.policies.warmserve.kv_reserve import KVReservePolicy, KVReserveStep


def test_one_free_block_over_the_target_is_reserved():
    # 64 blocks, 16 running of 32 per instance: target 32 free; 33 free -> reserve 1.
    assert KVReservePolicy().step(64, 16, 33, 0) == KVReserveStep(reserve=1)
    assert KVReservePolicy().step(64, 16, 32, 0) == KVReserveStep()


def test_a_single_reserved_block_is_given_back():
    # Target 32 free, 30 free, 1 reserved: give back min(2, 1) = 1.
    assert KVReservePolicy().step(64, 16, 30, 1) == KVReserveStep(give_back=1)
    assert KVReservePolicy(give_back=False).step(64, 16, 30, 1) == KVReserveStep()


@pytest.mark.parametrize("total,free,reserved", [(10, 5, -1), (10, -1, 5), (-1, 0, 0), (10, 6, 5)])
def test_inconsistent_counts_are_refused_with_all_three_named(total, free, reserved):
    with pytest.raises(ValueError, match=f"inconsistent block counts: total={total} free={free} reserved={reserved}"):
        KVReservePolicy().step(total, 1, free, reserved)
