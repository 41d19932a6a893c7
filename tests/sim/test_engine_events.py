"""The engine's event economy (sim/engine.py): it waits on one event at a time and acts in that event's
callback, so a request costs a fixed, small number of SimPy events; a timer that a cut replaced, or
that was pending when the engine halted, does nothing when it fires.

Same hand-driven host as tests/sim/test_engine_mutants.py (prefill 0.01 + 0.001 x tokens s, decode
steps 0.01 s, block size 16). Events are counted with SimPy's event-id counter; the harness's own
processes (one per arrival: its start, its timeout and its end, three events) and the start of the
engine's own process are subtracted.
"""

from __future__ import annotations

import pytest

from tests.sim.test_engine_mutants import engine


def engine_events(h, arrivals: int) -> int:
    """Events the engine scheduled: all of them, less its process's start (it never ends: the engine
    is not stopped) and the harness's three per arrival."""
    return next(h.env._eid) - 1 - 3 * arrivals


def test_a_request_on_an_idle_engine_costs_three_events_wake_prefill_decode():
    # Request 0 at 1 s, prompt 5, 3 tokens: a wake-up at 1 s, a prefill step (-> 1.015) and one
    # run of two decode steps (-> 1.035).
    h, e = engine([5], [3], [1.0])
    h.env.run()
    assert h.log == [(1.015, "first", 0), (1.035, "done", 0)]
    assert engine_events(h, 1) == 3


def test_simultaneous_arrivals_share_one_wake_up_and_one_prefill():
    h, e = engine([5, 5, 5], [2, 2, 2], [1.0, 1.0, 1.0])
    h.env.run()
    assert [x[0] for x in h.log if x[1] == "first"] == [1.025] * 3  # one prefill of 15 tokens
    assert engine_events(h, 3) == 3


def test_an_arrival_that_cuts_a_run_costs_the_new_timer_and_the_stale_one_fires_harmlessly():
    # Request 0 at 0 s (prompt 5, 11 out): prefill -> 0.015, a run of 10 steps to 0.115. Request 1
    # (prompt 5, 1 token) at 0.1 cuts the run after step 9 (0.105): its prefill -> 0.12, request 0's
    # last step -> 0.13. Events: wake, prefill, run timer (stale at 0.115), cut timer, prefill,
    # last run = 6. The stale timer at 0.115 changes nothing: the last step still ends at 0.13.
    h, e = engine([5, 5], [11, 1], [0.0, 0.1])
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.12, "first", 1), (0.12, "done", 1), (0.13, "done", 0)]
    assert e.steps == 10
    assert engine_events(h, 2) == 6


def test_an_arrival_that_cannot_join_schedules_nothing():
    # max_num_seqs 1: request 1 at 0.05 cannot join request 0's run (0.015 -> 0.115); it is
    # admitted when the run ends, with no wake-up of its own: wake, prefill, run, prefill, run... the
    # second request's single token needs no decode run: 4 events.
    from warmsim.sim.engine import EngineSpec
    h, e = engine([5, 5], [11, 1], [0.0, 0.05], spec=EngineSpec(block_size=16, max_num_seqs=1))
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.115, "done", 0), (0.13, "first", 1), (0.13, "done", 1)]
    assert engine_events(h, 2) == 4


@pytest.mark.parametrize("at", [0.01, 0.05])  # during the prefill step, during the decode run
def test_a_halted_engine_ignores_the_event_it_was_waiting_on(at):
    # Request 1 arrives at 0.005 and waits behind request 0 (max_num_seqs 1) in both cases.
    from warmsim.sim.engine import EngineSpec
    h, e = engine([5, 200], [11, 1], [0.0, 0.005], spec=EngineSpec(block_size=16, max_num_seqs=1))
    got = []

    def lose():
        yield h.env.timeout(at)
        got.append(e.halt())

    h.env.process(lose())
    h.env.run(until=1.0)
    assert got == [[1, 0]]  # the queued request, then the running one
    assert not e.waiting and not e.running and e.used_blocks == 0
    assert h.log == ([] if at < 0.015 else [(0.015, "first", 0)])  # nothing after the halt
    assert e.busy is False and e.steps == 0
    e.submit(0)  # a halted engine takes nothing more up
    h.env.run(until=2.0)
    assert [q.rid for q in e.waiting] == [0] and not e.running
