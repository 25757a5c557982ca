"""Requests generated one window of simulated time at a time.

A month at 50 req/s is 130 million requests: held as arrays (arrival time,
sizes, service work) they alone would take several GB per world. So a
workload is a *recipe*: a :class:`RequestSource` replays the run's requests
window by window (:data:`WINDOW_S` of simulated time each) from the seeded
streams, and the simulation pulls a window only when it reaches it.

The windows replay the whole-run draw, not an approximation of it: the
requests of every window, concatenated, are bit for bit the requests that
drawing the whole run at once from the same seeded streams gives (the
whole-array workload, :func:`elastic_des.engine.workload.build_workload`),
so a run that streams and a run that holds every request see the same
requests, and a run's results do not depend on the window length. How each
part is replayed:

* NHPP thinning (Poisson and on/off arrivals, and rate traces):
  :class:`ThinnedArrivals` scans the candidate draws in bounded groups of
  windows and reads each window's acceptance draws by advancing the
  generator to them;
* renewal processes and client mixtures
  (:mod:`elastic_des.engine.arrivals`) draw their points in consecutive
  chunks in the whole-run draw's order, regrouped here into the fixed
  windows (:func:`fixed_windows`);
* a timestamps trace is held whole (it is a file already in memory) and
  cut into windows;
* request sizes (:class:`SizedRequests`): prompts from the start of the
  sizes stream, outputs from its state past every prompt draw.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, TypeVar

import numpy as np

WINDOW_S = 21_600.0  # six hours: ~1M requests at 50 req/s, about 60 MB of arrays per window
DRAW_CHUNK = 1 << 20  # random draws made at once while scanning a stream
CANDIDATE_BUDGET = 1 << 23  # thinning candidates held at once (8M: 64 MB); see ThinnedArrivals

Item = TypeVar("Item")


@dataclass(frozen=True)
class RequestBatch:
    """Consecutive requests, sorted by arrival time."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)

    def part(self, start: int, stop: int) -> "RequestBatch":
        return RequestBatch(self.arrival_s[start:stop], self.prompt_tokens[start:stop], self.output_tokens[start:stop])


def window_edges(duration_s: float, window_s: float = WINDOW_S) -> list[tuple[float, float]]:
    """``[start, end)`` of each window covering ``[0, duration_s)``; the last may be shorter."""
    return [(k * window_s, min((k + 1) * window_s, duration_s)) for k in range(int(math.ceil(duration_s / window_s)))]


def _generator_at(state: dict, draws: int = 0) -> np.random.Generator:
    """A generator in bit-generator ``state``, advanced by ``draws`` 64-bit
    draws (one per uniform double)."""
    bits = getattr(np.random, state["bit_generator"])()
    bits.state = state
    if draws:
        bits.advance(draws)
    return np.random.Generator(bits)


