"""Autoscaling as a Markov decision process, one decision tick at a time.

The controller observes the fleet every tick and asks for a target. Seen as
an MDP (the Gymnasium vocabulary):

* **observation**: the band of each state component of
  :mod:`elastic_des.agent.state` (load, queue and its growth, forecast
  trend, pending capacity, burstiness, size relative to the model, recent
  move), numbered into one state;
* **action**: an index into ``actions`` (:mod:`elastic_des.agent.actions`):
  hold, a replica step, or a multiple of the model size;
* **reward**: read one tick later, see :mod:`elastic_des.agent.reward`: a
  cost part and an SLA part, which the Lagrange multiplier combines.

The model size is what queueing theory asks for now: the predictive
policy's sizing without headroom (:meth:`PredictivePolicy.size
<elastic_des.policies.predictive.PredictivePolicy.size>`: Erlang C, with the
Allen–Cunneen correction when the tick's arrivals are burstier than Poisson)
for the higher of the forecast peak within the cold-start lead and the rate
observed in the last tick, with the measured service time
(``Observation.service_mean_s``, the prior until something completes), and
then the highest such size of the last ``cooldown_s`` (the HPA's downscale
stabilization: a noisy minute must not pull an ``x`` action below what the
previous minutes needed, or the agent would chase the noise up and down). It anchors both the ``size`` state
component and the ``x`` actions, so neither depends on the traffic's scale,
and ``x1.0`` is the predictive rule at zero headroom: the agent learns where
a margin pays and where none is needed.

Two rules, and three more when configured, shield every action
(:meth:`AutoscaleMDP.target`), in training as in use, so the table never
learns to rely on what they forbid, and the decision record names the one
that fired (``details["shield"]``; ``details["floor"]`` is the lowest
target allowed). The shipped models were trained with the first two and
the scale-in window (a table trained without it chose moves the window
then pinned: elastic_des/data/models/README.md); the burst floor and the
miss floor are use-time shields on top of them:

* ``floor``: no target below the model size. Queueing theory says fewer
  replicas miss the SLO at the rate in view, and a table that has seen a
  state a few times must not overrule that (one unseen state once held a
  single replica through a surge). The agent learns what theory cannot
  tell: how much headroom above the model pays, and when to release it.
* ``burst_floor`` (when ``burst_hold_s`` is set): after a burst the fleet
  did not absorb (a tick the ``burst`` state component bands as bursty,
  an index of dispersion above its first edge, that ends with requests
  waiting or the SLO missed), the floor is that tick's sizing at
  ``burst_headroom`` for ``burst_hold_s`` seconds, quiet ticks included.
  Bursts shorter than a cold start are over before capacity ordered at
  their first tick serves, so a fleet sized for the quiet minutes between
  them (one replica between the 6× bursts of ``bursty_onoff``) meets every
  burst late; the table, whose ``burst`` component sees only the current
  tick, cannot tell a quiet minute between bursts from a quiet hour. A
  burst that was absorbed asks for no memory, so traffic that is bursty
  everywhere but served (``bursty_gamma``) pays little for the rule.
* ``miss_floor`` (when ``miss_hold_s`` is set, a use-time rule like the
  burst floor): after a tick that missed the SLO target while requests
  waited for capacity (queued at the tick's end, or a mean queue wait above
  zero) and queueing theory saw no need (the model size at most the ready
  replicas, none starting, no scale-out within ``cooldown_s``), the floor
  is one replica more than served it, for ``miss_hold_s`` seconds. These
  are the misses the sizing cannot see: a burst of long prompts whose
  prefills stall a continuously batching replica at a low mean rate (the
  Azure code trace at half speed held one replica at 98.4 % compliance
  while the model size stayed at one). A miss the sizing already answers
  (a surge with replicas on their way, or the backlog its cold start left)
  adds nothing to hold after it, and a miss with nothing waiting (a request
  whose own service is longer than the SLO) asks for nothing: more
  replicas would not serve it sooner. Misses that persist add one replica
  per ``cooldown_s`` at most, since a scale-out silences the rule for that
  long.
* ``cooldown``: no scale-in less than ``cooldown_s`` after a scale-out (a
  reversal, the costly kind of flapping: the capacity just ordered is still
  starting); the target is held. Scaling out after a scale-in is always
  allowed: capacity for an unforeseen surge must never wait.
* ``scale_in_window`` (when ``scale_in_window_s`` is set, in training as in
  use for the shipped models): the HPA's downscale stabilization applied to the
  agent's own targets: a scale-in goes no lower than the highest target
  proposed in the last ``scale_in_window_s`` seconds. The other kind of
  flap, a scale-in that the next minutes' noise undoes with a scale-out,
  then needs a dip that lasts the window.

The shield also applies to the predictive fallback's target (the policy's
unseen states), so the decision record names it there too: a fallback
must not scale in a tick after the table scaled out (the cooldown), nor
below the window's targets.

:class:`AutoscaleMDP` holds what this needs to remember between ticks (the
last move, the previous queue and the pending action), so both the in-loop
:class:`~elastic_des.agent.policy.QLearningPolicy` and the stepped
:class:`~elastic_des.agent.env.AutoscaleEnv` see the very same problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from elastic_des.agent.actions import parse_actions
from elastic_des.agent.reward import Reward
from elastic_des.agent.state import StateEncoder
from elastic_des.errors import ConfigError, require
from elastic_des.engine.observation import Observation
from elastic_des.policies.hpa import StabilizationWindow
from elastic_des.policies.predictive import PredictivePolicy

if TYPE_CHECKING:  # policies import this module: importing them here would be circular
    from elastic_des.engine.policy import PolicyContext


@dataclass(frozen=True)
class Step:
    """What the agent sees at a decision tick.

    state: the state number; values and bands: each component's value and band;
    reward: of the previous action (None at the first tick): its cost part
    (cost and stability terms) and its SLA part (error budgets missed), and
    the terms; the scalar reward is ``-(cost + multiplier × sla)``.
    model_size: the Erlang C size the ``x`` actions multiply.
    floor: the lowest target the shield allows (the model size, or the
    burst floor when higher); floor_rule: the shield rule it is.
    """

    state: int
    values: dict[str, float]
    bands: tuple[int, ...]
    reward: Optional[tuple[float, float]]
    reward_terms: Optional[dict[str, float]]
    model_size: int
    forecast_peak_rps: float
    service_s: float
    floor: int
    floor_rule: str


class AutoscaleMDP:
    """Turns observations into states and rewards, and actions into targets."""

    def __init__(self, encoder: StateEncoder, reward: Reward, actions: Sequence[str], cooldown_s: float,
                 field: str = "policy", burst_hold_s: Optional[float] = None, burst_headroom: float = 0.1,
                 scale_in_window_s: Optional[float] = None, miss_hold_s: Optional[float] = None):
        require(math.isfinite(cooldown_s) and cooldown_s >= 0, f"{field}.cooldown_s", cooldown_s,
                "must be finite and >= 0")
        if burst_hold_s is not None:
            require(math.isfinite(burst_hold_s) and burst_hold_s >= 0, f"{field}.burst_hold_s", burst_hold_s,
                    "must be finite and >= 0, or null (no burst floor)")
        require(math.isfinite(burst_headroom) and burst_headroom >= 0, f"{field}.burst_headroom",
                burst_headroom, "must be finite and >= 0")
        if miss_hold_s is not None:
            require(math.isfinite(miss_hold_s) and miss_hold_s >= 0, f"{field}.miss_hold_s", miss_hold_s,
                    "must be finite and >= 0, or null (no miss floor)")
        if scale_in_window_s is not None:
            require(math.isfinite(scale_in_window_s) and scale_in_window_s >= 0, f"{field}.scale_in_window_s",
                    scale_in_window_s, "must be finite and >= 0, or null (no scale-in window)")
        self.proposals = None if scale_in_window_s is None else StabilizationWindow(float(scale_in_window_s))
        self.burst_floors = None if burst_hold_s is None else StabilizationWindow(float(burst_hold_s))
        self.miss_floors = None if miss_hold_s is None else StabilizationWindow(float(miss_hold_s))
        self.burst_sizer = PredictivePolicy(headroom=burst_headroom)  # its sizing only
        self.encoder, self.reward = encoder, reward
        self.actions = parse_actions(actions, f"{field}.actions")
        self.specs = [a.spec for a in self.actions]
        self.names = [a.name for a in self.actions]
        self.hold_action = self.names.index("hold")
        self.cooldown_s = float(cooldown_s)
        self.recent_sizes = StabilizationWindow(self.cooldown_s)
        self.sizer = PredictivePolicy(headroom=0.0)  # its sizing only; its decisions are not used

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    def reset(self, context: "PolicyContext") -> None:
        self.context = context
        self.sizer.reset(context)
        self.burst_sizer.reset(context)
        if self.burst_floors is not None:
            self.burst_floors.clear()
        if self.miss_floors is not None:
            self.miss_floors.clear()
        if self.proposals is not None:
            self.proposals.clear()
        # The cost unit: by default the static fleet for the planned peak.
        self.reference_replicas = self.reward.reference_replicas or context.replicas_for(context.peak_rate_rps)
        # A replica ordered now serves from one cold start later until at
        # least the next decision: look that far into the forecast.
        self.lead_ticks = math.ceil(context.cold_start_s / context.tick_s) + 1
        self.last_move_s = -math.inf
        self.last_direction = 0
        self._move_before = (self.last_move_s, self.last_direction)
        self.previous_queue = 0.0
        self.recent_sizes.clear()
        self.shield: Optional[str] = None  # the rule that changed the last action's target (module docs)
        self._pending_terms: Optional[dict[str, float]] = None

    def bounded(self, target: int) -> int:
        return min(max(target, self.context.min_replicas), self.context.max_replicas)

    def recent_move(self, now_s: float) -> int:
        return self.last_direction if now_s - self.last_move_s < self.cooldown_s else 0

    def observe(self, obs: Observation) -> Step:
        """The state at this tick and the reward of the previous action."""
        self.shield = None
        forecast = obs.forecast_rps
        if len(forecast) == 0:
            raise ConfigError("controller.forecast_horizon_ticks: the q_learning state needs a forecast")
        service = obs.service_mean_s if math.isfinite(obs.service_mean_s) and obs.service_mean_s > 0 \
            else self.context.mean_service_s
        peak = float(max(forecast[: self.lead_ticks].max(), obs.arrival_rate_rps, 0.0))
        scv = self.sizer.arrival_scv(obs)
        model_size = self.recent_sizes.record(obs.time_s, self.sizer.size(peak, obs, scv))
        floor, floor_rule = self._floor(obs, peak, scv, model_size)
        # The forecaster's own slope: the observed rate is too noisy a reference
        # (a one-minute burst would read as a falling trend).
        now, horizon = float(forecast[0]), float(forecast[-1])
        trend = horizon / now if now > 0 else (math.inf if horizon > 0 else 1.0)
        ready = obs.replicas_ready
        slots = ready * obs.slots_per_replica
        offered = obs.arrival_rate_rps * service
        queue = obs.queue_length / max(ready, 1)
        values = {
            "load": offered / slots if slots else (math.inf if offered > 0 else 0.0),
            "queue": queue,
            "queue_growth": queue - self.previous_queue,
            "trend": trend,
            # Capacity ordered but not serving yet: a share of what serves, so a
            # fleet of 40 with 2 starting reads like a fleet of 4 with none.
            "pending": obs.replicas_provisioning / ready if ready else (math.inf if obs.replicas_provisioning else 0.0),
            "burst": obs.arrival_dispersion,
            "size": obs.target_replicas / model_size,
            "recent_move": float(self.recent_move(obs.time_s)),
        }
        self.previous_queue = queue
        bands = self.encoder.bands(values)
        reward = terms = None
        if self._pending_terms is not None:
            billed = obs.replicas_ready + obs.replicas_provisioning + obs.replicas_draining
            terms = {**self.reward.outcome(obs.sla_compliance, billed, self.context.slo_target,
                                           self.reference_replicas),
                     **self._pending_terms}
            reward = (terms["cost"] + terms["flap"] + terms["cooldown"], terms["sla"])
            self._pending_terms = None
        return Step(self.encoder.index(bands), values, bands, reward, terms, model_size, peak, service,
                    floor, floor_rule)

    def _floor(self, obs: Observation, peak: float, scv: float, model_size: int) -> tuple[int, str]:
        """The shield's floor and its rule (module docs): the model size, or
        the burst floor or the miss floor when higher."""
        floor, rule = model_size, "floor"
        if self.burst_floors is not None:
            # Bursty as the state bands it (above the burst component's first edge, 2 by
            # default): the sizer's Poisson test alone also fires on a rate ramping within a minute.
            # A burst the fleet absorbed (nothing waits, the SLO met) needs no memory.
            bursty = obs.arrival_dispersion > self.encoder.edges["burst"][0] and (
                obs.queue_length > 0 or obs.sla_compliance < self.context.slo_target)
            burst = self.burst_floors.record(obs.time_s, self.burst_sizer.size(peak, obs, scv) if bursty else 0)
            if burst > floor:
                floor, rule = burst, "burst_floor"
        if self.miss_floors is not None:
            # Missed with requests waiting for capacity: a miss more replicas would have served.
            # NaN compliance (nothing finished) and NaN wait (nothing admitted) compare False.
            congested = obs.queue_length > 0 or obs.queue_wait_mean_s > 0
            # Unforeseen: the sizing asks for no more than serves, nothing is on its way, and no
            # scale-out within the cooldown (whose cold-start lag left the backlog the miss drains).
            unforeseen = (model_size <= obs.replicas_ready and obs.replicas_provisioning == 0
                          and self.recent_move(obs.time_s) <= 0)
            missed = obs.sla_compliance < self.context.slo_target and congested and unforeseen
            miss = self.miss_floors.record(obs.time_s, obs.replicas_ready + 1 if missed else 0)
            if miss > floor:
                floor, rule = miss, "miss_floor"
        return floor, rule

    def target(self, obs: Observation, step: Step, action: int) -> int:
        """The target ``action`` asks for at this tick, within the fleet's bounds."""
        if not 0 <= action < self.n_actions:
            raise ValueError(f"action = {action}: must be in [0, {self.n_actions})")
        return self.shielded(obs, step, self.actions[action].target(obs.target_replicas, step.model_size))

    def shielded(self, obs: Observation, step: Step, proposed: int) -> int:
        """``proposed`` (an action's target, or the fallback's) within the
        fleet's bounds and through every shield rule (module docs), the rule
        that changed it in ``shield``."""
        current = obs.target_replicas
        target, floor = self.bounded(proposed), self.bounded(step.floor)
        self.shield = None
        if target < floor:
            target, self.shield = floor, step.floor_rule
        if target < current and self.recent_move(obs.time_s) > 0:
            target, self.shield = current, "cooldown"
        if self.proposals is not None:
            highest = self.proposals.record(obs.time_s, target)
            if target < current and highest > target:
                target, self.shield = min(highest, current), "scale_in_window"
        return target

    def commit(self, obs: Observation, target: int) -> None:
        """Remember a move to ``target`` for the next reward and the recent-move component."""
        self._move_before = (self.last_move_s, self.last_direction)
        current = obs.target_replicas
        direction = (target > current) - (target < current)
        self._pending_terms = self.reward.stability(direction, self.recent_move(obs.time_s))
        if direction:
            self.last_move_s, self.last_direction = obs.time_s, direction

    def replace_move(self, obs: Observation, target: int) -> None:
        """The move of this tick was to ``target``, not the one committed (a
        counterfactual replay forced it): remember that one instead."""
        self.last_move_s, self.last_direction = self._move_before
        self.commit(obs, target)

    def act(self, obs: Observation, step: Step, action: int) -> int:
        """The target of ``action``, committed."""
        target = self.target(obs, step, action)
        self.commit(obs, target)
        return target

    def details(self, step: Step) -> dict[str, Any]:
        """The numbers behind a state, for a Decision's ``details``."""
        return {
            **{name: step.values[name] for name in step.values},
            **{f"{name}_band": band for name, band in zip(step.values, step.bands)},
            "state": step.state,
            "model_size": step.model_size,
            "floor": step.floor,
            "forecast_peak_rps": step.forecast_peak_rps,
            "service_s": step.service_s,
            "lead_ticks": self.lead_ticks,
            "shield": self.shield,
            "reward_cost": None if step.reward is None else step.reward[0],
            "reward_sla": None if step.reward is None else step.reward[1],
            **({f"reward/{k}": v for k, v in step.reward_terms.items()} if step.reward_terms else {}),
        }

    def describe(self) -> dict:
        """The problem definition, for a model file's metadata."""
        return {
            "state": self.encoder.describe(),
            "actions": [{"name": a.name, "spec": a.spec} for a in self.actions],
            "reward": self.reward.describe(),
            "cooldown_s": self.cooldown_s,
            "burst_hold_s": None if self.burst_floors is None else self.burst_floors.window_s,
            "burst_headroom": self.burst_sizer.headroom,
            "scale_in_window_s": None if self.proposals is None else self.proposals.window_s,
            "miss_hold_s": None if self.miss_floors is None else self.miss_floors.window_s,
        }
