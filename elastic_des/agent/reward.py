"""The reward of one decision: what the tick after it cost, in money and SLA.

The SLA is a constraint, not a weight to guess. The reward of the action
taken at tick ``t`` is read at tick ``t + 1`` in two parts::

    cost part = cost     * billed_replicas / reference_replicas
              + flap     * [the action reverses a move made less than cooldown_s ago]
              + cooldown * [the action repeats a move made less than cooldown_s ago]
    SLA part  = (1 - compliance) / (1 - slo_target)

    reward    = -(cost part + multiplier * SLA part)

* The SLA part counts the tick's misses in units of the SLO's error budget:
  1.0 when exactly the allowed share (``1 - slo_target``) of the requests
  finished or dropped in the tick missed the latency objective. A tick in
  which nothing finished has no misses. Keeping its long-run mean at most 1
  is the constraint "compliance >= slo_target".
* The cost term counts the replicas billed at the end of the tick (ready,
  provisioning or draining) as a fraction of the static fleet sized for the
  planned peak, so 1.0 is what a static fleet costs, at any scale.
* The stability terms punish flapping: reversing direction within the
  cooldown costs ``flap``, acting again in the same direction costs
  ``cooldown`` (zero by default: consecutive steps up during a surge are not
  flapping).
* ``multiplier`` is the Lagrange multiplier of the SLA constraint. The agent
  learns the two parts in separate tables (:mod:`elastic_des.agent.qtable`),
  so the multiplier can move without relearning; training adapts it by dual
  ascent until the SLA part averages one budget (see
  :mod:`elastic_des.agent.training`). ``reward.sla`` is its starting value.

Every term is a penalty, so rewards are <= 0 and a Q-table initialised at
zero is optimistic, which makes a learner try each action at least once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from elastic_des.errors import require


@dataclass
class RewardConfig:
    """Weights of the reward terms (see :mod:`elastic_des.agent.reward`).

    sla: the starting Lagrange multiplier of the SLA constraint (per SLO
    error budget missed in a tick); training adapts it and stores the result
    in the model.
    cost: per static-peak fleet's worth of replicas billed in a tick.
    flap: for reversing a scaling move less than ``cooldown_s`` after it.
    cooldown: for repeating a scaling move less than ``cooldown_s`` after it.
    reference_replicas: the cost unit, in replicas; null: the static fleet
    for the scenario's planned peak (Erlang C), which keeps the cost part
    the same at every traffic scale.
    """

    sla: float = 0.05
    cost: float = 1.0
    flap: float = 0.5
    cooldown: float = 0.0
    reference_replicas: Optional[int] = None


TERMS = ("sla", "cost", "flap", "cooldown")


class Reward:
    """Computes the reward terms; weights are validated, never clamped."""

    def __init__(self, weights: Any, field: str = "policy.reward"):
        self.weights: dict[str, float] = {}
        for name in TERMS:
            value = float(weights[name] if isinstance(weights, Mapping) else getattr(weights, name))
            require(math.isfinite(value) and value >= 0, f"{field}.{name}", value, "must be finite and >= 0")
            self.weights[name] = value
        reference = weights.get("reference_replicas") if isinstance(weights, Mapping) else weights.reference_replicas
        require(reference is None or reference >= 1, f"{field}.reference_replicas", reference, "must be >= 1 or null")
        self.reference_replicas: Optional[int] = reference

    def outcome(self, sla_compliance: float, billed_replicas: int, slo_target: float,
                reference_replicas: int) -> dict[str, float]:
        """The SLA part (error budgets missed, unweighted) and the cost term of one tick."""
        missed = 0.0 if math.isnan(sla_compliance) else 1.0 - sla_compliance
        return {
            "sla": missed / (1.0 - slo_target),
            "cost": self.weights["cost"] * billed_replicas / reference_replicas,
        }

    def stability(self, direction: int, recent_move: int) -> dict[str, float]:
        """The flapping penalties of a move in ``direction`` (-1, 0, +1) when
        the last move less than a cooldown ago went ``recent_move`` (0: none)."""
        acting_in_cooldown = direction != 0 and recent_move != 0
        return {
            "flap": self.weights["flap"] if acting_in_cooldown and direction != recent_move else 0.0,
            "cooldown": self.weights["cooldown"] if acting_in_cooldown and direction == recent_move else 0.0,
        }

    def describe(self) -> dict:
        return {**self.weights, "reference_replicas": self.reference_replicas}