class ThinnedArrivals:
    """A non-homogeneous Poisson process with ``profile.rate`` by exact thinning
    (Lewis & Shedler 1979), drawn as one draw over the whole run draws it and
    replayed a window at a time.

    The whole-run draw: from ``make_rng()``, a Poisson count of candidates
    at the rate ``upper = profile.upper_bound()``, then that many uniform
    candidate times, then that many uniform acceptance draws on
    ``[0, upper)``, the ``i``-th compared with the rate at the ``i``-th
    candidate in time order. A month holds hundreds of millions of
    candidates, so they are never held at once: one scan of the candidate
    draws counts each window's candidates; then the windows are taken in
    groups of at most :data:`CANDIDATE_BUDGET` candidates, each group
    collected by one more scan (the draws regenerated from the saved state)
    and sorted; and a window's acceptance draws are read by advancing the
    generator to their position (PCG64's ``advance``), since every uniform
    double is exactly one 64-bit draw. So any run, however long, gets the
    very arrivals of the whole-run draw, with memory bounded by the budget
    and time growing with (candidates)² / budget past one group.
    """

    def __init__(self, profile, make_rng: Callable[[], np.random.Generator], window_s: float = WINDOW_S,
                 budget: Optional[int] = None):
        self.profile = profile
        self.make_rng = make_rng
        self.edges = window_edges(profile.duration_s, window_s)
        self.starts = np.array([start for start, _ in self.edges])
        self.budget = CANDIDATE_BUDGET if budget is None else budget
        self._plan: Optional[tuple[int, dict, np.ndarray]] = None

    def _candidates(self, count: int, state: dict) -> Iterator[np.ndarray]:
        """The candidate times in draw order, :data:`DRAW_CHUNK` at a time."""
        rng = _generator_at(state)
        for first in range(0, count, DRAW_CHUNK):
            yield rng.uniform(0.0, self.profile.duration_s, min(DRAW_CHUNK, count - first))

    def plan(self) -> tuple[int, dict, np.ndarray]:
        """The candidate count, the generator state after drawing it, and each
        window's candidates (one scan, kept)."""
        if self._plan is None:
            rng = self.make_rng()
            count = int(rng.poisson(self.profile.upper_bound() * self.profile.duration_s))
            state = rng.bit_generator.state
            per_window = np.zeros(len(self.edges), dtype=np.int64)
            for chunk in self._candidates(count, state):
                per_window += np.bincount(np.searchsorted(self.starts, chunk, side="right") - 1,
                                          minlength=len(self.edges))
            self._plan = (count, state, per_window)
        return self._plan

    def _groups(self, per_window: np.ndarray) -> Iterator[tuple[int, int]]:
        """Consecutive windows ``[first, stop)`` of at most ``budget`` candidates
        together (a window over the budget alone)."""
        first, held = 0, 0
        for k, n in enumerate(per_window.tolist()):
            if k > first and held + n > self.budget:
                yield first, k
                first, held = k, 0
            held += n
        yield first, len(per_window)

    def __call__(self) -> Iterator[np.ndarray]:
        """The arrival times of each window, in order."""
        upper = self.profile.upper_bound()
        if upper <= 0:
            yield from (np.empty(0) for _ in self.edges)
            return
        count, state, per_window = self.plan()
        offsets = np.concatenate([[0], np.cumsum(per_window)]).tolist()
        for first, stop in self._groups(per_window):
            low = self.starts[first]
            high = self.starts[stop] if stop < len(self.starts) else math.inf
            # Filled in place and sorted in place: the group's candidates are held once.
            group = np.empty(int(offsets[stop] - offsets[first]))
            filled = 0
            for chunk in self._candidates(count, state):
                inside = chunk[(chunk >= low) & (chunk < high)]
                group[filled:filled + len(inside)] = inside
                filled += len(inside)
            group.sort()
            cuts = np.searchsorted(group, self.starts[first + 1:stop], side="left")
            for k, candidates in zip(range(first, stop), np.split(group, cuts)):
                accept = _generator_at(state, count + offsets[k]).uniform(0.0, upper, len(candidates))
                yield candidates[accept < self.profile.rate(candidates)]


def fixed_windows(chunks: Iterable[np.ndarray], duration_s: float, window_s: float = WINDOW_S) -> Iterator[np.ndarray]:
    """Consecutive sorted ``chunks`` of arrival times regrouped into the windows of :func:`window_edges`."""
    pending: list[np.ndarray] = []
    edges = iter(window_edges(duration_s, window_s))
    start, end = next(edges, (0.0, 0.0))
    for chunk in chunks:
        while len(chunk) and chunk[-1] >= end:
            cut = int(np.searchsorted(chunk, end, side="left"))
            yield np.concatenate([*pending, chunk[:cut]])
            pending, chunk = [], chunk[cut:]
            start, end = next(edges, (end, math.inf))
        pending.append(chunk)
    yield np.concatenate(pending) if pending else np.empty(0)
    for _ in edges:
        yield np.empty(0)


