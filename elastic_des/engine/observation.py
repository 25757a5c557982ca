"""What the controller observes at a decision tick.

Everything is measured over the window since the previous tick, as a
monitoring system would report it (arrival rate, utilization, latency
percentiles of completed requests), plus the instantaneous state of the
fleet and queue, and the forecaster's prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Observation:
    """A decision tick's view of one world.

    time_s: simulated time of the tick.
    tick: index of the tick (0 is the first decision, one tick after start).
    arrival_rate_rps: arrivals in the window divided by its length.
    utilization: busy slots / serving slots, time-averaged over the window
        (0 when no replica served during the window).
    queue_length: requests waiting now.
    in_flight: requests in service now.
    latency_p50_s, latency_p95_s, latency_p99_s: of requests completed in the
        window (NaN when none completed).
    sla_compliance: share of the window's finished or dropped requests that
        met the SLO (NaN when none).
    drops: requests dropped in the window.
    replicas_ready, replicas_provisioning, replicas_draining: now.
    target_replicas: the target in force before this decision.
    forecast_rps: predicted arrival rate for each of the next ticks.
    slots_per_replica: concurrency of one replica.
    service_mean_s: the planner's estimate of the mean service time of one
        request (s): the analytic prior blended with the service times of
        the requests completed so far (see the controller).
    service_scv: its squared coefficient of variation (variance / mean²).
    arrival_peak_rps: the highest per-second arrival count within the window.
    arrival_dispersion: index of dispersion (variance / mean) of the
        per-second arrival counts in the window; 1 for Poisson arrivals,
        above 1 for bursty ones (1 when nothing arrived).
    """

    time_s: float
    tick: int
    arrival_rate_rps: float
    utilization: float
    queue_length: int
    in_flight: int
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    sla_compliance: float
    drops: int
    replicas_ready: int
    replicas_provisioning: int
    replicas_draining: int
    target_replicas: int
    forecast_rps: np.ndarray
    slots_per_replica: int
    # Defaults keep hand-built observations (tests, external callers) valid.
    service_mean_s: float = math.nan
    service_scv: float = math.nan
    arrival_peak_rps: float = 0.0
    arrival_dispersion: float = 1.0

    @property
    def concurrency(self) -> float:
        """Requests in the system now (in service or waiting)."""
        return float(self.in_flight + self.queue_length)
