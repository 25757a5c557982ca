"""Bursty arrival processes: renewal, Markov-modulated on/off, client mixtures.

Poisson arrivals (the NHPP of :mod:`elastic_des.engine.workload`) have
inter-arrival CV 1; real inference traffic is burstier (ServeGen reports
per-client inter-arrival CVs of 2–8, fitted by Gamma or Weibull laws). Each
process here keeps a rate profile's mean rate and adds burstiness:

* :func:`renewal_chunks`: a renewal process whose inter-arrival times
  (in *operational time*) follow a unit-mean distribution with the given CV,
  mapped through the inverse of the cumulative rate ``Λ(t) = ∫ rate``; at a
  constant rate ``λ`` the inter-arrival times are the distribution scaled to
  mean ``1/λ``. The first arrival is a uniform fraction of a first gap (an
  approximately stationary start).
* :class:`OnOffRateProfile`: a Markov-modulated Poisson process: the rate is
  multiplied by ``m_on`` during exponential ON periods (mean ``on_mean_s``)
  and by ``m_off`` during OFF periods (mean ``off_mean_s``), with
  ``m_on / m_off = burst_ratio`` and the time-average factor 1, so the mean
  rate is the profile's. Sampled by thinning like any NHPP.
* :func:`client_mixture_chunks`: a ServeGen client file replayed as the
  superposition of one renewal process per (client, window), each at the
  client's rate with its inter-arrival family and CV. The process restarts
  at window boundaries (ServeGen fits each window separately).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from elastic_des.engine.distributions import Distribution, interarrival_distribution
from elastic_des.engine.traces import ClientTrace

CUMULATIVE_GRID_S = 1.0  # resolution of the cumulative rate Λ(t) for the time change


# Gaps of a renewal process drawn at once at most: a month of arrivals is
# drawn a chunk at a time, never as one array the size of the run.
RENEWAL_CHUNK = 1 << 20


def _renewal_points(gaps: Distribution, horizon: float, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Points of a stationary renewal process with ``gaps`` on ``[0, horizon)``,
    in consecutive sorted chunks.

    The draw is defined in blocks: a block of gaps sized to cover what is
    left of the horizon with room to spare (its mean plus four standard
    deviations), the first gap of the first block scaled by a uniform drawn
    after that block (the forward recurrence time, so the process is
    stationary at 0), and more blocks while the horizon is not reached.
    Every draw of a block is made, even past the horizon, so a generator
    shared by several processes (a client mixture) moves on by the same
    draws however the points are chunked. A block larger than
    :data:`RENEWAL_CHUNK` is drawn in chunks with the same draws and the
    same sums (the running sum carried over), its uniform found by drawing
    the first block once more.
    """
    if horizon <= 0:
        return
    expected = horizon / gaps.mean
    end = 0.0
    first = True
    while end < horizon:
        size = int(expected + 4.0 * math.sqrt(expected * (1.0 + gaps.scv)) + 16)
        scale = None  # the first gap's uniform, when found ahead
        if first and size > RENEWAL_CHUNK:
            before = rng.bit_generator.state
            for done in range(0, size, RENEWAL_CHUNK):
                gaps.sample(rng, min(RENEWAL_CHUNK, size - done))
            scale = rng.uniform()
            after = rng.bit_generator.state
            rng.bit_generator.state = before
        partial = 0.0
        for done in range(0, size, RENEWAL_CHUNK):
            draws = gaps.sample(rng, min(RENEWAL_CHUNK, size - done))
            if first:
                draws[0] *= rng.uniform() if scale is None else scale
                first = False
            # cumsum adds in sequence: the carried partial sum keeps the block's sums exact
            sums = np.cumsum(np.concatenate(([partial], draws)))[1:]
            partial = float(sums[-1])
            points = end + sums
            yield points[points < horizon]
        if scale is not None:
            rng.bit_generator.state = after
        end = float(points[-1])
        expected = max(1.0, (horizon - end) / gaps.mean)


