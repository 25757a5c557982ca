"""The decision loop: observe, forecast, decide, resize, every tick.

The controller is a SimPy process. At each tick it measures the window just
ended (as a monitoring stack would), feeds the observed arrival rate to the
forecaster, asks the policy for a target and hands it to the replica pool.
It also opens the next tick's arrivals to the dispatcher, so the event
queue never holds requests beyond the next decision.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Callable, Optional, Sequence

import numpy as np
import simpy

from elastic_des.engine.dispatcher import Dispatcher
from elastic_des.engine.forecast import Forecaster
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy
from elastic_des.engine.replicas import ReplicaPool

TICK_COLUMNS = (
    "time_s", "arrivals", "arrival_rate_rps", "completions", "drops", "queue_length", "in_flight",
    "utilization", "latency_p50_s", "latency_p95_s", "latency_p99_s", "sla_compliance",
    "replicas_ready", "replicas_provisioning", "replicas_draining", "target_replicas",
    "cost_usd", "forecast_rps",
)


def sorted_percentiles(values: Sequence[float], quantiles: Sequence[float]) -> list[float]:
    """Quantiles (in [0, 1]) of the ascending ``values``, interpolated linearly.

    Bit for bit what ``np.quantile(values, quantiles)`` returns (its default
    ``linear`` method, including the interpolation from the nearer end), but
    without its fixed cost of about 100 µs, which was most of a tick's work.
    """
    last = len(values) - 1
    result = []
    for q in quantiles:
        position = last * q
        below = math.floor(position)
        if below >= last:
            result.append(values[last])
            continue
        gamma = position - below
        a, b = values[below], values[below + 1]
        diff = b - a
        result.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return result


class Controller:
    """Runs ``policy`` on ``pool`` every ``tick_s`` until ``duration_s``.

    ``ticks`` collects one row per tick (see ``TICK_COLUMNS``) and
    ``decisions`` one record per decision: the observation, the forecast,
    the policy's rule and numbers, and the replicas before and after.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pool: ReplicaPool,
        dispatcher: Dispatcher,
        policy: Policy,
        forecaster: Forecaster,
        *,
        tick_s: float,
        horizon_ticks: int,
        duration_s: float,
        slo_latency_s: float,
        usd_per_replica_s: float,
        min_replicas: int,
        max_replicas: int,
        on_tick: Optional[Callable[[float], None]] = None,
        prior_service_s: float = math.nan,
    ):
        if tick_s <= 0:
            raise ValueError(f"tick_s = {tick_s}: must be > 0")
        if horizon_ticks < 1:
            raise ValueError(f"horizon_ticks = {horizon_ticks}: must be >= 1")
        self.env, self.pool, self.dispatcher = env, pool, dispatcher
        self.policy, self.forecaster = policy, forecaster
        self.tick_s, self.horizon, self.duration_s = tick_s, horizon_ticks, duration_s
        self.slo_latency_s = slo_latency_s
        self.usd_per_replica_s = usd_per_replica_s
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        self.on_tick = on_tick
        self.arrival = np.asarray(dispatcher.arrival)
        self.ticks: list[tuple] = []
        self.decisions: list[dict] = []
        self._arrived = 0
        self._busy_area = self._serving_area = 0.0
        self._t_last = 0.0
        # The service-time estimate: first and second moments, starting from the
        # prior with an exponential service's spread (SCV 1) until measured.
        self._service_m1, self._service_m2 = prior_service_s, 2.0 * prior_service_s ** 2

    def process(self):
        """The SimPy process body."""
        env = self.env
        self.dispatcher.spawn_until(min(self.tick_s, self.duration_s))
        tick = 0
        while env.now < self.duration_s:
            yield env.timeout(min(self.tick_s, self.duration_s - env.now))
            self.dispatcher.spawn_until(min(env.now + self.tick_s, self.duration_s))
            obs = self._observe(tick)
            if env.now < self.duration_s:
                self._decide(obs)
            if self.on_tick is not None:
                self.on_tick(env.now)
            tick += 1

    def _observe(self, tick: int) -> Observation:
        env, pool, dispatcher = self.env, self.pool, self.dispatcher
        now = env.now
        window = now - self._t_last
        arrived = int(np.searchsorted(self.arrival, now, side="left"))
        arrivals = arrived - self._arrived
        self._arrived = arrived

        pool._advance_areas()
        busy, serving = pool.busy_area - self._busy_area, pool.serving_area - self._serving_area
        self._busy_area, self._serving_area = pool.busy_area, pool.serving_area
        utilization = busy / serving if serving > 0 else 0.0

        dispatcher.purge_expired()
        done = dispatcher.completed
        dispatcher.completed = []
        drops = dispatcher.drops_since_tick
        dispatcher.drops_since_tick = 0
        if done:
            finish_s, arrival = dispatcher.finish_s, dispatcher.arrival
            latency = sorted([finish_s[i] - arrival[i] for i in done])
            p50, p95, p99 = sorted_percentiles(latency, (0.5, 0.95, 0.99))
            met = bisect_right(latency, self.slo_latency_s)
        else:
            p50 = p95 = p99 = np.nan
            met = 0
        finished = len(done) + drops
        sla = met / finished if finished else np.nan

        rate = arrivals / window if window > 0 else 0.0
        peak_rps, dispersion = self._burstiness(arrived - arrivals, arrived, window)
        service_mean, service_scv = self._measure_service(done)
        self.forecaster.update(rate)
        forecast = np.asarray(self.forecaster.predict(self.horizon), dtype=float)
        self._t_last = now
        obs = Observation(
            time_s=now, tick=tick, arrival_rate_rps=rate, utilization=utilization,
            queue_length=len(dispatcher.queue), in_flight=pool.busy_slots,
            latency_p50_s=float(p50), latency_p95_s=float(p95), latency_p99_s=float(p99),
            sla_compliance=sla, drops=drops, replicas_ready=pool.n_ready,
            replicas_provisioning=pool.n_provisioning, replicas_draining=pool.n_draining,
            target_replicas=pool.target, forecast_rps=forecast, slots_per_replica=pool.slots,
            service_mean_s=service_mean, service_scv=service_scv,
            arrival_peak_rps=peak_rps, arrival_dispersion=dispersion,
        )
        self.ticks.append((
            now, arrivals, rate, len(done), drops, obs.queue_length, obs.in_flight, utilization,
            obs.latency_p50_s, obs.latency_p95_s, obs.latency_p99_s, sla, pool.n_ready,
            pool.n_provisioning, pool.n_draining, pool.target,
            pool.billed_replica_s() * self.usd_per_replica_s, float(forecast[0]),
        ))
        return obs

    def _burstiness(self, first: int, end: int, window: float) -> tuple[float, float]:
        """Peak per-second arrival count and index of dispersion of the
        per-second counts of the window's arrivals ``first:end``."""
        seconds = max(1, math.ceil(window))
        if end <= first:
            return 0.0, 1.0
        offsets = (self.arrival[first:end] - self._t_last).astype(np.int64)
        counts = np.bincount(np.minimum(offsets, seconds - 1), minlength=seconds)
        mean = counts.mean()
        return float(counts.max()), float(counts.var() / mean)

    # Completions whose measurement weighs as much as the running estimate: a
    # tick of 100 completions moves it half-way, one completion by 1 %.
    SERVICE_PRIOR_WEIGHT = 100

    def _measure_service(self, done: list[int]) -> tuple[float, float]:
        """Blend the service times of the window's completions into the
        estimate (weight ``n / (n + SERVICE_PRIOR_WEIGHT)``); returns its
        mean and SCV."""
        if done and math.isfinite(self._service_m1):
            service = self.dispatcher.service
            values = np.fromiter((service[i] for i in done), dtype=float, count=len(done))
            weight = len(done) / (len(done) + self.SERVICE_PRIOR_WEIGHT)
            self._service_m1 += weight * (float(values.mean()) - self._service_m1)
            self._service_m2 += weight * (float((values * values).mean()) - self._service_m2)
        m1 = self._service_m1
        scv = max(self._service_m2 / (m1 * m1) - 1.0, 0.0) if m1 > 0 else math.nan
        return m1, scv

    def _decide(self, obs: Observation) -> None:
        decision: Decision = self.policy.decide(obs)
        target = min(max(int(decision.target), self.min_replicas), self.max_replicas)
        before = self.pool.target
        if target != before:
            self.pool.set_target(target)
        self.decisions.append({
            "time_s": obs.time_s,
            "tick": obs.tick,
            "policy": self.policy.name,
            "rule": decision.rule,
            "replicas_before": before,
            "replicas_after": target,
            "requested_target": int(decision.target),
            "details": decision.details,
            "q_values": decision.q_values,
            "observation": {
                k: v for k, v in vars(obs).items() if k != "forecast_rps"
            },
            "forecast_rps": obs.forecast_rps.tolist(),
        })
