"""Queueing theory the simulator is checked against, and fleet sizing.

* M/M/c (Erlang C): probability that an arrival waits, mean wait, and the
  tail ``P(W > t) = C(c, a) exp(-(c mu - lambda) t)``.
* M/M/c/K: the stationary distribution with at most ``K`` in the system
  (``K - c`` waiting), so the blocking probability and the mean wait of the
  admitted requests.
* Little's law ``L = lambda W`` is a property of any stable queue; tests
  check it on the simulator's own output.
* GI/G/c (Allen–Cunneen): the M/M/c wait scaled by ``(c_a² + c_s²) / 2``,
  the squared coefficients of variation of inter-arrival and service
  times; :func:`replicas_for_slo` uses it as a burst correction.

Probabilities are computed in log space so ``c`` in the hundreds is fine.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, logsumexp


def _check(arrival_rate: float, service_rate: float, servers: int) -> None:
    if arrival_rate <= 0:
        raise ValueError(f"arrival_rate = {arrival_rate}: must be > 0")
    if service_rate <= 0:
        raise ValueError(f"service_rate = {service_rate}: must be > 0")
    if servers < 1 or int(servers) != servers:
        raise ValueError(f"servers = {servers}: must be a whole number >= 1")


def erlang_c(servers: int, arrival_rate: float, service_rate: float) -> float:
    """P(an arrival waits) in an M/M/c queue; 1.0 when it is unstable."""
    _check(arrival_rate, service_rate, servers)
    a = arrival_rate / service_rate  # offered load in Erlangs
    rho = a / servers
    if rho >= 1:
        return 1.0
    k = np.arange(servers)
    log_terms = k * math.log(a) - gammaln(k + 1)
    log_last = servers * math.log(a) - gammaln(servers + 1) - math.log1p(-rho)
    return float(math.exp(log_last - logsumexp(np.append(log_terms, log_last))))


def mmc_mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in queue Wq of an M/M/c queue (inf when unstable)."""
    _check(arrival_rate, service_rate, servers)
    if arrival_rate >= servers * service_rate:
        return math.inf
    return erlang_c(servers, arrival_rate, service_rate) / (servers * service_rate - arrival_rate)


def mmc_wait_tail(servers: int, arrival_rate: float, service_rate: float, t: float) -> float:
    """P(W > t) for the queueing delay of an M/M/c queue."""
    _check(arrival_rate, service_rate, servers)
    if t < 0:
        raise ValueError(f"t = {t}: must be >= 0")
    if arrival_rate >= servers * service_rate:
        return 1.0
    pw = erlang_c(servers, arrival_rate, service_rate)
    return pw * math.exp(-(servers * service_rate - arrival_rate) * t)


def mmck_distribution(servers: int, capacity: int, arrival_rate: float, service_rate: float) -> np.ndarray:
    """Stationary P(n in system), n = 0..capacity, of an M/M/c/K queue."""
    _check(arrival_rate, service_rate, servers)
    if capacity < servers:
        raise ValueError(f"capacity = {capacity}: must be >= servers ({servers})")
    a = arrival_rate / service_rate
    n = np.arange(capacity + 1)
    log_p = np.where(
        n <= servers,
        n * math.log(a) - gammaln(n + 1),
        n * math.log(a) - gammaln(servers + 1) - (n - servers) * math.log(servers),
    )
    return np.exp(log_p - logsumexp(log_p))


def mmck_blocking(servers: int, capacity: int, arrival_rate: float, service_rate: float) -> float:
    """P(an arrival finds the system full) in an M/M/c/K queue."""
    return float(mmck_distribution(servers, capacity, arrival_rate, service_rate)[-1])


def mmck_mean_wait(servers: int, capacity: int, arrival_rate: float, service_rate: float) -> float:
    """Mean queueing delay of the admitted requests of an M/M/c/K queue (Little's law)."""
    p = mmck_distribution(servers, capacity, arrival_rate, service_rate)
    n = np.arange(capacity + 1)
    lq = float(np.sum(np.maximum(n - servers, 0) * p))
    return lq / (arrival_rate * (1 - p[-1]))


def replicas_for_slo(
    arrival_rate: float,
    mean_service_s: float,
    slots_per_replica: int,
    slo_latency_s: float,
    slo_target: float,
    max_replicas: int = 100_000,
    arrival_scv: float = 1.0,
    service_scv: float = 1.0,
) -> int:
    """The fewest replicas that meet the SLO at ``arrival_rate``, by Erlang C.

    Each slot is an M/M/c server with rate ``1/mean_service_s``. The SLO asks
    that ``slo_target`` of requests finish within ``slo_latency_s``; the wait
    budget left after a mean service is ``slo_latency_s - mean_service_s``,
    and the fleet must keep ``P(W > budget) <= 1 - slo_target``. With no
    budget left it must keep ``P(W > 0)`` that low. This treats service as
    exponential and ignores its own tail: a sizing rule, not a guarantee.

    Burst correction (Allen–Cunneen): with inter-arrival SCV ``arrival_scv``
    and service SCV ``service_scv``, the conditional wait of a waiting
    request is stretched by ``g = (arrival_scv + service_scv) / 2``, so
    ``P(W > t) ≈ C(c, a) exp(-(c mu - lambda) t / g)``. ``g`` is floored at 1:
    the correction only ever adds replicas to the M/M/c sizing (a service
    SCV below 1 is not taken as licence to size below Erlang C), and with
    the defaults (1, 1) the result is exactly Erlang C's.
    """
    if slo_latency_s <= 0:
        raise ValueError(f"slo_latency_s = {slo_latency_s}: must be > 0")
    if not 0 < slo_target < 1:
        raise ValueError(f"slo_target = {slo_target}: must be in (0, 1)")
    if mean_service_s <= 0:
        raise ValueError(f"mean_service_s = {mean_service_s}: must be > 0")
    if slots_per_replica < 1:
        raise ValueError(f"slots_per_replica = {slots_per_replica}: must be >= 1")
    if not (arrival_scv >= 0 and service_scv >= 0):
        raise ValueError(f"arrival_scv = {arrival_scv}, service_scv = {service_scv}: must be >= 0")
    if arrival_rate <= 0:
        return 1
    stretch = max(1.0, (arrival_scv + service_scv) / 2.0)
    mu = 1.0 / mean_service_s
    budget = max(0.0, slo_latency_s - mean_service_s)
    replicas = max(1, math.ceil(arrival_rate * mean_service_s / slots_per_replica))
    while replicas <= max_replicas:
        if mmc_wait_tail(replicas * slots_per_replica, arrival_rate, mu, budget / stretch) <= 1 - slo_target:
            return replicas
        replicas += 1
    raise ValueError(
        f"arrival_rate = {arrival_rate:g} req/s needs more than max_replicas = {max_replicas} replicas to meet the SLO"
    )
