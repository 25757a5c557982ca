"""Utilization bands with a cooldown: the classic rule-based autoscaler.

Above ``upper`` utilization (or with requests waiting per replica above
``queue_per_replica``) it adds ``step`` replicas; below ``lower`` it removes
``step``. After any change it waits ``cooldown_s`` before changing again,
so a cold start has time to land before the next reaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext


class ThresholdPolicy(Policy):
    name = "threshold"

    def __init__(
        self,
        upper: float = 0.75,
        lower: float = 0.4,
        queue_per_replica: float = 2.0,
        step: int = 1,
        cooldown_s: float = 180.0,
        initial_replicas: int | None = None,
    ):
        if not 0 <= lower < upper:
            raise ConfigError(f"policy.lower = {lower}: must be >= 0 and < policy.upper ({upper})")
        if step < 1:
            raise ConfigError(f"policy.step = {step}: must be >= 1")
        if cooldown_s < 0:
            raise ConfigError(f"policy.cooldown_s = {cooldown_s}: must be >= 0")
        if queue_per_replica <= 0:
            raise ConfigError(f"policy.queue_per_replica = {queue_per_replica}: must be > 0")
        self.upper, self.lower, self.queue_per_replica = upper, lower, queue_per_replica
        self.step, self.cooldown_s, self.initial = step, cooldown_s, initial_replicas

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        self.last_change_s = -float("inf")

    def initial_replicas(self) -> int:
        return super().initial_replicas() if self.initial is None else self.initial

    def decide(self, obs: Observation) -> Decision:
        current = obs.target_replicas
        self._change_before_s = self.last_change_s
        queue_per_replica = obs.queue_length / max(obs.replicas_ready, 1)
        details = {
            "utilization": obs.utilization,
            "upper": self.upper,
            "lower": self.lower,
            "queue_per_replica": queue_per_replica,
            "queue_limit": self.queue_per_replica,
        }
        if obs.time_s - self.last_change_s < self.cooldown_s:
            details["cooldown_left_s"] = self.cooldown_s - (obs.time_s - self.last_change_s)
            return Decision(current, "cooldown", details)
        if obs.utilization > self.upper or queue_per_replica > self.queue_per_replica:
            target, rule = current + self.step, "above_band"
        elif obs.utilization < self.lower and obs.queue_length == 0:
            target, rule = current - self.step, "below_band"
        else:
            return Decision(current, "in_band", details)
        target = self.bounded(target, details)
        if target != current:
            self.last_change_s = obs.time_s
        return Decision(target, rule, details)

    def applied(self, obs: Observation, decided: int, target: int) -> None:
        # The cooldown runs from the last change that happened.
        self.last_change_s = obs.time_s if target != obs.target_replicas else self._change_before_s


@dataclass
class ThresholdConfig:
    _target_: str = "elastic_des.policies.threshold.ThresholdPolicy"
    upper: float = 0.75
    lower: float = 0.4
    queue_per_replica: float = 2.0
    step: int = 1
    cooldown_s: float = 180.0
    initial_replicas: Optional[int] = None