def concatenate(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """One array of consecutive ``chunks``."""
    parts = list(chunks)
    return np.concatenate(parts) if parts else np.empty(0)


class RequestSource:
    """Every request of a run, replayed window by window from its seeded streams.

    ``batches()`` returns a fresh iterator of the windows' requests (new
    generators from the run seed each call), so every call yields the same
    requests: each world, and the oracle, replays them independently.
    ``profile`` is the rate the arrivals follow; ``sizes_from_trace`` and
    ``read_ahead`` as in :class:`~elastic_des.engine.workload.Workload`.
    """

    read_ahead = True

    def __init__(self, batches: Callable[[], Iterator[RequestBatch]], profile, duration_s: float,
                 sizes_from_trace: bool = False):
        self._batches = batches
        self.profile = profile
        self.duration_s = float(duration_s)
        self.sizes_from_trace = sizes_from_trace

    def batches(self) -> Iterator[RequestBatch]:
        return self._batches()


class SizedRequests:
    """The batches of the windows of ``arrival_windows()``, each request sized
    as one whole-run draw sizes them: from ``make_rng()``, every request's
    prompt tokens (``prompt(rng, n)``) in arrival order, then every
    request's output tokens (``output(rng, n)``).

    Replayed a window at a time, that needs two generators: one at the start
    of the stream for the prompts, and one past the run's ``n`` prompt
    draws for the outputs. Finding the latter takes one replay of the
    arrivals (to know ``n``) and ``n`` prompt draws made and thrown away, on
    first use; its state is kept. This relies on each distribution drawing
    element by element (``sample(rng, a + b)`` is ``sample(rng, a)`` then
    ``sample(rng, b)``), which ``tests/test_streaming.py`` checks.
    """

    def __init__(self, arrival_windows: Callable[[], Iterator[np.ndarray]],
                 prompt: Callable[[np.random.Generator, int], np.ndarray],
                 output: Callable[[np.random.Generator, int], np.ndarray],
                 make_rng: Callable[[], np.random.Generator]):
        self.arrival_windows = arrival_windows
        self.prompt = prompt
        self.output = output
        self.make_rng = make_rng
        self._outputs_state: Optional[dict] = None

    def outputs_state(self) -> dict:
        """The sizes stream's state after every request's prompt draw."""
        if self._outputs_state is None:
            requests = sum(len(arrival) for arrival in self.arrival_windows())
            rng = self.make_rng()
            for first in range(0, requests, DRAW_CHUNK):
                self.prompt(rng, min(DRAW_CHUNK, requests - first))
            self._outputs_state = rng.bit_generator.state
        return self._outputs_state

    def __call__(self) -> Iterator[RequestBatch]:
        prompt_rng, output_rng = self.make_rng(), _generator_at(self.outputs_state())
        for arrival in self.arrival_windows():
            if len(arrival):
                yield RequestBatch(arrival, self.prompt(prompt_rng, len(arrival)), self.output(output_rng, len(arrival)))


def sliced(batch: RequestBatch, duration_s: float, window_s: float = WINDOW_S) -> Iterator[RequestBatch]:
    """``batch`` (held whole, e.g. a replayed timestamps trace) cut into the windows of :func:`window_edges`."""
    stops = np.searchsorted(batch.arrival_s, [end for _, end in window_edges(duration_s, window_s)], side="left")
    first = 0
    for stop in [*stops[:-1].tolist(), len(batch)]:
        if stop > first:
            yield batch.part(first, stop)
        first = stop


def two_readers(items: Iterable[Item]) -> tuple[Iterator[Item], Iterator[Item]]:
    """Two iterators over ``items``, each item held only until both have read it.

    A world and its clairvoyant limit read the same windows a tick apart.
    ``itertools.tee`` would do, but it frees what both have read in blocks
    of 57 items, and a month has 120 windows: it would hold them all."""
    source = iter(items)
    unread: tuple[deque, deque] = (deque(), deque())

    def reader(mine: deque, other: deque) -> Iterator[Item]:
        while True:
            if mine:
                yield mine.popleft()
                continue
            for item in source:  # one item: the other reader gets it too
                other.append(item)
                yield item
                break
            else:
                return

    return reader(unread[0], unread[1]), reader(unread[1], unread[0])
