"""The clairvoyant limit: per-tick fleet needs from the actual future requests.

:func:`tick_needs` gives every tick the fewest replicas with which that
tick's actual requests (arrival and service times known in advance) meet
the SLO target, replaying them through the FIFO multi-server queue by the
Kiefer–Wolfowitz recursion, not by Erlang C, so bursts inside a tick count.

The queue's state is carried from tick to tick as the Kiefer–Wolfowitz
workload vector, here kept as the sorted times at which each of the fleet's
``replicas × slots`` servers becomes free. A request arriving at ``t``
starts at ``max(t, earliest free time)`` on that server (FIFO), which is
then free at start + service; a request that would wait longer than the
queue timeout is dropped and takes no work. A request meets the SLO if
``wait + service <= slo_latency_s``. The queue's capacity is not modelled:
it drops requests only when the fleet is far behind, which a fleet meeting
the target is not.

At a tick boundary the fleet takes the tick's size: a larger fleet adds
servers free from the boundary on; a smaller one removes the servers free
earliest (idle, or about to be), but never one with work committed past the
boundary (requests in service or already queued to it): the tick's size is
at least ``ceil(committed servers / slots)``. The replay is conservative
against the simulator, which re-dispatches queued requests to replicas
added at the boundary and drains whole replicas; more servers never make a
FIFO wait longer, so the simulated tick does at least as well.

Each tick's size is found by evaluating the replay at candidate sizes,
starting from the previous tick's size and stepping to the smallest that
meets the target (a bisection when the step is large). A tick that no size
up to ``max_replicas`` serves within the target (say, more of its requests
need longer than the SLO to serve than the target allows) is counted as
infeasible and gets the fewest replicas that do as well as ``max_replicas``.
Without a queue timeout the requests meeting the SLO never fall as the fleet
grows, so ``max_replicas`` is evaluated only when no smaller fleet meets the
target; with one, a larger fleet may serve a request a smaller one drops and
make later ones wait, so it is evaluated first. Cost: ``O(n log c)`` per
evaluation and a few evaluations per tick, against the simulator's much
larger cost per request.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np

from elastic_des.engine.provisioning import min_cost_schedule


@dataclass(frozen=True)
class TickNeeds:
    """Replicas each tick needs ready (``replicas``), and the ticks that no
    fleet up to ``max_replicas`` serves within the target (``infeasible``)."""

    replicas: np.ndarray
    infeasible: np.ndarray


def replay_tick(free_s: list[float], arrival_s: list[float], service_s: list[float], slo_latency_s: float,
                queue_timeout_s: float, required: int = 0) -> tuple[int, Optional[list[float]]]:
    """Requests of one tick that meet the SLO through the servers free at
    ``free_s`` (a heap, copied), and the servers' free times afterwards. As
    soon as fewer than ``required`` can meet it, it stops: ``required - 1``
    (an upper bound of the count) and no free times.

    The times are lists of floats, not arrays: the loop reads them one by one,
    and this loop is most of the clairvoyant limit's cost."""
    heap = list(free_s)
    replace = heapq.heapreplace
    spare = len(arrival_s) - required  # misses (drops included) that still leave `required` within reach
    for t, s in zip(arrival_s, service_s):
        if (earliest := heap[0]) < t:
            # A server is idle: no wait (so no timeout, which is > 0), and the
            # request meets the SLO if its service alone does.
            replace(heap, t + s)
            if s <= slo_latency_s:
                continue
        elif (wait := earliest - t) <= queue_timeout_s:
            replace(heap, earliest + s)
            if wait + s <= slo_latency_s:
                continue
        # else dropped: waits past the timeout, takes no work
        spare -= 1
        if spare < 0:
            return required - 1, None
    return required + spare, heap


def resize(free_s: list[float], servers: int, boundary_s: float) -> list[float]:
    """The fleet's free times at ``boundary_s`` with ``servers`` servers:
    added ones free at the boundary, removed ones those free earliest."""
    if servers >= len(free_s):
        grown = list(free_s) + [boundary_s] * (servers - len(free_s))
        heapq.heapify(grown)
        return grown
    kept = heapq.nlargest(servers, free_s)
    heapq.heapify(kept)
    return kept


