"""Predictive scaling: size for the forecast rate when new capacity would land.

A replica ordered now serves from ``now + cold_start_s`` until replicas
ordered at the next tick are ready, ``tick_s`` later. The forecaster
predicts the rate of each of the next ticks (element ``i`` covers
``[now + i·tick_s, now + (i+1)·tick_s)``), so the ticks that interval
touches are ``floor(cold_start_s / tick_s)`` to ``ceil(cold_start_s /
tick_s)``; the policy sizes for the highest forecast among them. It sizes
with Erlang C (:func:`~elastic_des.theory.replicas_for_slo`: the fewest
replicas meeting the SLO at that rate) after adding ``headroom`` to the
rate, a margin against forecast error. The headroom is applied to the rate,
not to the replica count, because a forecast error is an error in rate and
Erlang C then adds what that rate needs.

A forecast can be wrong in both directions, so the policy also sizes for the
rate observed in the last tick (plus the same headroom) and takes the larger
of the two. It scales out as soon as either asks for more. It never scales
in on the forecast alone, as AWS predictive scaling: "If the forecast
expects a decrease in load, predictive scaling will not scale in to remove
capacity. This ensures that you scale-in only when the demand actually
drops, and not just on predictions" (Application Auto Scaling User Guide,
"How predictive scaling works"). Scale-in therefore needs both sizings below
the current target, and then goes only to the highest recommendation of the
last ``scale_in_window_s`` (the HPA's downscale stabilization, 300 s), so a
dip of one tick does not release capacity a cold start away from returning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext
from elastic_des.policies.hpa import StabilizationWindow
from elastic_des.theory import replicas_for_slo


def horizon_ticks(cold_start_s: float, tick_s: float) -> tuple[int, int]:
    """First and last forecast index a replica ordered now would serve in
    before the next decision's replicas are ready."""
    ratio = cold_start_s / tick_s
    return math.floor(ratio), math.ceil(ratio)


class PredictivePolicy(Policy):
    name = "predictive"

    def __init__(self, headroom: float = 0.1, scale_in_window_s: float = 300.0, burst_correction: bool = True,
                 burst_quantile: float = 0.999):
        if headroom < 0:
            raise ConfigError(f"policy.headroom = {headroom}: must be >= 0")
        if scale_in_window_s < 0:
            raise ConfigError(f"policy.scale_in_window_s = {scale_in_window_s}: must be >= 0")
        if not 0 < burst_quantile < 1:
            raise ConfigError(f"policy.burst_quantile = {burst_quantile}: must be in (0, 1)")
        self.headroom = headroom
        self.window = StabilizationWindow(scale_in_window_s)
        self.burst_correction = burst_correction
        self.burst_quantile = burst_quantile

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        self.first, self.last = horizon_ticks(context.cold_start_s, context.tick_s)
        self.window.clear()
        seconds = max(2, math.ceil(context.tick_s))
        self.poisson_dispersion = float(chi2.ppf(self.burst_quantile, seconds - 1) / (seconds - 1))

    def arrival_scv(self, obs: Observation) -> float:
        """``c_a²`` for the burst correction: the tick's dispersion if it is
        beyond what Poisson arrivals show (see the module docs), else 1."""
        dispersion = obs.arrival_dispersion
        if not self.burst_correction or not dispersion > self.poisson_dispersion:
            return 1.0
        return float(dispersion)

    def size(self, rate_rps: float, obs: Observation, arrival_scv: float) -> int:
        """Replicas for ``rate_rps`` plus headroom, sized with the observed
        service estimate and, when bursty, the Allen–Cunneen correction."""
        ctx = self.context
        service_scv = obs.service_scv if np.isfinite(obs.service_scv) else ctx.service_scv
        return replicas_for_slo(
            rate_rps * (1 + self.headroom), obs.service_mean_or(ctx.mean_service_s), ctx.slots_per_replica,
            ctx.slo_latency_s, ctx.slo_target, max_replicas=10**6,
            arrival_scv=arrival_scv, service_scv=service_scv if arrival_scv > 1 else 1.0,
        )

    def decide(self, obs: Observation) -> Decision:
        forecast = obs.forecast_rps
        if len(forecast) <= self.last:
            raise ConfigError(
                f"controller.forecast_horizon_ticks = {len(forecast)}: predictive needs >= {self.last + 1} "
                f"to see past a cold start of {self.context.cold_start_s:g} s at a tick of {self.context.tick_s:g} s"
            )
        ahead = forecast[self.first:self.last + 1]
        if not np.all(np.isfinite(ahead)) or np.any(ahead < 0):
            raise ValueError(
                f"forecast_rps[{self.first}:{self.last + 1}] = {ahead.tolist()}: "
                "the forecaster must predict finite rates >= 0"
            )
        forecast_rps = float(ahead.max())
        arrival_scv = self.arrival_scv(obs)
        forecast_n = self.size(forecast_rps, obs, arrival_scv)
        load_n = self.size(obs.arrival_rate_rps, obs, arrival_scv)
        current = obs.target_replicas
        desired = max(forecast_n, load_n)
        highest = self.window.record(obs.time_s, desired)
        details = {
            "forecast_rps": forecast_rps,
            "horizon_ticks": [self.first, self.last],
            "observed_rps": obs.arrival_rate_rps,
            "headroom": self.headroom,
            "service_mean_s": obs.service_mean_or(self.context.mean_service_s),
            "arrival_scv": arrival_scv,
            "forecast_replicas": forecast_n,
            "load_replicas": load_n,
            "current": current,
        }
        if desired > current:
            target = desired
            rule = "scale_out_forecast" if forecast_n >= load_n else "scale_out_load"
        elif desired == current:
            target = current
            rule = "hold_forecast_lower" if forecast_n < current else "hold"
        else:
            # Both the forecast and the observed load ask for less.
            target = min(current, highest)
            details["stabilized"] = target
            rule = "scale_in" if target < current else "scale_in_delayed"
        bounded = self.bounded(target, details)
        return Decision(bounded, rule, details)


@dataclass
class PredictiveConfig:
    """Forecast-driven scaling with Erlang C sizing (uses the ``forecaster`` group).

    headroom: size for the rate times ``1 + headroom`` (0.1: a 10 % margin
        against forecast and measurement error; our choice, no external default).
    scale_in_window_s: scale in only to the highest recommendation of this many
        seconds (300, as the Kubernetes HPA's downscale stabilization window).
    burst_correction: size bursty ticks by Allen–Cunneen (inter-arrival SCV =
        the index of dispersion of per-second counts); false: plain Erlang C.
    burst_quantile: a tick counts as bursty when its dispersion exceeds this
        quantile of the dispersion of Poisson counts (0.999).
    """

    _target_: str = "elastic_des.policies.predictive.PredictivePolicy"
    headroom: float = 0.1
    scale_in_window_s: float = 300.0
    burst_correction: bool = True
    burst_quantile: float = 0.999
