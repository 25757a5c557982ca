"""The replica pool and dispatcher on hand-checkable timelines."""

import numpy as np
import pytest
import simpy

from elastic_des.engine.dispatcher import DROPPED_QUEUE_FULL, DROPPED_TIMEOUT, NOT_DROPPED, Dispatcher
from elastic_des.engine.records import RequestStore
from elastic_des.engine.replicas import DRAINING, PROVISIONING, READY, TERMINATED, ReplicaPool


def make(arrivals, services, slots=1, cold_start=10.0, capacity=None, timeout=None, ready=1):
    env = simpy.Environment()
    pool = ReplicaPool(env, slots, cold_start)
    dispatcher = Dispatcher(env, pool, RequestStore.of(arrival=np.asarray(arrivals, float), service=np.asarray(services, float)),
                            capacity, timeout)
    pool.start(ready)
    dispatcher.spawn_until(np.inf)
    return env, pool, dispatcher


def test_fifo_single_server_timeline():
    # Arrivals at 0, 1, 2 with service 3 each on one slot: starts 0, 3, 6.
    env, pool, d = make([0, 1, 2], [3, 3, 3])
    env.run()
    assert d.start_s == [0, 3, 6]
    assert d.finish_s == [3, 6, 9]
    assert pool.busy_area == pytest.approx(9.0)


def test_slots_serve_in_parallel():
    env, pool, d = make([0, 0, 0], [4, 4, 4], slots=2)
    env.run()
    assert d.start_s == [0, 0, 4]


def test_queue_capacity_drops_arrival_that_finds_it_full():
    env, pool, d = make([0, 1, 2, 3], [10, 10, 10, 10], capacity=1)
    env.run()
    assert d.dropped == [NOT_DROPPED, NOT_DROPPED, DROPPED_QUEUE_FULL, DROPPED_QUEUE_FULL]
    assert d.start_s[1] == 10


def test_timeout_drops_requests_that_waited_past_it_and_they_never_start():
    env, pool, d = make([0, 1, 2], [10, 1, 1], timeout=5.0)
    env.run()
    assert d.dropped == [NOT_DROPPED, DROPPED_TIMEOUT, DROPPED_TIMEOUT]
    assert np.isnan(d.start_s[1]) and np.isnan(d.start_s[2])
    assert d.drops_since_tick == 2


def test_a_request_waiting_less_than_the_timeout_is_served():
    env, pool, d = make([0, 1], [5.5, 1], timeout=5.0)  # request 1 waits 4.5 s
    env.run()
    assert d.dropped == [NOT_DROPPED, NOT_DROPPED]
    assert d.start_s == [0.0, 5.5]


def test_scale_up_waits_for_cold_start_and_bills_it():
    env, pool, d = make([], [], cold_start=10.0, ready=0)
    pool.set_target(2)
    assert pool.n_provisioning == 2 and pool.n_ready == 0
    env.run(until=5)
    assert pool.billed_replica_s() == pytest.approx(10.0)  # 2 replicas x 5 s, not yet ready
    env.run(until=11)
    assert pool.n_ready == 2 and all(r.ready_s == 10.0 for r in pool.replicas)


def test_queued_requests_start_when_a_new_replica_is_ready():
    env, pool, d = make([0, 0], [100, 1], cold_start=10.0, ready=1)
    pool.set_target(2)
    env.run()
    assert d.start_s == [0, 10]


def test_scale_in_cancels_provisioning_first_then_drains_busy_replicas():
    env, pool, d = make([0], [20], cold_start=10.0, ready=2)
    env.run(until=1)
    pool.set_target(3)  # one provisioning
    pool.set_target(1)  # cancel it, then retire the idle ready replica
    states = sorted(r.state for r in pool.replicas)
    assert states == sorted([READY, TERMINATED, TERMINATED])
    pool.set_target(0)  # the busy one drains
    busy = next(r for r in pool.replicas if r.busy)
    assert busy.state == DRAINING
    env.run()
    assert busy.state == TERMINATED and busy.terminated_s == 20
    assert d.finish_s == [20]


def test_draining_replica_takes_no_new_work():
    env, pool, d = make([0, 1], [5, 1], slots=2, ready=1)
    env.run(until=0.5)
    pool.set_target(0)
    env.run(until=4)
    assert np.isnan(d.start_s[1])  # nothing serves it: the only replica drains
    pool.set_target(1)
    env.run()
    assert d.start_s[1] == pytest.approx(4 + 10.0)  # a new replica after its cold start


def test_provisioning_state_names():
    env, pool, d = make([], [], ready=0)
    pool.set_target(1)
    assert pool.replicas[0].state == PROVISIONING


def test_pool_rejects_bad_arguments():
    env = simpy.Environment()
    with pytest.raises(ValueError, match="slots"):
        ReplicaPool(env, 0, 1.0)
    with pytest.raises(ValueError, match="cold_start_s"):
        ReplicaPool(env, 1, -1.0)
    with pytest.raises(ValueError, match="target"):
        ReplicaPool(env, 1, 1.0).set_target(-1)
