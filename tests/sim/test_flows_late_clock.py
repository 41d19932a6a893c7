"""A transfer late in a long run still ends: once the clock passes ~8,192 s its resolution exceeds
1e-12 s, so a flow left with a remaining time below it used to re-arm a timer that could not move
the clock, forever (found by a day-long 512-GPU run that stopped advancing)."""

import simpy

from warmsim.sim.flows import FlowNetwork, Link


def steps_to_finish(start: float, nbytes: float, cap: float = 3e10, limit: int = 10_000) -> int:
    env = simpy.Environment(initial_time=start)
    net = FlowNetwork(env)
    f = net.transfer(nbytes, (Link("l", cap),), "t")
    n = 0
    while not f.done.processed and n < limit:
        env.step()
        n += 1
    return n


def test_transfers_end_late_in_a_day():
    # 13 GB shards at 30 GB/s starting at 86,000 s (near the end of a simulated day); before the
    # fix 172 of these 400 sizes never finished.
    sizes = range(13_000_000_000, 13_000_000_000 + 400 * 7919, 7919)
    assert max(steps_to_finish(86_000.0, float(b)) for b in sizes) < 10


def test_early_transfers_unchanged():
    env = simpy.Environment()
    net = FlowNetwork(env)
    f = net.transfer(13_478_395_904, (Link("l", 1e10),), "t")
    env.run(f.done)
    assert env.now == 13_478_395_904 / 1e10
