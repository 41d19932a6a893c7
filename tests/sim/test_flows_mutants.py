"""The flow network (sim/flows.py), the cases tests/sim/test_flows.py leaves out, by hand: per-flow
rate ceilings in progressive filling, a link saturated with float residue, transfers that are done at
once, a flow's last bytes at a late clock, and ``bytes_pending``. Written for the mutants of
sim/flows.py that survived the other flow tests (docs/testing.md)."""

import pytest
import simpy

from warmsim.sim.flows import FlowNetwork, Link


def net():
    env = simpy.Environment()
    return env, FlowNetwork(env)


def test_a_capped_flow_keeps_growing_to_its_cap_after_others_freeze():
    # a (cap 6/s) and b share L (10/s); b also crosses M (2/s). Round 1: every flow +2 (M binds),
    # b frozen. Round 2: a alone may grow by min(its cap 6 - 2, L's 10 - 4 = 6) = 4 -> a = 6.
    env, n = net()
    L, M = Link("L", 10.0), Link("M", 2.0)
    a = n.transfer(60, (L,), cap=6.0)
    b = n.transfer(100, (L, M))
    assert (a.rate, b.rate) == (6.0, 2.0)


def test_a_flow_is_frozen_at_its_own_cap_not_within_a_byte_per_second_of_it():
    # Caps 3 and 3.5 on a wide link: round 1 gives both +3 (a's cap binds), a frozen; round 2 b +0.5.
    env, n = net()
    L = Link("L", 100.0)
    a = n.transfer(30, (L,), cap=3.0)
    b = n.transfer(30, (L,), cap=3.5)
    assert (a.rate, b.rate) == (3.0, 3.5)
    # A link binds first (b's own 5/s link): a is 0.5/s under its 5.5 cap and keeps growing.
    env, n = net()
    a = n.transfer(30, (Link("La", 100.0),), cap=5.5)
    b = n.transfer(30, (Link("Lb", 5.0),))
    assert (a.rate, b.rate) == (5.5, 5.0)


def test_a_saturated_link_with_float_residue_freezes_only_its_flows():
    # Three loads share a 16 GB/s link: 16e9 / 3 each, which leaves ~2e-6 B/s of the link unassigned
    # in floating point; a fourth load on its own 100 GB/s link still gets all of it.
    env, n = net()
    L = Link("L", 16e9)
    shared = [n.transfer(1e12, (L,)) for _ in range(3)]
    alone = n.transfer(1e12, (Link("M", 100e9),))
    assert all(f.rate == pytest.approx(16e9 / 3) for f in shared)
    assert alone.rate == pytest.approx(100e9)


def test_an_empty_or_linkless_transfer_is_done_at_once_and_carries_its_tag():
    env, n = net()
    L = Link("L", 10.0)
    for nbytes, links in [(1e-3, (L,)), (0.0, (L,)), (100.0, ())]:
        f = n.transfer(nbytes, links, tag="t")
        assert f.done.triggered and f.done.value is f and f.tag == "t"
        assert f not in n.flows and not L.flows
    f = n.transfer(2e-3, (L,), tag=("load", 3))
    assert not f.done.triggered and f.tag == ("load", 3) and L.flows == {f}


def test_finished_flows_leave_their_links():
    env, n = net()
    L = Link("L", 10.0)
    f = n.transfer(10, (L,))
    env.run()
    assert f.done.processed and f.done.value is f and L.flows == set() and n.flows == []


def test_a_flow_whose_last_bytes_take_less_than_a_picosecond_finishes_at_a_late_clock():
    # At t = 1e6 s the clock cannot advance by 1e-13 s: 0.01 B at 100 GB/s must count as arrived.
    env, n = net()
    env.run(until=1e6)
    f = n.transfer(0.01, (Link("L", 1e11),))
    for _ in range(100):
        if f.done.processed:
            break
        env.step()
    assert f.done.processed and env.now == 1e6


def test_bytes_pending_counts_flows_crossing_the_given_links():
    # a: 10 B over (A, C) at 5/s (C, 10/s, shared with b); b: 30 B over (B, C) at 5/s. At 1 s:
    # a has 5 B left, b 25 B.
    env, n = net()
    A, B, C = Link("A", 100.0), Link("B", 100.0), Link("C", 10.0)
    n.transfer(10, (A, C))
    n.transfer(30, (B, C))
    env.run(until=1.0)
    assert n.bytes_pending({A}) == pytest.approx(5.0)
    assert n.bytes_pending({B}) == pytest.approx(25.0)
    assert n.bytes_pending({C}) == pytest.approx(30.0)
    assert n.bytes_pending({A, B}) == pytest.approx(30.0)
    assert n.bytes_pending({Link("D", 1.0)}) == 0


def test_a_degraded_link_re_shares_flows_in_flight():
    # 20 B over a 10 B/s link: after 1 s (10 B left) the link drops to 2 B/s: 5 s more -> 6 s.
    env, n = net()
    L = Link("L", 10.0)
    f = n.transfer(20, (L,))
    done = []
    f.done.callbacks.append(lambda _e: done.append(env.now))

    def degrade():
        yield env.timeout(1.0)
        n.set_capacity({L: 2})

    env.process(degrade())
    env.run()
    assert L.capacity == 2.0 and f.rate == 2.0 and done == [pytest.approx(6.0)]
