"""The Knative Pod Autoscaler: concurrency per replica, stable and panic modes.

Knative Serving scales a revision on the number of requests in its pods
(in service or waiting in the queue-proxy), averaged over two windows, as
implemented in ``pkg/autoscaler/scaling/autoscaler.go`` and documented in
"Additional autoscaling configuration for Knative Pod Autoscaler"
(knative.dev/docs/serving/autoscaling/kpa-specific/)::

    target per replica = container concurrency × target utilization (70 %)
    desired_stable = ceil(stable-window concurrency / target)      (60 s)
    desired_panic  = ceil(panic-window concurrency / target)       (6 s = 10 % of 60 s)

both kept within ``[floor(ready / max_scale_down_rate), ceil(ready ×
max_scale_up_rate)]`` (rates 2 and 1000), with ``ready`` counted as at least
one. When ``desired_panic / ready >= 2.0`` (panic threshold 200 %) the
autoscaler panics: it takes the larger of the two counts and never scales
down, holding the highest count it has asked for. Each tick still over the
threshold restarts the panic clock; it leaves panic once it has been below
the threshold for more than a stable window.

Mapping onto the simulator. Knative samples concurrency every second and
decides every 2 s; here the policy decides once per controller tick and
sees, per tick, the utilization averaged over the tick and the instantaneous
queue and in-service counts. So:

* a tick's *window concurrency* is ``utilization × serving slots + queue``:
  the time-averaged requests in service over the tick (serving slots are
  those of ready and draining replicas now, so a replica that became ready
  mid-tick counts for the whole tick) plus the requests waiting now;
* a window of W seconds averages the window concurrency of the last
  ``floor(W / tick_s)`` ticks, the whole ticks that fit in it; a window
  shorter than a tick cannot be resolved from these observations, and the
  freshest reading available, the instantaneous ``in_flight + queue``,
  stands in for it.

With the default 60 s tick the stable window is exactly the last tick and
the 6 s panic window is the instantaneous reading at the tick: panic still
works as a fast trigger on the current backlog, but Knative would have seen
the burst up to 58 s earlier. That delay, and the cold start after it, are
what the comparison measures.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext


class KPAPolicy(Policy):
    name = "kpa"

    def __init__(
        self,
        target_utilization: float = 0.7,
        stable_window_s: float = 60.0,
        panic_window_pct: float = 10.0,
        panic_threshold_pct: float = 200.0,
        max_scale_up_rate: float = 1000.0,
        max_scale_down_rate: float = 2.0,
    ):
        if not 0 < target_utilization <= 1:
            raise ConfigError(f"policy.target_utilization = {target_utilization}: must be in (0, 1]")
        if stable_window_s <= 0:
            raise ConfigError(f"policy.stable_window_s = {stable_window_s}: must be > 0")
        if not 0 < panic_window_pct <= 100:
            raise ConfigError(f"policy.panic_window_pct = {panic_window_pct}: must be in (0, 100]")
        if panic_threshold_pct <= 100:
            raise ConfigError(f"policy.panic_threshold_pct = {panic_threshold_pct}: must be > 100")
        if max_scale_up_rate <= 1:
            raise ConfigError(f"policy.max_scale_up_rate = {max_scale_up_rate}: must be > 1")
        if max_scale_down_rate <= 1:
            raise ConfigError(f"policy.max_scale_down_rate = {max_scale_down_rate}: must be > 1")
        self.target_utilization = target_utilization
        self.stable_window_s = stable_window_s
        self.panic_window_s = stable_window_s * panic_window_pct / 100
        self.panic_threshold = panic_threshold_pct / 100
        self.max_scale_up_rate, self.max_scale_down_rate = max_scale_up_rate, max_scale_down_rate

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        self.stable_ticks = int(self.stable_window_s // context.tick_s)
        self.panic_ticks = int(self.panic_window_s // context.tick_s)
        self.history: deque[float] = deque(maxlen=max(self.stable_ticks, self.panic_ticks, 1))
        self.panic_since_s: Optional[float] = None
        self.max_panic_pods = 0

    def _window(self, ticks: int, instantaneous: float) -> float:
        """Mean concurrency of the last ``ticks`` ticks (fewer at the start);
        the instantaneous reading for a window shorter than a tick."""
        if ticks == 0:
            return instantaneous
        recent = list(self.history)[-ticks:]
        return sum(recent) / len(recent)

    def decide(self, obs: Observation) -> Decision:
        serving_slots = (obs.replicas_ready + obs.replicas_draining) * obs.slots_per_replica
        self.history.append(obs.utilization * serving_slots + obs.queue_length)
        stable = self._window(self.stable_ticks, obs.concurrency)
        panic = self._window(self.panic_ticks, obs.concurrency)
        per_replica = self.target_utilization * obs.slots_per_replica

        ready = max(1, obs.replicas_ready)  # Knative: "use 1 if there are zero current pods"
        max_up = math.ceil(self.max_scale_up_rate * ready)
        max_down = math.floor(ready / self.max_scale_down_rate)
        raw_stable = math.ceil(stable / per_replica)
        raw_panic = math.ceil(panic / per_replica)
        desired_stable = min(max(raw_stable, max_down), max_up)
        desired_panic = min(max(raw_panic, max_down), max_up)

        over = raw_panic / ready >= self.panic_threshold
        was_panicking = self.panic_since_s is not None
        if over:
            self.panic_since_s = obs.time_s  # enter, or extend, panic
        elif was_panicking and self.panic_since_s + self.stable_window_s < obs.time_s:
            self.panic_since_s = None  # the surge has made its way into the stable window
            self.max_panic_pods = 0

        desired, rule = desired_stable, "stable"
        if self.panic_since_s is not None:
            desired = max(desired_stable, desired_panic)
            if desired > self.max_panic_pods:
                self.max_panic_pods = desired
                rule = "panic" if was_panicking else "panic_enter"
            else:
                # Never scale down in panic: hold the highest count asked for.
                rule = "panic_hold" if desired < self.max_panic_pods else "panic"
                desired = self.max_panic_pods
        elif was_panicking:
            rule = "panic_exit"

        details = {
            "stable_concurrency": stable,
            "panic_concurrency": panic,
            "target_per_replica": per_replica,
            "ready": obs.replicas_ready,
            "desired_stable": desired_stable,
            "desired_panic": desired_panic,
            "panic_ratio": raw_panic / ready,
            "panic_threshold": self.panic_threshold,
            "panic": self.panic_since_s is not None,
            "max_scale_down_to": max_down,
            "max_scale_up_to": max_up,
            "stable_window_s": self.stable_window_s,
            "panic_window_s": self.panic_window_s,
        }
        if self.panic_since_s is not None:
            details["panic_since_s"] = self.panic_since_s
        return Decision(self.bounded(desired, details), rule, details)


@dataclass
class KPAConfig:
    """Knative Pod Autoscaler; defaults are those of Knative Serving's
    ``config-autoscaler`` ConfigMap (knative.dev/docs/serving/autoscaling/).

    target_utilization: share of a replica's slots to fill on average
        (``container-concurrency-target-percentage``, 70 %); the target per
        replica is ``slots_per_replica × target_utilization``.
    stable_window_s: averaging window of stable mode (``stable-window``, 60 s).
    panic_window_pct: the panic window as a percentage of the stable window
        (``panic-window-percentage``, 10 %: 6 s).
    panic_threshold_pct: panic when the panic-window count is this percentage
        of the ready replicas or more (``panic-threshold-percentage``, 200 %).
    max_scale_up_rate: at most this many times the ready replicas per
        decision (``max-scale-up-rate``, 1000).
    max_scale_down_rate: at least the ready replicas divided by this after a
        decision (``max-scale-down-rate``, 2: at most halve).
    """

    _target_: str = "elastic_des.policies.kpa.KPAPolicy"
    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_pct: float = 10.0
    panic_threshold_pct: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