def _per_tick(batches: Iterable[tuple[np.ndarray, np.ndarray]], tick_s: float,
              ticks: int) -> Iterator[tuple[list[float], list[float]]]:
    """The ``(arrival_s, service_s)`` of each tick in turn, from consecutive
    ``batches`` of requests sorted by arrival, as lists for :func:`replay_tick`
    (made once per tick, however many fleet sizes replay it)."""
    pending_a, pending_s = np.empty(0), np.empty(0)
    batches = iter(batches)
    for k in range(ticks):
        end = (k + 1) * tick_s
        while not len(pending_a) or pending_a[-1] < end:
            batch = next(batches, None)
            if batch is None:
                break
            arrival, service = np.asarray(batch[0], float), np.asarray(batch[1], float)
            # A window's own arrays when nothing is pending (the usual case): no copy of the window.
            pending_a = np.concatenate([pending_a, arrival]) if len(pending_a) else arrival
            pending_s = np.concatenate([pending_s, service]) if len(pending_s) else service
        cut = int(pending_a.searchsorted(end))  # side "left"; the method skips np.searchsorted's wrapper
        yield pending_a[:cut].tolist(), pending_s[:cut].tolist()
        pending_a, pending_s = pending_a[cut:], pending_s[cut:]


def tick_needs(arrival_s: np.ndarray, service_s: np.ndarray, **kwargs) -> TickNeeds:
    """:func:`tick_needs_of` the requests held whole in ``arrival_s`` (sorted) and ``service_s``."""
    return tick_needs_of([(arrival_s, service_s)], **kwargs)


def tick_needs_of(batches: Iterable[tuple[np.ndarray, np.ndarray]], *, tick_s: float, duration_s: float,
                  slots: int, slo_latency_s: float, slo_target: float, queue_timeout_s: float, min_replicas: int,
                  max_replicas: int) -> TickNeeds:
    """The fewest replicas per tick meeting the SLO target; see the module docs.
    ``batches``: consecutive ``(arrival_s, service_s)`` arrays of requests
    sorted by arrival (a run replayed window by window needs memory for one
    window, not the run)."""
    sizes = list(tick_sizes(batches, tick_s=tick_s, duration_s=duration_s, slots=slots, slo_latency_s=slo_latency_s,
                            slo_target=slo_target, queue_timeout_s=queue_timeout_s, min_replicas=min_replicas,
                            max_replicas=max_replicas))
    return TickNeeds(np.array([size for size, _ in sizes], dtype=np.int64),
                     np.array([infeasible for _, infeasible in sizes], dtype=bool))


def tick_count(duration_s: float, tick_s: float) -> int:
    """The ticks of a run, the last one possibly short."""
    return int(math.ceil(duration_s / tick_s - 1e-9))