def renewal_chunks(profile, family: str, cv: float, rng: np.random.Generator, field: str) -> Iterator[np.ndarray]:
    """Arrival times of a renewal process of ``family`` and ``cv`` following
    ``profile.rate`` by a time change (see the module docs), in consecutive
    sorted chunks. The cumulative rate is held on a grid of
    :data:`CUMULATIVE_GRID_S` (16 bytes per second of the run)."""
    steps = max(1, int(math.ceil(profile.duration_s / CUMULATIVE_GRID_S)))
    edges = np.linspace(0.0, profile.duration_s, steps + 1)
    mids = (edges[:-1] + edges[1:]) / 2.0
    cumulative = np.concatenate([[0.0], np.cumsum(profile.rate(mids) * np.diff(edges))])
    del mids
    total = float(cumulative[-1])
    if total <= 0:
        return
    for operational in _renewal_points(interarrival_distribution(family, 1.0, cv, field), total, rng):
        yield np.interp(operational, cumulative, edges)


class OnOffRateProfile:
    """``base`` modulated by an ON/OFF Markov chain (see the module docs)."""

    def __init__(self, base, on_mean_s: float, off_mean_s: float, burst_ratio: float, rng: np.random.Generator):
        if not (on_mean_s > 0 and off_mean_s > 0):
            raise ValueError(f"on_mean_s = {on_mean_s}, off_mean_s = {off_mean_s}: must be > 0")
        if not burst_ratio >= 1:
            raise ValueError(f"burst_ratio = {burst_ratio}: must be >= 1")
        self.base = base
        self.duration_s = base.duration_s
        on_share = on_mean_s / (on_mean_s + off_mean_s)
        self.off_factor = 1.0 / (on_share * burst_ratio + 1.0 - on_share)
        self.on_factor = burst_ratio * self.off_factor
        # Alternating periods from a stationary start: ON with probability on_share.
        switches, states, t = [0.0], [rng.uniform() < on_share], 0.0
        while t < self.duration_s:
            t += rng.exponential(on_mean_s if states[-1] else off_mean_s)
            switches.append(t)
            states.append(not states[-1])
        self.switch_s = np.asarray(switches)
        self.on = np.asarray(states)

    def factor(self, t: np.ndarray) -> np.ndarray:
        on = self.on[np.searchsorted(self.switch_s, np.asarray(t, dtype=float), side="right") - 1]
        return np.where(on, self.on_factor, self.off_factor)

    def rate(self, t: np.ndarray) -> np.ndarray:
        return self.base.rate(t) * self.factor(t)

    def upper_bound(self) -> float:
        return self.base.upper_bound() * self.on_factor

    @property
    def peak_rps(self) -> float:
        return self.base.peak_rps * self.on_factor

    @property
    def mean_rps(self) -> float:
        return self.base.mean_rps

    def peak_before(self, end_s: float) -> float:
        # The level to start from, not a burst: whether one is on at t = 0 is not planned.
        return self.base.peak_before(end_s)


def client_mixture_chunks(trace: ClientTrace, first_window: int, window_s: float, rate_scale: float,
                          duration_s: float, rng: np.random.Generator, field: str) -> Iterator[np.ndarray]:
    """Arrivals of ``trace``'s clients from ``first_window`` on, in run time
    (``window_s`` per window after compression; each client's rate, already
    compressed, times ``rate_scale``) on ``[0, duration_s)``: one sorted chunk
    per trace window, in order. Within a window the clients draw in the
    file's row order."""
    compression = trace.window_s / window_s
    rows = np.flatnonzero(trace.window >= first_window)
    rows = rows[np.argsort(trace.window[rows], kind="stable")]
    windows = trace.window[rows]
    for group in np.split(rows, np.flatnonzero(np.diff(windows)) + 1) if len(rows) else []:
        start = (trace.window[group[0]] - first_window) * window_s
        if start >= duration_s:
            return
        arrivals = []
        for row in group.tolist():
            rate = trace.rate_rps[row] * compression * rate_scale
            if rate <= 0:
                continue
            gaps = interarrival_distribution(trace.family[row], 1.0 / rate, trace.interarrival_cv[row],
                                             f"{field}.family")
            points = start + np.concatenate(list(_renewal_points(gaps, window_s, rng)) or [np.empty(0)])
            arrivals.append(points[points < duration_s])
        if arrivals:
            yield np.sort(np.concatenate(arrivals))
