"""The front door of a fleet: one FIFO queue in front of every replica slot.

Each request is a SimPy process. It starts at its arrival time, takes a free
slot if there is one, and otherwise waits in a bounded FIFO queue:

* a request that finds ``queue_capacity`` requests waiting is dropped
  (``queue_full``), as in M/M/c/K;
* a request that has waited ``queue_timeout_s`` is dropped (``timeout``).

Because the queue is FIFO and every request has the same timeout, the
requests that have timed out are always at its head. They are removed
whenever the queue is looked at (an arrival, a freed slot, a controller
tick), with their drop time set to the exact moment the timeout expired, so
no timer event per request is needed.

Service itself is a timeout whose completion callback belongs to the
replica: the request process ends once its service has started.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np
import simpy
from simpy.events import NORMAL, Event, Process, Timeout

from elastic_des.replicas import Replica, ReplicaPool

NOT_DROPPED, DROPPED_QUEUE_FULL, DROPPED_TIMEOUT = 0, 1, 2


class _ArrivingProcess(Process):
    """A process whose generator first runs at ``env.now + delay``.

    ``simpy.Process`` starts its generator with an urgent event at the current
    time; a request process created ahead of its arrival would then need a
    second event (a timeout) to reach its arrival time. Scheduling the start
    event itself at the arrival time saves that event for every request,
    which is a third of the events of a request served without waiting.
    """

    def __init__(self, env: simpy.Environment, generator, delay: float):
        self.env = env
        self.callbacks = []
        self._generator = generator
        start = Event(env)
        start.callbacks.append(self._resume)
        start._ok = True
        start._value = None
        env.schedule(start, NORMAL, delay)
        self._target = start


class Dispatcher:
    """Admits, queues and dispatches the requests of one world.

    ``start_s[i]``, ``finish_s[i]`` and ``dropped[i]`` record what happened to
    request ``i``; lists (not numpy arrays) because single-item writes to a
    list are several times faster, and they are converted once at the end.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pool: ReplicaPool,
        arrival_s: np.ndarray,
        service_s: np.ndarray,
        queue_capacity: Optional[int],
        queue_timeout_s: Optional[float],
    ):
        if queue_capacity is not None and queue_capacity < 0:
            raise ValueError(f"queue_capacity = {queue_capacity}: must be >= 0 or None")
        if queue_timeout_s is not None and queue_timeout_s <= 0:
            raise ValueError(f"queue_timeout_s = {queue_timeout_s}: must be > 0 or None")
        self.env = env
        self.pool = pool
        self.arrival = arrival_s.tolist()
        self.service = service_s.tolist()
        n = len(self.arrival)
        self.start_s = [np.nan] * n
        self.finish_s = [np.nan] * n
        self.dropped = [NOT_DROPPED] * n
        self.drop_s = [np.nan] * n
        self.capacity = np.inf if queue_capacity is None else queue_capacity
        self.timeout = np.inf if queue_timeout_s is None else queue_timeout_s
        self.queue: deque[tuple[int, Event]] = deque()
        self.next_arrival = 0  # index of the first request not yet spawned
        self.completed: list[int] = []  # indices finished since the controller last looked
        self.drops_since_tick = 0
        pool.on_free_slot = self._hand_over
        pool.on_complete = self._record_completion

    # -- request life ---------------------------------------------------
    def _request(self, i: int):
        replica = self.pool.acquire()
        if replica is None:
            self.purge_expired()
            if len(self.queue) >= self.capacity:
                self.dropped[i] = DROPPED_QUEUE_FULL
                self.drop_s[i] = self.env.now
                self.drops_since_tick += 1
                return
            admitted = Event(self.env)
            self.queue.append((i, admitted))
            replica = yield admitted
            if replica is None:
                return  # timed out while waiting
        self.start_s[i] = self.env.now
        Timeout(self.env, self.service[i], i).callbacks.append(replica.complete)

    def _record_completion(self, i: int) -> None:
        self.finish_s[i] = self.env.now
        self.completed.append(i)

    def _hand_over(self, replica: Replica) -> bool:
        """Give a free slot of ``replica`` to the oldest waiting request."""
        self.purge_expired()
        if not self.queue:
            return False
        self.queue.popleft()[1].succeed(replica)
        return True

    def purge_expired(self) -> None:
        """Drop the requests at the head of the queue whose wait timed out."""
        queue, arrival, now, timeout = self.queue, self.arrival, self.env.now, self.timeout
        while queue and arrival[queue[0][0]] + timeout <= now:
            i, admitted = queue.popleft()
            self.dropped[i] = DROPPED_TIMEOUT
            self.drop_s[i] = arrival[i] + timeout
            self.drops_since_tick += 1
            admitted.succeed(None)

    # -- arrivals -------------------------------------------------------
    def spawn_until(self, end_s: float) -> None:
        """Create the processes of every request arriving before ``end_s``.

        Called once per controller tick, so the event queue holds at most a
        tick's worth of future arrivals.
        """
        env, arrival, i, n = self.env, self.arrival, self.next_arrival, len(self.arrival)
        now = env.now
        request = self._request
        while i < n and arrival[i] < end_s:
            _ArrivingProcess(env, request(i), arrival[i] - now)
            i += 1
        self.next_arrival = i
