"""The Kubernetes Horizontal Pod Autoscaler on slot utilization.

The HPA scales a workload so that the average of a per-pod metric tracks a
target value::

    desired = ceil(ready × utilization / target_utilization)

as documented in "Horizontal Pod Autoscaling — Algorithm details"
(kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/) and
implemented in ``pkg/controller/podautoscaler/replica_calculator.go``. The
metric here is slot utilization (busy slots / serving slots over the tick),
the GPU analogue of CPU utilization. Around the formula the HPA adds, with
the defaults of the ``autoscaling/v2`` API:

* a tolerance: no action while the ratio is within ``1 ± 0.1``;
* not-yet-ready pods (here: replicas still cold-starting) are set aside;
  if the ratio says *scale up*, they are counted back in as using 0 % of the
  target, which damps the step; if that reverses the direction or lands
  within the tolerance, nothing happens. On a scale-down they are ignored.
  Pods being deleted (here: draining replicas) are ignored;
* a scale-down stabilization window of 300 s: every recommendation is
  recorded, and the fleet shrinks only to the highest recommendation of
  the window (a rolling maximum), so it never drops below a need seen in
  the last five minutes;
* a scale-up rate limit ``behavior.scaleUp.policies``: at most
  ``max(+100 %, +4 pods)`` per 15 s period, counted from the replicas at the
  start of the period (``selectPolicy: Max``). The default scale-down policy
  (100 % per 15 s) never binds, so it is not modelled.

Mapping onto the simulator: the HPA controller syncs every 15 s
(``--horizontal-pod-autoscaler-sync-period``); here it syncs once per
controller tick, on the utilization averaged over the tick. Windows and rate
periods are in seconds and use the same timestamps as Kubernetes, so they
mean the same thing at any tick; with the default 60 s tick, a 15 s period
holds one decision, so the rate limit binds once per tick. Since utilization
cannot exceed 1, one step can grow the fleet by at most
``1 / target_utilization`` (×1.43 at 0.7), far below the rate limit: queued
requests are invisible to this metric, which is why the HPA reacts late.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext


class StabilizationWindow:
    """Recommendations with their times; the highest of the last ``window_s``.

    A recommendation made at ``t`` counts while ``t > now - window_s``
    (Kubernetes keeps those strictly after the cutoff), including the one
    made now.
    """

    def __init__(self, window_s: float):
        self.window_s = window_s
        self.entries: deque[tuple[float, int]] = deque()

    def clear(self) -> None:
        self.entries.clear()

    def record(self, time_s: float, recommendation: int) -> int:
        """Record ``recommendation`` at ``time_s``; the highest in the window."""
        cutoff = time_s - self.window_s
        while self.entries and self.entries[0][0] <= cutoff:
            self.entries.popleft()
        self.entries.append((time_s, recommendation))
        return max(value for _, value in self.entries)


class HPAPolicy(Policy):
    name = "hpa"

    def __init__(
        self,
        target_utilization: float = 0.7,
        tolerance: float = 0.1,
        downscale_stabilization_s: float = 300.0,
        scale_up_percent: float = 100.0,
        scale_up_pods: int = 4,
        scale_up_period_s: float = 15.0,
    ):
        if not 0 < target_utilization <= 1:
            raise ConfigError(f"policy.target_utilization = {target_utilization}: must be in (0, 1]")
        if not 0 <= tolerance < 1:
            raise ConfigError(f"policy.tolerance = {tolerance}: must be in [0, 1)")
        if downscale_stabilization_s < 0:
            raise ConfigError(f"policy.downscale_stabilization_s = {downscale_stabilization_s}: must be >= 0")
        if scale_up_percent < 0:
            raise ConfigError(f"policy.scale_up_percent = {scale_up_percent}: must be >= 0")
        if scale_up_pods < 0:
            raise ConfigError(f"policy.scale_up_pods = {scale_up_pods}: must be >= 0")
        if scale_up_percent == 0 and scale_up_pods == 0:
            raise ConfigError("policy.scale_up_pods = 0: with policy.scale_up_percent = 0 the fleet could never grow")
        if scale_up_period_s <= 0:
            raise ConfigError(f"policy.scale_up_period_s = {scale_up_period_s}: must be > 0")
        self.target_utilization, self.tolerance = target_utilization, tolerance
        self.scale_up_percent, self.scale_up_pods = scale_up_percent, scale_up_pods
        self.scale_up_period_s = scale_up_period_s
        self.window = StabilizationWindow(downscale_stabilization_s)
        self.events: deque[tuple[float, int]] = deque()  # (time, replicas added (+) or removed (-))

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        if context.min_replicas < 1:
            # Kubernetes disables the HPA of a workload at 0 replicas: with no
            # ready pod there is no utilization to scale on.
            raise ConfigError(
                f"{context.fleet_field}.min_replicas = {context.min_replicas}: hpa needs >= 1 "
                "(utilization is undefined with no ready replica)"
            )
        self.window.clear()
        self.events.clear()

    def decide(self, obs: Observation) -> Decision:
        current = obs.target_replicas
        details = {
            "utilization": obs.utilization,
            "target_utilization": self.target_utilization,
            "tolerance": self.tolerance,
            "ready": obs.replicas_ready,
            "not_ready": obs.replicas_provisioning,
            "current": current,
        }
        recommendation, reason = self._recommend(obs, current, details)
        details["recommendation"] = recommendation
        # Stabilize: scale-up has no window (the recommendation stands); a
        # scale-down goes only as far as the highest recent recommendation.
        highest = self.window.record(obs.time_s, recommendation)
        if recommendation > current:
            limit = max(self._scale_up_limit(obs.time_s, current), current)
            details["scale_up_limit"] = limit
            target = min(recommendation, limit)
            rule = "scale_up_rate_limited" if target < recommendation else "scale_up"
        elif recommendation < current:
            target = min(current, highest)
            details["stabilized"] = target
            rule = "scale_down" if target < current else "stabilization_hold"
        else:
            target, rule = current, reason or "hold"
        target = self.bounded(target, details)
        if target != current:
            self.events.append((obs.time_s, target - current))
        return Decision(target, rule, details)

    def applied(self, obs: Observation, decided: int, target: int) -> None:
        # The scale-up rate limit counts the scaling events that happened.
        current = obs.target_replicas
        if decided != current:
            self.events.pop()
        if target != current:
            self.events.append((obs.time_s, target - current))

    def _recommend(self, obs: Observation, current: int, details: dict) -> tuple[int, str | None]:
        """The unstabilized desired count (replica_calculator.go) and, if it
        was held at ``current`` by a rule, that rule."""
        ready, not_ready = obs.replicas_ready, obs.replicas_provisioning
        if ready == 0:
            return current, "no_metrics"  # no ready pod reports a metric: no action
        ratio = obs.utilization / self.target_utilization
        details["ratio"] = ratio
        if not (not_ready > 0 and ratio > 1):
            if self._within_tolerance(ratio):
                return current, "in_tolerance"
            return math.ceil(ratio * ready), None
        # Scale-up with not-yet-ready pods: count them as using 0 % of the
        # target, which dilutes the average over ready + not-ready pods.
        pods = ready + not_ready
        damped = ratio * ready / pods
        details["ratio_with_not_ready"] = damped
        if self._within_tolerance(damped) or damped < 1:
            return current, "not_ready_hold"
        desired = math.ceil(ratio * ready)  # = damped × pods, without the rounding error
        if desired < current:  # counting them would turn the scale-up into a scale-down
            return current, "not_ready_hold"
        return desired, None

    def _within_tolerance(self, ratio: float) -> bool:
        return 1 - self.tolerance <= ratio <= 1 + self.tolerance

    def _scale_up_limit(self, now: float, current: int) -> int:
        """Most replicas allowed now: the larger of the percent and pods
        policies, from the replicas at the start of the current period."""
        cutoff = now - self.scale_up_period_s
        while self.events and self.events[0][0] <= cutoff:
            self.events.popleft()
        added = sum(change for _, change in self.events if change > 0)
        removed = -sum(change for _, change in self.events if change < 0)
        start = current - added + removed
        return max(math.ceil(start * (1 + self.scale_up_percent / 100)), start + self.scale_up_pods)


@dataclass
class HPAConfig:
    """Kubernetes HPA (``autoscaling/v2``); defaults are Kubernetes' defaults
    except the target, which a user always sets.

    target_utilization: desired mean slot utilization (the HPA's
        ``averageUtilization`` / 100); 0.7 matches Knative's default target.
    tolerance: no action while utilization/target is within 1 ± this
        (kube-controller-manager ``--horizontal-pod-autoscaler-tolerance``, 0.1).
    downscale_stabilization_s: scale down only to the highest recommendation
        of this many seconds (``behavior.scaleDown.stabilizationWindowSeconds``, 300).
    scale_up_percent, scale_up_pods: at most this percentage or this many
        replicas more (whichever allows more) per period
        (``behavior.scaleUp.policies``: 100 %, 4 pods).
    scale_up_period_s: the period of both scale-up policies (``periodSeconds``, 15).
    """

    _target_: str = "elastic_des.policies.hpa.HPAPolicy"
    target_utilization: float = 0.7
    tolerance: float = 0.1
    downscale_stabilization_s: float = 300.0
    scale_up_percent: float = 100.0
    scale_up_pods: int = 4
    scale_up_period_s: float = 15.0
