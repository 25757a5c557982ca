"""Autoscaling as a Markov decision process, one decision tick at a time.

The controller observes the fleet every tick and asks for a target. Seen as
an MDP (the Gymnasium vocabulary):

* **observation**: the band of each state component of
  :mod:`elastic_des.agent.state` (utilization, queue, forecast trend,
  forecast headroom, pending replicas, recent move), numbered into one state;
* **action**: an index into ``actions``, a list of replica deltas
  (default ``[-1, 0, +1, +2]``: down 1, hold, up 1, up 2); the target is
  kept within the fleet's bounds, so down at the minimum is a hold;
* **reward**: read one tick later, see :mod:`elastic_des.agent.reward`.

:class:`AutoscaleMDP` holds what this needs to remember between ticks (the
last move and the pending action), so both the in-loop
:class:`~elastic_des.agent.policy.QLearningPolicy` and the stepped
:class:`~elastic_des.agent.env.AutoscaleEnv` see the very same problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from elastic_des.agent.reward import Reward
from elastic_des.agent.state import StateEncoder
from elastic_des.errors import ConfigError, require
from elastic_des.engine.observation import Observation
from elastic_des.theory import replicas_for_slo

if TYPE_CHECKING:  # policies import this module: importing them here would be circular
    from elastic_des.engine.policy import PolicyContext


def action_names(deltas: Sequence[int]) -> list[str]:
    """``hold``, ``up_1``, ``down_2`` … for replica deltas."""
    return ["hold" if d == 0 else f"{'up' if d > 0 else 'down'}_{abs(d)}" for d in deltas]


def validate_actions(deltas: Sequence[int], field: str = "policy.actions") -> list[int]:
    values = list(deltas)
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in values):
        raise ConfigError(f"{field} = {values}: replica deltas must be integers")
    require(0 in values, field, values, "must include 0 (hold)")
    require(len(set(values)) == len(values), field, values, "must not repeat a delta")
    return values


@dataclass(frozen=True)
class Step:
    """What the agent sees at a decision tick.

    state: the state number; values and bands: each component's value and band;
    reward: of the previous action (None at the first tick), with its terms.
    """

    state: int
    values: dict[str, float]
    bands: tuple[int, ...]
    reward: Optional[float]
    reward_terms: Optional[dict[str, float]]
    needed_replicas: int
    forecast_peak_rps: float


class AutoscaleMDP:
    """Turns observations into states and rewards, and actions into targets."""

    def __init__(self, encoder: StateEncoder, reward: Reward, deltas: Sequence[int], cooldown_s: float,
                 field: str = "policy"):
        require(math.isfinite(cooldown_s) and cooldown_s >= 0, f"{field}.cooldown_s", cooldown_s,
                "must be finite and >= 0")
        self.encoder, self.reward = encoder, reward
        self.deltas = validate_actions(deltas, f"{field}.actions")
        self.names = action_names(self.deltas)
        self.hold_action = self.deltas.index(0)
        self.cooldown_s = float(cooldown_s)

    @property
    def n_actions(self) -> int:
        return len(self.deltas)

    def reset(self, context: "PolicyContext") -> None:
        self.context = context
        # The cost unit: by default the static fleet for the planned peak.
        self.reference_replicas = self.reward.reference_replicas or self.needed(context.peak_rate_rps)
        # A replica ordered now serves from one cold start later until at
        # least the next decision: look that far into the forecast.
        self.lead_ticks = math.ceil(context.cold_start_s / context.tick_s) + 1
        self.last_move_s = -math.inf
        self.last_direction = 0
        self._pending_terms: Optional[dict[str, float]] = None

    def needed(self, rate_rps: float) -> int:
        c = self.context
        return replicas_for_slo(rate_rps, c.mean_service_s, c.slots_per_replica, c.slo_latency_s, c.slo_target,
                                max_replicas=10**6)

    def initial_replicas(self) -> int:
        """The Erlang C size for the planned mean rate, within the fleet's bounds."""
        c = self.context
        return min(max(self.needed(c.mean_rate_rps), c.min_replicas), c.max_replicas)

    def recent_move(self, now_s: float) -> int:
        return self.last_direction if now_s - self.last_move_s < self.cooldown_s else 0

    def observe(self, obs: Observation) -> Step:
        """The state at this tick and the reward of the previous action."""
        forecast = obs.forecast_rps
        if len(forecast) == 0:
            raise ConfigError("controller.forecast_horizon_ticks: the q_learning state needs a forecast")
        peak = float(max(forecast[: self.lead_ticks].max(), 0.0))
        needed = self.needed(peak)
        # The forecaster's own slope: the observed rate is too noisy a reference
        # (a one-minute burst would read as a falling trend).
        now, horizon = float(forecast[0]), float(forecast[-1])
        trend = horizon / now if now > 0 else (math.inf if horizon > 0 else 1.0)
        values = {
            "utilization": obs.utilization,
            "queue": obs.queue_length / max(obs.replicas_ready, 1),
            "trend": trend,
            "headroom": float(obs.target_replicas - needed),
            "pending": float(obs.replicas_provisioning),
            "recent_move": float(self.recent_move(obs.time_s)),
        }
        bands = self.encoder.bands(values)
        reward = terms = None
        if self._pending_terms is not None:
            billed = obs.replicas_ready + obs.replicas_provisioning + obs.replicas_draining
            terms = {**self.reward.outcome(obs.sla_compliance, billed, self.context.slo_target,
                                           self.reference_replicas),
                     **self._pending_terms}
            reward = -sum(terms.values())
            self._pending_terms = None
        return Step(self.encoder.index(bands), values, bands, reward, terms, needed, peak)

    def act(self, obs: Observation, action: int) -> int:
        """The target of ``action`` at this tick; remembers the move for the
        next reward and the recent-move component."""
        if not 0 <= action < self.n_actions:
            raise ValueError(f"action = {action}: must be in [0, {self.n_actions})")
        c, current = self.context, obs.target_replicas
        target = min(max(current + self.deltas[action], c.min_replicas), c.max_replicas)
        self._move_before = (self.last_move_s, self.last_direction)
        self.moved(obs, target)
        return target

    def moved(self, obs: Observation, target: int) -> None:
        """Remember the move to ``target`` at this tick (the next reward's
        stability terms and the recent-move component)."""
        current = obs.target_replicas
        direction = (target > current) - (target < current)
        self._pending_terms = self.reward.stability(direction, self.recent_move(obs.time_s))
        if direction:
            self.last_move_s, self.last_direction = obs.time_s, direction

    def replace_move(self, obs: Observation, target: int) -> None:
        """The move of this tick was to ``target``, not what :meth:`act` chose."""
        self.last_move_s, self.last_direction = self._move_before
        self.moved(obs, target)

    def details(self, step: Step) -> dict[str, Any]:
        """The numbers behind a state, for a Decision's ``details``."""
        return {
            **{name: step.values[name] for name in step.values},
            **{f"{name}_band": band for name, band in zip(step.values, step.bands)},
            "state": step.state,
            "needed_replicas": step.needed_replicas,
            "forecast_peak_rps": step.forecast_peak_rps,
            "lead_ticks": self.lead_ticks,
            "reward": step.reward,
            **({f"reward/{k}": v for k, v in step.reward_terms.items()} if step.reward_terms else {}),
        }

    def describe(self) -> dict:
        """The problem definition, for a model file's metadata."""
        return {
            "state": self.encoder.describe(),
            "actions": [{"name": n, "delta": d} for n, d in zip(self.names, self.deltas)],
            "reward": self.reward.describe(),
            "cooldown_s": self.cooldown_s,
        }
