"""What the controller estimates from the window it just measured.

* :class:`ServiceTimeEstimator`: the mean and squared coefficient of
  variation (SCV) of the service time per request, which every Erlang-C
  planner needs. It starts from the analytic prior (the config's token
  distributions, or the trace's own request sizes when replaying a
  timestamps trace) and follows what the fleet measures: the service times
  of the requests completed in each tick. The smoothing is an exponentially
  weighted moving average *per completed request*, with a half-life of
  ``half_life_requests`` (default 200): a tick that completed ``n`` requests
  moves the estimate by the weight ``1 - 0.5 ** (n / half_life)`` towards
  that tick's mean, and likewise the second moment. So the prior counts as
  about ``half_life / ln 2`` requests, a busy tick moves the estimate more
  than a quiet one, and on a stationary stream the estimate converges to the
  true mean (its error after ``N`` requests shrinks like ``0.5 ** (N / h)``
  for the prior's share, plus the sampling noise of the last ~``1.44 h``).
* :func:`arrival_burstiness`: what a monitoring stack sees of burstiness
  within a tick: the highest per-second arrival count (``arrival_peak_rps``)
  and the index of dispersion (variance / mean) of the per-second counts
  (``arrival_dispersion``; 1 for a Poisson process, above 1 for bursty
  arrivals; 1 by convention for a tick without arrivals).
"""

from __future__ import annotations

import math

import numpy as np


class ServiceTimeEstimator:
    """EWMA per completed request of the service time's mean and second moment,
    started at the prior ``(prior_mean_s, prior_scv)``; see the module docs."""

    def __init__(self, prior_mean_s: float, prior_scv: float, half_life_requests: float = 200.0):
        if not (prior_mean_s > 0 and math.isfinite(prior_mean_s)):
            raise ValueError(f"prior_mean_s = {prior_mean_s}: must be finite and > 0")
        if not (prior_scv >= 0 and math.isfinite(prior_scv)):
            raise ValueError(f"prior_scv = {prior_scv}: must be finite and >= 0")
        if not half_life_requests > 0:
            raise ValueError(f"half_life_requests = {half_life_requests}: must be > 0")
        self.half_life = float(half_life_requests)
        self.mean_s = float(prior_mean_s)
        self.second_moment = (1.0 + prior_scv) * prior_mean_s**2

    @property
    def scv(self) -> float:
        """Squared coefficient of variation of the estimate."""
        return max(0.0, self.second_moment / self.mean_s**2 - 1.0)

    def update(self, service_s: np.ndarray) -> None:
        """Fold in the service times of the requests completed in one tick."""
        n = len(service_s)
        if n == 0:
            return
        weight = 1.0 - 0.5 ** (n / self.half_life)
        # np.mean(x) is np.add.reduce(x) / n, done here without its Python
        # wrapper (it runs every tick): the same sum and division, bit for bit.
        self.mean_s += weight * (float(np.add.reduce(service_s)) / n - self.mean_s)
        self.second_moment += weight * (float(np.add.reduce(np.square(service_s))) / n - self.second_moment)


def arrival_burstiness(arrival_s: np.ndarray, start_s: float, end_s: float) -> tuple[float, float]:
    """``(peak, dispersion)`` of the per-second counts of ``arrival_s`` (the
    arrivals in ``[start_s, end_s)``, sorted); see the module docs. The last
    second of a window that is not a whole number of seconds long counts as a
    whole second, its count scaled up to a rate."""
    seconds = max(1, math.ceil(end_s - start_s - 1e-9))
    if len(arrival_s) == 0:
        return 0.0, 1.0
    index = np.minimum(((np.asarray(arrival_s) - start_s) // 1.0).astype(np.int64), seconds - 1)
    counts = np.bincount(index, minlength=seconds).astype(float)
    tail = end_s - start_s - (seconds - 1)
    if 0 < tail < 1:
        counts[-1] /= tail
    peak = float(np.maximum.reduce(counts))  # counts.max() without its Python wrapper
    if seconds < 2:
        return peak, 1.0
    # counts.mean() and counts.var(ddof=1) without their Python wrappers (this
    # runs every tick): the same sums and divisions, bit for bit.
    mean = np.add.reduce(counts) / seconds
    return peak, float(np.add.reduce(np.square(counts - mean)) / (seconds - 1) / mean)
