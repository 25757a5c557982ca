"""The front door of a fleet: one FIFO queue in front of every replica slot.

Each request is a SimPy process. It starts at its arrival time, takes a free
slot if there is one, and otherwise waits in a bounded FIFO queue:

* a request that finds ``queue_capacity`` requests waiting is dropped
  (``queue_full``), as in M/M/c/K;
* a request that has waited ``queue_timeout_s`` is dropped (``timeout``).

Because the queue is FIFO and every request has the same timeout, the
requests that have timed out are always at its head. They are removed
whenever the queue is looked at (an arrival, a freed slot, a controller
tick), so no timer event per request is needed: a request that times out
never holds a slot, and its drop counts in the tick its timeout expired in
(the controller looks at the queue at the end of every tick).

Service itself is a timeout whose value is the request and its replica and
whose callback, :meth:`Dispatcher._service_end`, records the finish and
hands the slot to the oldest waiting request or frees it
(:meth:`~elastic_des.engine.replicas.ReplicaPool.release`): the request
process ends once its service has started.

A day of traffic is hundreds of thousands of requests, so the work per
request is kept to two events (its arrival and the end of its service) and
a few short-lived objects; see :class:`_RequestProcess`,
:meth:`Dispatcher.spawn_until` and :meth:`Dispatcher._hand_over`
(``benchmarks/engine.py`` measures it).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from heapq import heappush
from itertools import islice
from typing import Optional

import numpy as np
import simpy
from simpy.events import NORMAL, Event, Process, Timeout

from elastic_des.engine.records import RequestStore
from elastic_des.engine.replicas import READY, Replica, ReplicaPool

NOT_DROPPED, DROPPED_QUEUE_FULL, DROPPED_TIMEOUT, DROPPED_TOO_LONG = 0, 1, 2, 3
# An event object without running its __init__: the hot paths below set the
# attributes SimPy's __init__ would (tests/test_engine_fast_paths.py checks
# them against SimPy's own objects, so a change in SimPy fails a test).
_new = object.__new__


class _RequestProcess(Process):
    """The SimPy process of one request, started by its arrival event.

    It differs from ``simpy.Process`` in three ways, each saving an event or
    some work per request:

    * it is created by the callback of its arrival event
      (:meth:`Dispatcher._arrive`, which sets the attributes
      ``Process.__init__`` would rather than calling the class) and runs at
      once, instead of being created ahead of time and started by an event
      of its own;
    * its end is not scheduled as an event, because nothing waits for a
      request process to end (its outcome is in the dispatcher's records);
      once its generator returns it is no longer alive, as usual, and its
      ``callbacks`` are an empty tuple, to which nothing can be added;
    * it resumes its generator with ``next`` rather than ``send``, which
      ends a generator without raising ``StopIteration``: the request reads
      the value of the event it waited for from the event itself.

    A request waits for at most one event (its admission from the queue).
    """

    def _resume(self, event: Event) -> None:
        env = self.env
        env._active_proc = self
        if next(self._generator, None) is not None:
            raise RuntimeError("a request process waits for one event at most")
        self._ok = True
        self._value = self._target = None
        env._active_proc = None


class Dispatcher:
    """Admits, queues and dispatches the requests of one world.

    ``requests`` holds each request's columns (``arrival``, and ``service``
    on a slots pool) and what happened to it (``start_s``, ``finish_s``,
    ``dropped``): request ``i`` is at ``i - requests.base`` of
    each list (:class:`~elastic_des.engine.records.RequestStore`), loaded by
    :meth:`spawn_until` a tick ahead.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pool: ReplicaPool,
        requests: RequestStore,
        queue_capacity: Optional[int],
        queue_timeout_s: Optional[float],
    ):
        if queue_capacity is not None and queue_capacity < 0:
            raise ValueError(f"queue_capacity = {queue_capacity}: must be >= 0 or None")
        if queue_timeout_s is not None and queue_timeout_s <= 0:
            raise ValueError(f"queue_timeout_s = {queue_timeout_s}: must be > 0 or None")
        self.env = env
        self.pool = pool
        self.requests = requests
        # The store's lists, mutated in place: index them at i - requests.base.
        self.arrival = requests.arrival
        self.service = getattr(requests, "service", None)
        self.start_s, self.finish_s = requests.start_s, requests.finish_s
        self.dropped = requests.dropped
        self.capacity = np.inf if queue_capacity is None else queue_capacity
        self.timeout = np.inf if queue_timeout_s is None else queue_timeout_s
        # Whether the queue can fill or its requests time out: if not, the
        # per-request checks are skipped.
        self.bounded = queue_capacity is not None
        self.expiring = queue_timeout_s is not None
        # (deadline_s, index, admitted event) of each waiting request, oldest first.
        self.queue: deque[tuple[float, int, Event]] = deque()
        # Arrivals let in by spawn_until: requests [0, window_stop), in windows
        # of (stop index, event id of request i minus i, time of spawn_until).
        self.window_stop = 0
        self.windows: deque[tuple[int, int, float]] = deque()
        self._window = (0, 0, 0.0)  # windows[0] once an arrival was scheduled from it
        self.arrival_pending = False  # an arrival event is in the event queue
        # Requests finished since the controller last looked, by their position
        # in the store (i - requests.base): it reads them before it retires any.
        self.completed: list[int] = []
        self.drops_since_tick = 0
        # Requests no replica could ever hold (a batching replica's KV budget).
        self.too_long = requests.too_long
        # Records the start of request i's service on a replica and starts it;
        # a batching pool binds its own.
        self.start_service = self._start_timeout
        # The callbacks of every arrival and service end: one tuple each, shared,
        # rather than a list per event. Nothing else waits for these private
        # events (a tuple makes anything that tries fail loudly); env.step only
        # reads them.
        self._on_arrival = (self._arrive,)
        self._on_service_end = (self._service_end,)
        pool.on_complete = self._complete
        pool.on_free_slot = self._hand_over

    # -- request life ---------------------------------------------------
    def _request(self, i: int):
        """The generator of request ``i``'s process, run from its arrival."""
        env = self.env
        if i in self.too_long:
            self.too_long.discard(i)
            self._drop(i, DROPPED_TOO_LONG)
            return
        replica = self.pool.acquire(i)
        if replica is None:
            queue = self.queue
            if self.expiring and queue and queue[0][0] <= env._now:
                self.purge_expired()
            if self.bounded and len(queue) >= self.capacity:
                self._drop(i, DROPPED_QUEUE_FULL)
                return
            # Event(env), its __init__ inlined.
            admitted = _new(Event)
            admitted.env = env
            admitted.callbacks = []
            queue.append((self.arrival[i - self.requests.base] + self.timeout, i, admitted))
            yield admitted
            replica = admitted._value
            if replica is None:
                return  # timed out while waiting
        self.start_service(i, replica)

    def _drop(self, i: int, reason: int) -> None:
        self.dropped[i - self.requests.base] = reason
        self.drops_since_tick += 1

    def _start_timeout(self, i: int, replica: Replica) -> None:
        """A slot's service starts now: a timeout whose callback is :meth:`_service_end`."""
        # Timeout(env, service, (i, replica)) with its __init__ and env.schedule
        # inlined: the attributes Timeout.__init__ sets and the entry env.schedule
        # pushes onto env._queue (time, priority, event id from env._eid, event).
        env = self.env
        now = env._now
        j = i - self.requests.base
        self.start_s[j] = now
        service = self.service[j]
        end = _new(Timeout)
        end.env = env
        end.callbacks = self._on_service_end
        end._value = (i, replica)
        end._delay = service
        end._ok = True
        heappush(env._queue, (now + service, NORMAL, next(env._eid), end))

    def _service_end(self, event: Event) -> None:
        """The callback of a slot's service timeout: record the request's finish,
        then give its slot to the oldest waiting request, or free it.

        What :meth:`~elastic_des.engine.replicas.ReplicaPool._end_service`,
        :meth:`_complete` and :meth:`_hand_over` do for a batching replica,
        in one call: a slot fits any request, so there is nothing to reserve.
        """
        i, replica = event._value
        now = self.env._now
        j = i - self.requests.base
        self.finish_s[j] = now
        self.completed.append(j)
        ready = replica.state == READY
        queue = self.queue
        if ready and queue:
            if self.expiring and queue[0][0] <= now:
                self.purge_expired()
            if queue:  # a slot fits any request: nothing to reserve
                self._admit(queue.popleft()[2], replica)
                return
        self.pool.release(replica, ready)

    def _complete(self, i: int, replica: Optional[Replica]) -> bool:
        """Record that request ``i`` finished; reuse its slot if ``replica`` is given."""
        j = i - self.requests.base
        self.finish_s[j] = self.env._now
        self.completed.append(j)
        # An empty queue has nothing to hand over (nor anything expired to purge).
        return replica is not None and bool(self.queue) and self._hand_over(replica)

    def _hand_over(self, replica: Replica) -> bool:
        """Give a free slot of ``replica`` to the oldest waiting request."""
        queue = self.queue
        if queue and queue[0][0] <= self.env._now:
            self.purge_expired()
        if not queue or not self.pool.reserve(queue[0][1], replica):
            return False
        self._admit(queue.popleft()[2], replica)
        return True

    def _admit(self, admitted: Event, replica: Replica) -> None:
        """Succeed a waiting request's ``admitted`` event with the ``replica`` it may use."""
        env = self.env
        # env.peek() inlined: the time of the next event in env._queue.
        if (env._queue[0][0] if env._queue else math.inf) > env._now:
            # Nothing else happens at this instant, so the admission would be
            # the very next event: process it at once instead (its only
            # callback is the request's process, which starts a service of
            # positive length). This saves an event per queued request and
            # leaves the order of all other events as it was.
            admitted._ok = True
            admitted._value = replica
            callbacks, admitted.callbacks = admitted.callbacks, None
            for callback in callbacks:
                callback(admitted)
        else:
            admitted.succeed(replica)

    def purge_expired(self) -> None:
        """Drop the requests at the head of the queue whose wait timed out."""
        queue, now = self.queue, self.env.now
        while queue and queue[0][0] <= now:
            _, i, admitted = queue.popleft()
            self._drop(i, DROPPED_TIMEOUT)
            admitted.succeed(None)  # its process ends

    # -- arrivals -------------------------------------------------------
    def spawn_until(self, end_s: float) -> None:
        """Let every request arriving before ``end_s`` arrive.

        Called once per controller tick with the end of the next tick, so
        the event queue never holds requests beyond the next decision.

        The arrivals form a chain, as in a SimPy source process: each
        arrival event schedules the next one, so the event queue holds one
        future arrival rather than a tick's worth, and its heap operations
        stay cheap. Each arrival still gets the time and the event id that
        ``env.schedule`` would have given it here and now, so simultaneous
        events (an arrival at the very instant a slot frees or a replica
        becomes ready) run in the same order as if the whole window had been
        scheduled at once: results do not depend on how arrivals are fed.
        """
        env = self.env
        requests = self.requests
        requests.load_until(end_s)
        first = self.window_stop
        stop = bisect_left(self.arrival, end_s, first - requests.base) + requests.base
        if stop == first:
            return
        event_id = _reserve_event_ids(env, stop - first)
        self.windows.append((stop, event_id - first, env.now))
        self.window_stop = stop
        if not self.arrival_pending:
            self._schedule_arrival(first)

    def _schedule_arrival(self, i: int, arrival: Optional[Event] = None) -> None:
        """Schedule the arrival of request ``i``, if ``spawn_until`` let it in.

        ``arrival``: the event of the arrival being processed, scheduled
        again for request ``i`` instead of a new one (see :meth:`_arrive`).
        """
        if i >= self._window[0]:  # past the current window: move to the next one
            windows = self.windows
            while windows and windows[0][0] <= i:
                windows.popleft()
            if not windows:
                self.arrival_pending = False
                return
            self._window = windows[0]
        _, id_offset, origin = self._window
        # Event(env), then succeed(i) without its scheduling: the attributes
        # Event.__init__ and succeed set (checked like the service timeout);
        # a reused event keeps env and _ok and gets a new value and callbacks
        # (env.step set its callbacks to None as it took it).
        if arrival is None:
            arrival = _new(Event)
            arrival.env = self.env
            arrival._ok = True
        arrival.callbacks = self._on_arrival
        arrival._value = i
        # Where env.schedule(arrival, NORMAL, arrival_s - origin) called at
        # `origin` would have put it (see _reserve_event_ids).
        when = origin + (self.arrival[i - self.requests.base] - origin)
        heappush(self.env._queue, (when, NORMAL, id_offset + i, arrival))
        self.arrival_pending = True

    def _arrive(self, event: Event) -> None:
        """The callback of request ``event._value``'s arrival: schedule the
        next arrival, then start this request's process.

        At most one arrival is pending (they form a chain), and nothing else
        holds an arrival event, so the event just processed carries the next
        arrival: one event object per chain rather than one per request.
        """
        i = event._value
        following = i + 1
        stop, id_offset, origin = self._window
        if following < stop:
            # _schedule_arrival(following, event) inlined for the common case,
            # a next arrival in the same window: this runs for every request.
            event.callbacks = self._on_arrival
            event._value = following
            when = origin + (self.arrival[following - self.requests.base] - origin)
            heappush(self.env._queue, (when, NORMAL, id_offset + following, event))
        else:
            self._schedule_arrival(following, event)
        # _RequestProcess(env, generator), as Process.__init__ would build it
        # (env, callbacks, _generator, _target; checked in
        # tests/test_engine_fast_paths.py) but without the Initialize event:
        # its generator runs now, to its first yield or to its end, as the
        # active process (env._active_proc, which env.active_process reads).
        env = self.env
        process = _new(_RequestProcess)
        process.env = env
        # Its end is not an event (see _RequestProcess): an empty tuple, so that
        # anything trying to wait for it fails at once rather than waiting for ever.
        process.callbacks = ()
        generator = process._generator = self._request(i)
        env._active_proc = process
        target = next(generator, None)
        if target is None:  # the generator returned: the process has ended
            process._ok = True
            process._value = None
        else:
            target.callbacks.append(process._resume)
        process._target = target
        env._active_proc = None


def _reserve_event_ids(env: simpy.Environment, count: int) -> int:
    """Take ``count`` consecutive event ids, as ``count`` calls of ``env.schedule`` would; return the first.

    SimPy orders simultaneous events of equal priority by an id that
    ``env.schedule`` takes from the counter ``env._eid``; its event queue
    ``env._queue`` is a heap of ``(time, priority, id, event)``. An event
    pushed there later with a reserved id runs exactly when it would have
    had it been scheduled when the id was taken.
    """
    ids = env._eid
    first = next(ids)
    deque(islice(ids, count - 1), maxlen=0)  # takes the rest in C (itertools' "consume" recipe)
    return first


def events_scheduled(env: simpy.Environment) -> int:
    """How many events ``env`` has scheduled so far (read from the id counter ``env._eid``,
    which every scheduled event and every id reserved by ``_reserve_event_ids`` advances)."""
    return next(env._eid)
