"""The engine's shortcuts behave like the SimPy and numpy code they replace."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from elastic_des.engine.controller import sorted_percentiles
from elastic_des.engine.dispatcher import Dispatcher
from elastic_des.engine.records import RequestStore
from elastic_des.engine.replicas import ReplicaPool

QUANTILES = (0.5, 0.95, 0.99)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 20, 99, 100, 101, 437, 1000])
@pytest.mark.parametrize("kind", ["exponential", "lognormal", "ties"])
def test_sorted_percentiles_equal_numpy_bit_for_bit(size, kind):
    rng = np.random.default_rng(size)
    values = {
        "exponential": lambda: rng.exponential(2.0, size),
        "lognormal": lambda: rng.lognormal(0.0, 2.0, size) * 1e3,
        "ties": lambda: rng.integers(0, 4, size) * 0.1,
    }[kind]()
    expected = np.quantile(values, QUANTILES)
    got = sorted_percentiles(sorted(values.tolist()), QUANTILES)
    assert [float(x) for x in expected] == got  # exact, not approximate
    # The controller's call: percentiles 50, 95 and 99.
    assert [float(x) for x in np.percentile(values, (50, 95, 99))] == got


def test_requests_are_simpy_processes_that_end():
    # Arrivals 0, 0.5, 1 on one slot, service 2: the later two wait.
    env = simpy.Environment()
    pool = ReplicaPool(env, 1, 0.0)
    dispatcher = Dispatcher(env, pool, RequestStore.of(arrival=np.array([0.0, 0.5, 1.0]), service=np.array([2.0, 2.0, 2.0])),
                            None, None)
    pool.start(1)
    seen = []
    acquire = pool.acquire

    def recording_acquire(i):
        seen.append(env.active_process)
        return acquire(i)

    pool.acquire = recording_acquire
    dispatcher.spawn_until(np.inf)
    env.run(until=1.5)
    assert len(seen) == 3 and all(isinstance(p, simpy.Process) for p in seen)
    assert [p.is_alive for p in seen] == [False, True, True]  # two wait in the queue
    assert all(p.target is not None for p in seen[1:])
    env.run()
    assert not any(p.is_alive for p in seen)
    assert env.active_process is None
    assert dispatcher.start_s == [0.0, 2.0, 4.0]
