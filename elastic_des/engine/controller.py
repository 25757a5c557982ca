"""The decision loop: observe, forecast, decide, resize, every tick.

The controller is a SimPy process. At each tick it measures the window just
ended (as a monitoring stack would), feeds the observed arrival rate to the
forecaster, asks the policy for a target and hands it to the replica pool.
It also opens the next tick's arrivals to the dispatcher, so the event
queue never holds requests beyond the next decision. What it estimates
beyond plain counts (the service time per request, burstiness within the
tick) is in :mod:`elastic_des.engine.estimators`.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Callable, Optional, Sequence

import numpy as np
import simpy

from elastic_des.engine.dispatcher import Dispatcher
from elastic_des.engine.estimators import ServiceTimeEstimator, arrival_burstiness
from elastic_des.engine.forecast import Forecaster
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy
from elastic_des.engine.records import Gather
from elastic_des.engine.replicas import ReplicaPool
from elastic_des.engine.slo import SLO, tpot_s

TICK_COLUMNS = (
    "time_s", "arrivals", "arrival_rate_rps", "completions", "drops", "queue_length", "in_flight",
    "utilization", "latency_p50_s", "latency_p95_s", "latency_p99_s", "sla_compliance",
    "ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "tpot_p99_s", "queue_wait_mean_s",
    "replicas_ready", "replicas_provisioning", "replicas_draining", "target_replicas",
    "cost_usd_cumulative", "forecast_rps", "service_mean_s", "service_scv", "arrival_peak_rps",
    "arrival_dispersion",
)


def sorted_percentiles(values: Sequence[float], quantiles: Sequence[float]) -> list[float]:
    """Quantiles (in [0, 1]) of the ascending ``values``, interpolated linearly.

    Bit for bit what ``np.quantile(values, quantiles)`` returns (its default
    ``linear`` method, including the interpolation from the nearer end), but
    without its fixed cost of about 100 µs, which was most of a tick's work.
    ``values`` may be a sorted array: only the few values interpolated
    between are read (as Python floats, the same IEEE doubles).
    """
    last = len(values) - 1
    result = []
    for q in quantiles:
        position = last * q
        below = math.floor(position)
        if below >= last:
            result.append(float(values[last]))
            continue
        gamma = position - below
        a, b = float(values[below]), float(values[below + 1])
        diff = b - a
        result.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return result


def _nan_percentiles(values: np.ndarray, percents) -> list[float]:
    """Percentiles of the non-NaN ``values``; NaN for each if there are none."""
    values = values[~np.isnan(values)]
    if not len(values):
        return [np.nan] * len(percents)
    return [float(x) for x in np.percentile(values, percents)]


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
        slo: SLO,
        usd_per_replica_s: float,
        min_replicas: int,
        max_replicas: int,
        service_estimator: ServiceTimeEstimator,
        recorder,
        on_tick: Optional[Callable[[float], None]] = None,
        first_token_of: Optional[Callable[[Gather], np.ndarray]] = None,
    ):
        if tick_s <= 0:
            raise ValueError(f"tick_s = {tick_s}: must be > 0")
        if horizon_ticks < 1:
            raise ValueError(f"horizon_ticks = {horizon_ticks}: must be >= 1")
        self.env, self.pool, self.dispatcher = env, pool, dispatcher
        self.policy, self.forecaster = policy, forecaster
        self.tick_s, self.horizon, self.duration_s = tick_s, horizon_ticks, duration_s
        self.slo = slo
        # The first-token time of finished requests (by position in the store,
        # as in dispatcher.completed), for TTFT and TPOT (with their output
        # sizes); without it both are NaN.
        self.first_token_of = first_token_of
        self.usd_per_replica_s = usd_per_replica_s
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        self.on_tick = on_tick
        # Each request's columns, among them `planning`: its service time as the
        # planners count it (engine.service.planning_service_times).
        self.requests = dispatcher.requests
        self.service_estimator = service_estimator
        # Takes the rows of the requests retired at each tick (engine.metrics.Outcomes).
        self.recorder = recorder
        self.ticks: list[tuple] = []
        self.decisions: list[dict] = []
        self._arrived = 0
        self._busy_area = self._serving_area = 0.0
        self._t_last = 0.0

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
        requests = self.requests
        base = requests.base  # the tick's arrivals are still held: none has finished by the last tick
        arrived = bisect_left(requests.arrival, now, self._arrived - base) + base
        arrivals = arrived - self._arrived
        peak, dispersion = arrival_burstiness(np.fromiter(requests.arrival[self._arrived - base:arrived - base],
                                                          float, arrivals), self._t_last, now)
        self._arrived = arrived

        pool._advance_areas()
        busy, serving = pool.busy_area - self._busy_area, pool.serving_area - self._serving_area
        self._busy_area, self._serving_area = pool.busy_area, pool.serving_area
        utilization = busy / serving if serving > 0 else 0.0

        dispatcher.purge_expired()
        completed = Gather(dispatcher.completed)  # the finished requests, by their positions in the store
        completions = len(dispatcher.completed)
        dispatcher.completed = []
        drops = dispatcher.drops_since_tick
        dispatcher.drops_since_tick = 0
        ttft = tpot = wait = np.full(completions, np.nan)
        if completions:
            arrival, finish = completed.take(requests.arrival), completed.take(requests.finish_s)
            latency = finish - arrival
            wait = completed.take(requests.start_s) - arrival
            if self.first_token_of is not None:
                first = self.first_token_of(completed)
                ttft = first - arrival
                tpot = tpot_s(first, finish, completed.take(requests.output))
            met = int(np.count_nonzero(self.slo.met(latency, ttft, tpot)))
            latency.sort()
            p50, p95, p99 = sorted_percentiles(latency, (0.5, 0.95, 0.99))
        else:
            p50 = p95 = p99 = np.nan
            met = 0
        finished = completions + drops
        sla = met / finished if finished else np.nan
        estimator = self.service_estimator
        estimator.update(completed.take(requests.planning))
        if self.first_token_of is None:  # no tokens: TTFT and TPOT are NaN, no need to look
            ttft_p50 = ttft_p95 = ttft_p99 = tpot_p99 = np.nan
        else:
            ttft_p50, ttft_p95, ttft_p99 = _nan_percentiles(ttft, (50, 95, 99))
            (tpot_p99,) = _nan_percentiles(tpot, (99,))
        # wait.mean() without its Python wrapper (this runs every tick): np.mean is
        # np.add.reduce divided by the count, so the same number bit for bit.
        wait_mean = float(np.add.reduce(wait)) / len(wait) if len(wait) else np.nan

        rate = arrivals / window if window > 0 else 0.0
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
            service_mean_s=estimator.mean_s, service_scv=estimator.scv,
            arrival_peak_rps=peak, arrival_dispersion=dispersion,
            ttft_p50_s=ttft_p50, ttft_p99_s=ttft_p99, tpot_p99_s=tpot_p99, queue_wait_mean_s=wait_mean,
        )
        self.ticks.append((
            now, arrivals, rate, completions, drops, obs.queue_length, obs.in_flight, utilization,
            obs.latency_p50_s, obs.latency_p95_s, obs.latency_p99_s, sla,
            ttft_p50, ttft_p95, ttft_p99, tpot_p99, wait_mean, pool.n_ready,
            pool.n_provisioning, pool.n_draining, pool.target,
            pool.billed_replica_s() * self.usd_per_replica_s, float(forecast[0]),
            obs.service_mean_s, obs.service_scv, peak, dispersion,
        ))
        self.recorder.add(requests.retire())
        return obs

    def _decide(self, obs: Observation) -> None:
        decision: Decision = self.policy.decide(obs)
        target = min(max(int(decision.target), self.min_replicas), self.max_replicas)
        before = self.pool.target
        if target != before:
            self.pool.set_target(target)
        observation = dict(vars(obs))  # in C, then without the forecast (its own key, as a list)
        del observation["forecast_rps"]
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
            "observation": observation,
            "forecast_rps": obs.forecast_rps.tolist(),
        })
