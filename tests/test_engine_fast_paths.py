"""The engine's shortcuts behave like the SimPy and numpy code they replace."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from simpy.events import NORMAL

from elastic_des.engine.controller import sorted_percentiles
from elastic_des.engine.dispatcher import Dispatcher
from elastic_des.engine.records import Gather, RequestStore
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
    # The controller's call: percentiles 50, 95 and 99, of a sorted array.
    assert [float(x) for x in np.percentile(values, (50, 95, 99))] == got
    from_array = sorted_percentiles(np.sort(values), QUANTILES)
    assert from_array == got and all(type(x) is float for x in from_array)


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
    # Built without Process.__init__ (Dispatcher._arrive): the attributes it sets.
    reference = simpy.Process(simpy.Environment(), (yield_ for yield_ in ()))
    assert all(vars(p).keys() >= vars(reference).keys() for p in seen)
    assert set().union(*(vars(p).keys() for p in seen)) - vars(reference).keys() <= {"_ok", "_value"}
    assert [p.is_alive for p in seen] == [False, True, True]  # two wait in the queue
    assert all(p.target is not None for p in seen[1:])
    env.run()
    assert not any(p.is_alive for p in seen)
    assert env.active_process is None
    assert dispatcher.start_s == [0.0, 2.0, 4.0]


def test_inlined_events_have_exactly_the_attributes_simpy_gives_them():
    # The dispatcher builds its arrival and admission events and its service
    # timeouts without their __init__ and pushes them onto env._queue itself:
    # this fails if SimPy changes what those objects hold or how its queue
    # entries look.
    env = simpy.Environment()
    reference_timeout = simpy.Timeout(env, 2.5, "value")
    assert env._queue == [(2.5, NORMAL, 0, reference_timeout)]
    reference_event = simpy.Event(env)
    reference_event.succeed(7)
    assert sorted(env._queue) == [(0.0, NORMAL, 1, reference_event), (2.5, NORMAL, 0, reference_timeout)]
    assert vars(simpy.Event(env)).keys() == {"env", "callbacks"}  # the admission event, before it succeeds

    env = simpy.Environment()
    pool = ReplicaPool(env, 1, 0.0)
    dispatcher = Dispatcher(env, pool, RequestStore.of(arrival=np.array([1.0, 1.5]), service=np.array([2.0, 2.0])),
                            None, None)
    pool.start(1)
    dispatcher.spawn_until(np.inf)
    (when, priority, _, arrival), = env._queue
    assert (when, priority, type(arrival)) == (1.0, NORMAL, simpy.Event)
    assert vars(arrival).keys() == vars(reference_event).keys() and arrival._value == 0 and arrival.ok
    env.step()  # request 0 arrives, starts its service and schedules request 1's arrival
    # ... with the same event object: env.step took it (callbacks None), the
    # dispatcher gave it new callbacks and value and pushed it again.
    next_arrival = next(event for _, _, _, event in env._queue if not isinstance(event, simpy.Timeout))
    assert next_arrival is arrival and arrival._value == 1 and arrival.callbacks and arrival.ok
    assert vars(arrival).keys() == vars(reference_event).keys()
    service_end = next(event for _, _, _, event in env._queue if isinstance(event, simpy.Timeout))
    assert vars(service_end).keys() == vars(reference_timeout).keys()
    assert (service_end._delay, service_end.ok, service_end.triggered) == (2.0, True, True)
    assert sorted(t for t, _, _, _ in env._queue) == [1.5, 3.0]
    env.step()  # request 1 arrives and waits for the slot: its admission event
    (_, _, admitted), = dispatcher.queue
    assert type(admitted) is simpy.Event and vars(admitted).keys() == {"env", "callbacks"}
    assert not admitted.triggered and len(admitted.callbacks) == 1
    env.run()
    assert dispatcher.start_s == [1.0, 3.0] and dispatcher.finish_s == [3.0, 5.0]


def test_columns_of_one_array_share_one_list_and_retire_as_two():
    service = np.array([2.0, 3.0])
    store = RequestStore.of(arrival=np.array([0.0, 1.0]), service=service, planning=service)
    store.load_until(np.inf)
    assert store.planning is store.service and store.service == [2.0, 3.0]
    store.finish_s[:] = [2.0, 4.0]
    rows = store.retire()
    assert rows["service"].tolist() == rows["planning"].tolist() == [2.0, 3.0]
    assert store.service == [] and store.base == 2
    # A later window where they are different arrays is refused, not half-shared.
    windows = [{"arrival": np.array([0.0]), "service": service, "planning": service},
               {"arrival": np.array([5.0]), "service": service, "planning": service.copy()}]
    store = RequestStore(windows)
    with pytest.raises(ValueError, match="planning"):
        store.load_until(np.inf)


def test_sizes_become_lists_only_once_read_and_are_kept_from_then_on():
    store = RequestStore([{"arrival": np.array([0.0, 1.0]), "prompt": np.array([10, 11]), "output": np.array([5, 6])},
                          {"arrival": np.array([2.0]), "prompt": np.array([12]), "output": np.array([7])}])
    store.load_until(1.5)
    assert "output" not in store._lists  # no list yet: only the window slices hold it
    assert store.output == [5, 6]  # made on first read from the held requests
    store.load_until(np.inf)
    assert store.output == [5, 6, 7]
    store.finish_s[:2] = [1.0, 2.0]
    rows = store.retire()
    assert rows["prompt"].tolist() == [10.0, 11.0] and rows["output"].tolist() == [5.0, 6.0]
    assert store.output == [7] and store.base == 2


@pytest.mark.parametrize("positions", [[], [3], [4, 0], [0, 1, 2, 3, 4], [2, 2, 4, 1]])
def test_gather_takes_the_positions_of_each_column_in_order(positions):
    # One itemgetter for every column (a single position's getter returns the
    # item, not a tuple): the same as reading them one by one.
    columns = ([0.5, 1.5, 2.5, 3.5, 4.5], [10.0, 11.0, 12.0, 13.0, 14.0])
    gather = Gather(positions)
    for column in columns:
        taken = gather.take(column)
        assert taken.dtype == float and taken.tolist() == [column[j] for j in positions]
