"""M/M/c and M/M/c/K configurations of the simulator, for validation tests.

The engine becomes a textbook queue when every replica has one slot, service
is exponential, replicas are warm from t=0 and never change (a static fleet
of ``c``), and arrivals are a homogeneous Poisson process (no diurnal cycle,
noise or spikes). A finite ``queue_capacity`` of ``K - c`` turns it into an
M/M/c/K queue; no queue timeout, so nothing else is dropped.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import stats
from scipy.linalg import eigvalsh_tridiagonal


def mmc_overrides(
    servers: int,
    rho: float,
    duration_s: float,
    mean_service_s: float = 1.0,
    queue_capacity: Optional[int] = None,
) -> list[str]:
    """Overrides that make a run an M/M/c (or M/M/c/K) queue at load ``rho``."""
    rate = rho * servers / mean_service_s
    capacity = "null" if queue_capacity is None else str(queue_capacity)
    return [
        f"scenario.duration_s={duration_s}",
        f"scenario.workload.base_rate_rps={rate!r}",
        "scenario.workload.diurnal_amplitude=0",
        "scenario.workload.noise_cv=0",
        "scenario.workload.spikes=[]",
        "world.model.service_model=exponential",
        f"world.model.mean_service_s={mean_service_s!r}",
        "world.model.slots_per_replica=1",
        "world.model.cold_start_s=0",
        "world.fleet.min_replicas=1",
        f"world.fleet.max_replicas={servers}",
        "world.fleet.initial_replicas=null",
        f"world.fleet.queue_capacity={capacity}",
        "world.fleet.queue_timeout_s=null",
        "policy=static",
        # Only the policy's world: the static baseline world would double the cost.
        "baseline.enabled=false",
        f"policy.replicas={servers}",
        "output.progress=false",
        "output.requests=true",
        "output.report=false",  # figures cost more than a short run
    ]


def relaxation_time_s(servers: int, rho: float, capacity: Optional[int] = None, mean_service_s: float = 1.0) -> float:
    """The time scale on which the queue forgets its initial state.

    M/M/c: ``1 / (c mu (1 - sqrt(rho))^2)``, the M/M/1 relaxation time of
    Morse (1955) (Abate & Whitt 1987) with the total service rate ``c mu``.
    M/M/c/K (``capacity`` = K): the exact inverse spectral gap of its
    birth-death generator, a symmetric tridiagonal matrix once similarity-
    transformed by the square roots of the stationary probabilities.
    Ten of these is a safe warm-up to discard when a run starts empty.
    """
    if capacity is None:
        return mean_service_s / (servers * (1.0 - np.sqrt(rho)) ** 2)
    n = np.arange(capacity + 1)
    birth = np.where(n < capacity, rho * servers, 0.0)
    death = np.minimum(n, servers).astype(float)
    off_diagonal = np.sqrt(birth[:-1] * death[1:])
    eigenvalues = eigvalsh_tridiagonal(-(birth + death), off_diagonal)  # ascending; the last is 0
    return mean_service_s / -eigenvalues[-2]


def t_interval(samples, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval ``(mean, low, high)``
    of independent per-seed estimates."""
    x = np.asarray(samples, dtype=float)
    mean = float(x.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half