def tick_sizes(batches: Iterable[tuple[np.ndarray, np.ndarray]], *, tick_s: float, duration_s: float,
               slots: int, slo_latency_s: float, slo_target: float, queue_timeout_s: float, min_replicas: int,
               max_replicas: int) -> Iterator[tuple[int, bool]]:
    """Each tick's fewest replicas and whether no size up to ``max_replicas``
    meets the target, one tick at a time (:func:`tick_needs_of`); reads
    ``batches`` only as far as the tick it yields needs."""
    if tick_s <= 0 or duration_s <= 0:
        raise ValueError(f"tick_s = {tick_s}, duration_s = {duration_s}: must be > 0")
    if not 0 <= min_replicas <= max_replicas or max_replicas < 1:
        raise ValueError(f"[min_replicas, max_replicas] = [{min_replicas}, {max_replicas}]: need 0 <= min <= max, max >= 1")
    ticks = tick_count(duration_s, tick_s)
    free: list[float] = []
    previous = max(min_replicas, 1)
    # Without a queue timeout no request is dropped, so more servers never start a
    # request later (FIFO) and the requests meeting the SLO never fall as the fleet
    # grows: the largest fleet need then be evaluated only when no smaller one meets
    # the target (most ticks need fewer; the size found is the same).
    monotone = math.isinf(queue_timeout_s)
    for k, (arrivals, services) in enumerate(_per_tick(batches, tick_s, ticks)):
        boundary = k * tick_s
        lo, hi = 0, len(arrivals)
        committed = sum(1 for f in free if f > boundary)
        floor = max(min_replicas, math.ceil(committed / slots))
        top = max(floor, max_replicas)
        required = math.ceil(slo_target * (hi - lo) - 1e-9)
        # Size: (requests meeting the SLO, free times after), or (fewer than
        # required, None) for a replay stopped once it could not meet the target.
        cache: dict[int, tuple[int, Optional[list[float]]]] = {}

        def evaluate(c: int, exact: bool = False) -> bool:
            """Whether ``c`` replicas meet ``required``; ``exact``: count every request that meets the SLO."""
            if c == 0:
                cache[0] = (0, [])
            if c not in cache or (exact and cache[c][1] is None):
                cache[c] = replay_tick(resize(free, c * slots, boundary), arrivals, services,
                                       slo_latency_s, queue_timeout_s, 0 if exact else required)
            return cache[c][0] >= required

        def smallest() -> int:
            """The smallest size in [floor, max] that meets ``required`` (max if none
            below it does): bracket around the previous tick's size, then bisect."""
            # A floor at the top is the size whether or not it meets the target,
            # and whether it does needs its exact count: replay it whole at once.
            if hi == lo or evaluate(floor, exact=floor == top):
                return floor
            bad, good = floor, max_replicas
            guess = min(max(previous, floor + 1), max_replicas)
            if evaluate(guess):
                good = guess
                below = guess - 1
                if below > floor:
                    if evaluate(below):
                        good = below
                    else:
                        bad = below
            else:
                bad = guess
            while good - bad > 1:
                middle = (bad + good) // 2
                if evaluate(middle):
                    good = middle
                else:
                    bad = middle
            return good

        size = None if hi > lo and not monotone else smallest()
        infeasible = hi > lo and (size is None or size == top) and not evaluate(top, exact=True)
        if infeasible:
            # No fleet within bounds meets the target (e.g. services longer than the SLO):
            # settle for what the largest fleet achieves, with as few replicas as achieve it.
            required = cache[top][0]
            for stopped in [c for c, (_, after) in cache.items() if after is None]:
                del cache[stopped]  # a count stopped short of the old target says nothing of the new
            size = None
        if size is None:
            size = smallest()
        if size not in cache:
            cache[size] = replay_tick(resize(free, size * slots, boundary), arrivals, services,
                                      slo_latency_s, queue_timeout_s)
        free = cache[size][1]
        previous = size
        yield size, infeasible


@dataclass(frozen=True)
class OraclePlan:
    """The clairvoyant plan of one world: per-tick needs, the ticks no fleet
    serves within the target, the minimum-cost schedule (replicas up per
    tick) and its billed replica-seconds."""

    needs: np.ndarray
    infeasible: np.ndarray
    alive: np.ndarray
    replica_s: float


class ClairvoyantLimit:
    """The clairvoyant plan of a run computed as the run goes: each tick's
    need once its requests are known (:meth:`advance_to`), the plan at the
    end (:meth:`plan`). A world that only reports the limit's cost
    (``cost/oracle_*``) feeds it the very windows it loads, rather than
    replaying every request before its first event; for a clairvoyant
    policy, which needs the plan before the run, :meth:`plan` at once
    replays them all. ``batches`` and the keywords as for
    :func:`tick_needs_of`; ``cold_start_s`` for the schedule."""

    def __init__(self, batches: Iterable[tuple[np.ndarray, np.ndarray]], *, cold_start_s: float, **needs_kwargs):
        self._sizes = tick_sizes(batches, **needs_kwargs)
        self.tick_s, self.duration_s, self.cold_start_s = needs_kwargs["tick_s"], needs_kwargs["duration_s"], cold_start_s
        self._ticks = tick_count(self.duration_s, self.tick_s)
        self._needs: list[int] = []
        self._infeasible: list[bool] = []

    def advance_to(self, time_s: float) -> None:
        """Size every tick that has ended by ``time_s``."""
        ended = min(self._ticks, int(math.floor(time_s / self.tick_s + 1e-9)))
        while len(self._needs) < ended:
            size, infeasible = next(self._sizes)
            self._needs.append(size)
            self._infeasible.append(infeasible)

    def plan(self) -> OraclePlan:
        """The plan: every tick sized, and the minimum-cost schedule for the needs."""
        self.advance_to(self._ticks * self.tick_s)
        needs = np.array(self._needs, dtype=np.int64)
        alive, replica_s = min_cost_schedule(needs, self.tick_s, self.duration_s, self.cold_start_s)
        return OraclePlan(needs, np.array(self._infeasible, dtype=bool), alive, replica_s)

