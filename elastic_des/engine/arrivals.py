"""Bursty arrival processes: renewal, Markov-modulated on/off, client mixtures.

Poisson arrivals (the NHPP of :mod:`elastic_des.engine.workload`) have
inter-arrival CV 1; real inference traffic is burstier (ServeGen reports
per-client inter-arrival CVs of 2–8, fitted by Gamma or Weibull laws). Each
process here keeps a rate profile's mean rate and adds burstiness:

* :func:`sample_renewal`: a renewal process whose inter-arrival times
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
* :func:`sample_client_mixture`: a ServeGen client file replayed as the
  superposition of one renewal process per (client, window), each at the
  client's rate with its inter-arrival family and CV. The process restarts
  at window boundaries (ServeGen fits each window separately).
"""

from __future__ import annotations

import math

import numpy as np

from elastic_des.engine.distributions import Distribution, interarrival_distribution
from elastic_des.engine.traces import ClientTrace

CUMULATIVE_GRID_S = 1.0  # resolution of the cumulative rate Λ(t) for the time change


def _renewal_points(gaps: Distribution, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """Points of a renewal process with ``gaps`` on ``[0, horizon)``."""
    if horizon <= 0:
        return np.empty(0)
    expected = horizon / gaps.mean
    chunks, end = [], 0.0
    first = True
    while end < horizon:
        size = int(expected + 4.0 * math.sqrt(expected * (1.0 + gaps.scv)) + 16)
        draws = gaps.sample(rng, size)
        if first:
            draws[0] *= rng.uniform()
            first = False
        points = end + np.cumsum(draws)
        chunks.append(points)
        end = float(points[-1])
        expected = max(1.0, (horizon - end) / gaps.mean)
    points = np.concatenate(chunks)
    return points[points < horizon]


def sample_renewal(profile, family: str, cv: float, rng: np.random.Generator, field: str) -> np.ndarray:
    """Sorted arrival times of a renewal process of ``family`` and ``cv``
    following ``profile.rate`` by a time change (see the module docs)."""
    steps = max(1, int(math.ceil(profile.duration_s / CUMULATIVE_GRID_S)))
    edges = np.linspace(0.0, profile.duration_s, steps + 1)
    mids = (edges[:-1] + edges[1:]) / 2.0
    cumulative = np.concatenate([[0.0], np.cumsum(profile.rate(mids) * np.diff(edges))])
    total = float(cumulative[-1])
    if total <= 0:
        return np.empty(0)
    operational = _renewal_points(interarrival_distribution(family, 1.0, cv, field), total, rng)
    return np.interp(operational, cumulative, edges)


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


def sample_client_mixture(trace: ClientTrace, first_window: int, window_s: float, rate_scale: float,
                          duration_s: float, rng: np.random.Generator, field: str) -> np.ndarray:
    """Sorted arrivals of ``trace``'s clients from ``first_window`` on, in run
    time (``window_s`` per window after compression; each client's rate,
    already compressed, times ``rate_scale``) on ``[0, duration_s)``."""
    compression = trace.window_s / window_s
    arrivals = []
    for row in np.flatnonzero(trace.window >= first_window):
        start = (trace.window[row] - first_window) * window_s
        if start >= duration_s:
            continue
        rate = trace.rate_rps[row] * compression * rate_scale
        if rate <= 0:
            continue
        gaps = interarrival_distribution(trace.family[row], 1.0 / rate, trace.interarrival_cv[row],
                                         f"{field}.family")
        points = start + _renewal_points(gaps, window_s, rng)
        arrivals.append(points[points < duration_s])
    return np.sort(np.concatenate(arrivals)) if arrivals else np.empty(0)
