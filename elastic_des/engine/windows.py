"""Requests generated one window of simulated time at a time.

A month at 50 req/s is 130 million requests: held as arrays (arrival time,
sizes, service work) they alone would take several GB per world. So a
workload is a *recipe*: a :class:`RequestSource` replays the run's requests
window by window (:data:`WINDOW_S` of simulated time each) from the seeded
streams, and the simulation pulls a window only when it reaches it.

The windows are the definition of the stream, not an approximation of it:
the whole-array workload (:func:`elastic_des.engine.workload.build_workload`)
is the concatenation of the same windows, so a run that streams and a run
that holds every request see bit-identical requests. A window's length is a
constant, never derived from the tick, so changing the controller's tick
does not change the requests. How each arrival process draws its windows:

* NHPP thinning (Poisson and on/off arrivals, and rate traces): exact
  thinning within each window (:func:`thinned_windows`), so the windows
  together are exactly the NHPP on the whole run;
* renewal processes and client mixtures
  (:mod:`elastic_des.engine.arrivals`) draw their points in consecutive
  chunks, regrouped here into the fixed windows (:func:`fixed_windows`);
* a timestamps trace is held whole (it is a file already in memory) and
  cut into windows.

Request sizes are drawn per window (prompts then outputs) from the sizes
stream, so they too follow the windows. A run no longer than one window
draws exactly what drawing the whole run at once did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

WINDOW_S = 21_600.0  # six hours: ~1M requests at 50 req/s, about 60 MB of arrays per window


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


def thinned_windows(profile, rng: np.random.Generator, window_s: float = WINDOW_S) -> Iterator[np.ndarray]:
    """A non-homogeneous Poisson process with ``profile.rate`` by exact thinning
    (Lewis & Shedler 1979), one window at a time: in each window candidates
    from a homogeneous process at the rate ``profile.upper_bound()`` (a
    Poisson count, then sorted uniform times), each kept with probability
    ``rate(t) / upper``."""
    upper = profile.upper_bound()
    for start, end in window_edges(profile.duration_s, window_s):
        if upper <= 0:
            yield np.empty(0)
            continue
        count = rng.poisson(upper * (end - start))
        candidates = np.sort(rng.uniform(start, end, count))
        keep = rng.uniform(0.0, upper, count) < profile.rate(candidates)
        yield candidates[keep]


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


def sized(arrival_windows: Callable[[], Iterator[np.ndarray]],
          sizes: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]],
          make_sizes_rng: Callable[[], np.random.Generator]) -> Callable[[], Iterator[RequestBatch]]:
    """The batches of the windows of ``arrival_windows()``, each request sized by
    ``sizes(rng, n)`` (prompt and output tokens) from a fresh ``make_sizes_rng()``."""
    def batches() -> Iterator[RequestBatch]:
        rng = make_sizes_rng()
        for arrival in arrival_windows():
            if len(arrival):
                yield RequestBatch(arrival, *sizes(rng, len(arrival)))
    return batches


def sliced(batch: RequestBatch, duration_s: float, window_s: float = WINDOW_S) -> Iterator[RequestBatch]:
    """``batch`` (held whole, e.g. a replayed timestamps trace) cut into the windows of :func:`window_edges`."""
    stops = np.searchsorted(batch.arrival_s, [end for _, end in window_edges(duration_s, window_s)], side="left")
    first = 0
    for stop in [*stops[:-1].tolist(), len(batch)]:
        if stop > first:
            yield batch.part(first, stop)
        first = stop
