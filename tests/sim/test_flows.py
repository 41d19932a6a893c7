"""Max-min fair sharing of links between concurrent weight transfers."""

import pytest
import simpy

from warmsim.sim.flows import FlowNetwork, Link


def finish_times(specs):
    env = simpy.Environment()
    net = FlowNetwork(env)
    out = {}

    def go(name, nbytes, links, delay):
        yield env.timeout(delay)
        f = net.transfer(nbytes, links)
        yield f.done
        out[name] = env.now

    for name, nbytes, links, delay in specs:
        env.process(go(name, nbytes, links, delay))
    env.run()
    return out


def test_one_flow_runs_at_its_bottleneck():
    ssd, pcie = Link("ssd", 5.0), Link("pcie", 10.0)
    assert finish_times([("a", 10, (ssd, pcie), 0)]) == {"a": pytest.approx(2.0)}


def test_ten_gpus_loading_from_one_ssd_are_slower_than_one():
    ssd = Link("ssd", 10.0)
    specs = [(i, 10, (ssd, Link(f"p{i}", 10.0)), 0) for i in range(10)]
    assert all(t == pytest.approx(10.0) for t in finish_times(specs).values())


def test_unconstrained_flow_takes_the_leftover_capacity():
    # b is limited by its own 2/s PCIe link, so a gets 8 of the shared 10.
    ssd = Link("ssd", 10.0)
    out = finish_times([("a", 16, (ssd, Link("pa", 100.0)), 0), ("b", 4, (ssd, Link("pb", 2.0)), 0)])
    assert out["a"] == pytest.approx(2.0) and out["b"] == pytest.approx(2.0)


def test_late_flow_slows_the_first_then_frees_it():
    ssd = Link("ssd", 10.0)
    out = finish_times([("a", 20, (ssd,), 0), ("b", 5, (ssd,), 1)])
    # a alone 1 s (10 B), then both at 5/s: b done at 2 s; a has 5 B left at 10/s -> 2.5 s.
    assert out["b"] == pytest.approx(2.0) and out["a"] == pytest.approx(2.5)


def test_cancelled_flow_never_finishes_and_releases_bandwidth():
    env = simpy.Environment()
    net = FlowNetwork(env)
    link = Link("l", 10.0)
    a = net.transfer(10, (link,))
    b = net.transfer(10, (link,))

    def cancel():
        yield env.timeout(1.0)
        net.cancel(b)

    env.process(cancel())
    env.run()
    assert a.done.triggered and not b.done.triggered
    assert a.done.value is a
