"""Requests generated one window of simulated time at a time.

A month at 50 req/s is 130 million requests: held as arrays (arrival time,
sizes, service work) they alone would take several GB per world. So a
workload is a *recipe*: a :class:`RequestSource` replays the run's requests
window by window (:data:`WINDOW_S` of simulated time each) from the seeded
streams, and the simulation pulls a window only when it reaches it.

The windows replay the run's draw, not an approximation of it: every
stream is drawn in pieces whose boundaries do not depend on the windows
(thinning slices, renewal blocks, size blocks), so the requests of every
window, concatenated, are bit for bit the requests of the whole-array
workload (:func:`elastic_des.engine.workload.build_workload`, which
concatenates the same windows), a run that streams and a run that holds
every request see the same requests, and a run's results do not depend on
the window length. Each piece is drawn once per replay, in order, so a
replay costs the same per request however long the run. How each part is
replayed:

* NHPP thinning (Poisson and on/off arrivals, and rate traces):
  :class:`ThinnedArrivals`, slice by slice;
* renewal processes and client mixtures
  (:mod:`elastic_des.engine.arrivals`) draw their points in consecutive
  chunks in the draw's order;
* both regrouped into the fixed windows (:func:`fixed_windows`);
* a timestamps trace is held whole (it is a file already in memory) and
  cut into windows;
* request sizes (:class:`RequestSizes`): a block of prompts, then the
  block's outputs, block after block.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

WINDOW_S = 21_600.0  # six hours: ~1M requests at 50 req/s, about 60 MB of arrays per window
DRAW_CHUNK = 1 << 20  # thinning candidates drawn at once at most (8 MB a column); see ThinnedArrivals
SLICE_S = 600.0  # the thinning's slice: at 50 req/s about 30k-100k candidates
SIZE_BLOCK = 1 << 16  # requests sized at once: prompts, then outputs; see RequestSizes

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


class ThinnedArrivals:
    """A non-homogeneous Poisson process with ``profile.rate`` by exact thinning
    (Lewis & Shedler 1979), drawn slice by slice and replayed a window at a time.

    The draw: from ``make_rng()``, slice after slice of :data:`SLICE_S`
    seconds (shorter when a slice would hold more than :data:`DRAW_CHUNK`
    candidates at ``upper = profile.upper_bound()``; the last one ends the
    run), a Poisson count of candidates at the rate ``upper`` over the
    slice, that many uniform candidate times in it (sorted), and that many
    uniform acceptance draws on ``[0, upper)``, the ``i``-th compared with
    the rate at the ``i``-th candidate. Counts on disjoint intervals of a
    Poisson process are independent, so this is the process itself, not
    an approximation of it. The slices do not depend on the windows: the
    windows (:func:`fixed_windows`) regroup one pass over the slices, so a
    run holds one slice's candidates at a time and its arrivals do not depend
    on the window length, and a replay costs the same per request whatever
    the run's length.
    """

    def __init__(self, profile, make_rng: Callable[[], np.random.Generator], window_s: float = WINDOW_S):
        self.profile = profile
        self.make_rng = make_rng
        self.window_s = window_s

    def slice_s(self) -> float:
        """The length of a slice (see the class docs)."""
        upper = self.profile.upper_bound()
        return min(SLICE_S, DRAW_CHUNK / upper) if upper > 0 else SLICE_S

    def slices(self) -> Iterator[np.ndarray]:
        """The arrival times of each slice, in order."""
        upper = self.profile.upper_bound()
        duration_s = self.profile.duration_s
        if upper <= 0:
            return
        rng = self.make_rng()
        slice_s = self.slice_s()
        for k in range(int(math.ceil(duration_s / slice_s))):
            start, end = k * slice_s, min((k + 1) * slice_s, duration_s)
            count = int(rng.poisson(upper * (end - start)))
            candidates = np.sort(rng.uniform(start, end, count))
            accept = rng.uniform(0.0, upper, count)
            yield candidates[accept < self.profile.rate(candidates)]

    def __call__(self) -> Iterator[np.ndarray]:
        """The arrival times of each window, in order."""
        return fixed_windows(self.slices(), self.profile.duration_s, self.window_s)


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


class RequestSizes:
    """Request sizes in arrival order, drawn a block at a time.

    The draw: from ``make_rng()``, block after block of :data:`SIZE_BLOCK`
    requests, the block's prompt tokens (``prompt(rng, n)``), then its
    output tokens (``output(rng, n)``). The ``i``-th request's sizes are the
    same however the requests are taken (:meth:`take`, a window at a time
    or all at once), and a run holds one block beyond what it has taken.
    """

    def __init__(self, prompt: Callable[[np.random.Generator, int], np.ndarray],
                 output: Callable[[np.random.Generator, int], np.ndarray], rng: np.random.Generator):
        self.prompt = prompt
        self.output = output
        self.rng = rng
        self._prompts, self._outputs = np.empty(0), np.empty(0)

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The prompt and output tokens of the next ``n`` requests."""
        prompts, outputs = [self._prompts], [self._outputs]
        held = len(self._prompts)
        while held < n:
            prompts.append(self.prompt(self.rng, SIZE_BLOCK))
            outputs.append(self.output(self.rng, SIZE_BLOCK))
            held += SIZE_BLOCK
        prompt, output = np.concatenate(prompts), np.concatenate(outputs)
        self._prompts, self._outputs = prompt[n:], output[n:]
        return prompt[:n], output[:n]


class SizedRequests:
    """The batches of the windows of ``arrival_windows()``, each request sized
    by :class:`RequestSizes` from a fresh ``make_rng()`` per replay."""

    def __init__(self, arrival_windows: Callable[[], Iterator[np.ndarray]],
                 prompt: Callable[[np.random.Generator, int], np.ndarray],
                 output: Callable[[np.random.Generator, int], np.ndarray],
                 make_rng: Callable[[], np.random.Generator]):
        self.arrival_windows = arrival_windows
        self.prompt = prompt
        self.output = output
        self.make_rng = make_rng

    def __call__(self) -> Iterator[RequestBatch]:
        sizes = RequestSizes(self.prompt, self.output, self.make_rng())
        for arrival in self.arrival_windows():
            if len(arrival):
                yield RequestBatch(arrival, *sizes.take(len(arrival)))


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
