"""A tabular Q-learning autoscaler that falls back to a safe rule when unsure.

At each tick the policy bands the observation into a state (load, queue and
its growth, forecast trend, pending capacity, burstiness, size relative to
the model size, recent move; see :mod:`elastic_des.agent.state`) and takes
the action with the highest learned value ``cost + λ · sla`` among those it
has tried in that state: hold, a replica step, or a multiple of the Erlang C
model size (:mod:`elastic_des.agent.actions`).

A state the table has not learned (fewer than ``min_visits`` updates) is no
knowledge, and holding there is not safe: one unseen state held a single
replica for 44 minutes of a surge. There the policy does what the
predictive policy (:class:`~elastic_des.policies.predictive.PredictivePolicy`,
``fallback_headroom``) would, and says so: rule ``fallback_predictive``,
``details["fallback"]`` with the reason and the predictive rule that fired.
The predictive policy sees every tick, so its scale-in window is current
whenever it is needed.

Without ``model_path`` it loads the model shipped with the package for the
world it sizes (``elastic_des/data/models/q_learning_<world>.npz``, ``slm``
and ``llm``, trained over a distribution of scenarios; see the README
there). A model only fits the state encoding and actions it was trained
with; loading it under others is a ConfigError naming what differs.

Training (``python run.py task=train policy=q_learning``,
:mod:`elastic_des.agent.training`) runs this same policy inside the
controller loop with :meth:`learn` switched on: ε-greedy actions and a
Bellman update of the previous (state, action) at each tick, with the
reward observed since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from elastic_des.agent.mdp import AutoscaleMDP
from elastic_des.agent.qtable import QTable, metadata_path, visit_rate
from elastic_des.agent.reward import Reward, RewardConfig
from elastic_des.agent.state import StateConfig, StateEncoder
from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext
from elastic_des.policies.predictive import PredictivePolicy

SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "data" / "models"


def shipped_model(world: Optional[str]) -> Path:
    """The model shipped for ``world``; ConfigError naming the shipped ones if none."""
    path = SHIPPED_MODELS / f"q_learning_{world}.npz"
    if world is None or not path.is_file():
        shipped = sorted(p.stem.removeprefix("q_learning_") for p in SHIPPED_MODELS.glob("q_learning_*.npz"))
        raise ConfigError(f"policy.model_path = null: no model shipped for world {world!r} (shipped: {shipped}); "
                          "train one with `python run.py task=train policy=q_learning world=<name>` "
                          "and set policy.model_path")
    return path


class QLearningPolicy(Policy):
    name = "q_learning"

    def __init__(
        self,
        model_path: Optional[str] = None,
        actions: Any = ("hold", "-1", "x1.0", "x1.2", "x1.5", "x2.0"),
        state: Any = None,
        reward: Any = None,
        cooldown_s: float = 300.0,
        initial_replicas: Optional[int] = None,
        untrained: bool = False,
        world: Optional[str] = None,
        min_visits: int = 3,
        fallback_headroom: float = 0.1,
        burst_hold_s: Optional[float] = None,
        burst_headroom: float = 0.1,
        scale_in_window_s: Optional[float] = None,
        miss_hold_s: Optional[float] = None,
        hold_tolerance: float = 0.0,
    ):
        if not (math.isfinite(hold_tolerance) and 0 <= hold_tolerance < 1):
            raise ConfigError(f"policy.hold_tolerance = {hold_tolerance}: must be in [0, 1)")
        if initial_replicas is not None and initial_replicas < 0:
            raise ConfigError(f"policy.initial_replicas = {initial_replicas}: must be >= 0 or null")
        if not (isinstance(min_visits, int) and min_visits >= 1):
            raise ConfigError(f"policy.min_visits = {min_visits!r}: must be an integer >= 1")
        if fallback_headroom < 0:
            raise ConfigError(f"policy.fallback_headroom = {fallback_headroom}: must be >= 0")
        self.mdp = AutoscaleMDP(
            StateEncoder.from_config(state if state is not None else StateConfig()),
            Reward(reward if reward is not None else RewardConfig()),
            list(actions), cooldown_s, burst_hold_s=burst_hold_s, burst_headroom=burst_headroom,
            scale_in_window_s=scale_in_window_s, miss_hold_s=miss_hold_s,
        )
        self.initial = initial_replicas
        self.min_visits = min_visits
        self.hold_tolerance = hold_tolerance
        self.fallback = PredictivePolicy(headroom=fallback_headroom)
        if untrained:
            if model_path is not None:
                raise ConfigError(f"policy.untrained = true: conflicts with policy.model_path = {model_path!r}")
            self.table = QTable.zeros(self.mdp.encoder.n_states, self.mdp.n_actions, self.mdp.hold_action,
                                      self.mdp.reward.weights["sla"])
            self.model_path, self.metadata = None, {}
        else:
            self.model_path = Path(model_path) if model_path is not None else shipped_model(world)
            self.table, self.metadata = QTable.load(self.model_path)
            check_compatible(self.metadata, self.mdp, self.model_path)
        self.learning: Optional[Learning] = None

    def learn(self, learning: "Learning") -> None:
        """Learn during the next run; ``learning`` records its transitions."""
        self.learning = learning

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        self.mdp.reset(context)
        self.fallback.reset(context)
        self._previous: Optional[tuple[int, int]] = None

    def initial_replicas(self) -> int:
        """``initial_replicas``, or the Erlang C size for the starting traffic."""
        return self.initial if self.initial is not None else super().initial_replicas()

    def decide(self, obs: Observation) -> Decision:
        step = self.mdp.observe(obs)
        safe = self.fallback.decide(obs)  # every tick, so its scale-in window stays current
        learning = self.learning
        if learning is not None and self._previous is not None:
            learning.record(self.table, *self._previous, *step.reward, step.state)
        fallback, passed_over = None, None
        if learning is not None:
            action, explored = self.table.epsilon_greedy(step.state, learning.epsilon, learning.rng)
            rule = "explore" if explored else "greedy"
        else:
            action = self.table.greedy(step.state, self.min_visits)
            rule = "greedy"
            if action is not None:
                held = self.table.near_tie_hold(step.state, action, self.hold_tolerance)
                passed_over = self.mdp.names[action] if held != action else None
                action = held
            if action is None:
                visits = int(self.table.visits[step.state].sum())
                fallback = {"policy": "predictive", "rule": safe.rule, "target": safe.target,
                            "reason": "unseen_state" if visits == 0 else f"visits {visits} < min_visits {self.min_visits}"}
                rule = "fallback_predictive"
        self._previous = None if action is None else (step.state, action)
        if action is None:
            target = self.mdp.shielded(obs, step, safe.target)
            self.mdp.commit(obs, target)
        else:
            target = self.mdp.act(obs, step, action)
        details = {**self.mdp.details(step), "action": "fallback" if action is None else self.mdp.names[action],
                   "visits": int(self.table.visits[step.state].sum()), "multiplier": self.table.multiplier}
        if fallback is not None:
            details["fallback"] = fallback
        if passed_over is not None:
            details["near_tie_hold"] = passed_over
        # An untried action's 0 is a placeholder, not an estimate: report it as NaN (null in JSON).
        q = np.where(self.table.visits[step.state] > 0, self.table.values(step.state), np.nan)
        return Decision(target, rule, details, {name: float(v) for name, v in zip(self.mdp.names, q)})

    def applied(self, obs: Observation, decided: int, target: int) -> None:
        # The next state's recent move and the next reward follow the move that
        # happened; a forced target is no action of the table's, so it starts no transition.
        self.mdp.replace_move(obs, target)
        if target != decided:
            self._previous = None
        self.fallback.applied(obs, decided, target)


class Learning:
    """How one run learns (discount, learning-rate schedule, exploration) and
    the transitions it saw.

    ``transitions`` are ``(state, action, cost, sla, next_state)`` in order, so a
    trainer can apply them with :meth:`update` to another copy of the table
    (see :mod:`elastic_des.agent.training`) exactly as they were applied here.
    """

    def __init__(self, gamma: float, alpha_power: float, alpha_min: float, epsilon: float,
                 rng: np.random.Generator):
        if not 0 <= gamma < 1:
            raise ConfigError(f"train.gamma = {gamma}: must be in [0, 1)")
        if not 0.5 < alpha_power <= 1:
            raise ConfigError(f"train.alpha_power = {alpha_power}: must be in (0.5, 1]")
        if not 0 < alpha_min <= 1:
            raise ConfigError(f"train.alpha_min = {alpha_min}: must be in (0, 1]")
        if not 0 <= epsilon <= 1:
            raise ConfigError(f"train.epsilon = {epsilon}: must be in [0, 1]")
        self.gamma, self.alpha_power, self.alpha_min = gamma, alpha_power, alpha_min
        self.epsilon, self.rng = epsilon, rng
        self.transitions: list[tuple[int, int, float, float, int]] = []

    def update(self, table: QTable, state: int, action: int, cost: float, sla: float, next_state: int) -> None:
        alpha = visit_rate(int(table.visits[state, action]), self.alpha_power, self.alpha_min)
        table.update(state, action, cost, sla, next_state, alpha, self.gamma)

    def record(self, table: QTable, state: int, action: int, cost: float, sla: float, next_state: int) -> None:
        self.update(table, state, action, cost, sla, next_state)
        self.transitions.append((state, action, cost, sla, next_state))


def check_compatible(metadata: dict, mdp: AutoscaleMDP, path: Path) -> None:
    """ConfigError naming the model file and the first difference between the
    encoding and actions it was trained with and the policy's."""
    meta_file = metadata_path(path)
    expected = mdp.describe()
    trained = metadata.get("problem", {})
    components = {c["name"]: c for c in trained.get("state", {}).get("components", [])}
    for want in expected["state"]["components"]:
        got = components.get(want["name"])
        if got is None:
            raise ConfigError(f"model {meta_file}: has no state component {want['name']!r}; "
                              f"it was trained with {sorted(components)}")
        if got.get("edges") != want["edges"]:
            raise ConfigError(f"model {meta_file}: state component {want['name']!r} has band edges {got['edges']}, "
                              f"policy.state.{want['name']} = {want['edges']}")
    if set(components) != {c["name"] for c in expected["state"]["components"]}:
        raise ConfigError(f"model {meta_file}: state components {sorted(components)} != "
                          f"{[c['name'] for c in expected['state']['components']]}")
    got_actions = [a.get("spec") for a in trained.get("actions", [])]
    if got_actions != mdp.specs:
        raise ConfigError(f"model {meta_file}: trained with actions {got_actions}, policy.actions = {mdp.specs}")
    if tuple(metadata["shape"]) != (mdp.encoder.n_states, mdp.n_actions):
        raise ConfigError(f"model {meta_file}: table shape {tuple(metadata['shape'])} != "
                          f"({mdp.encoder.n_states} states, {mdp.n_actions} actions) of the policy's encoding")


@dataclass
class QLearningConfig:
    """The q_learning policy.

    model_path: a model's .npz (its .json metadata alongside); null loads the
    model shipped with the package for ``world``.
    actions: what the agent chooses from (``hold``, ``+n``/``-n`` replica
        steps, ``xf`` multiples of the model size; see
        :mod:`elastic_des.agent.actions`); must match the model.
    state: band edges of the state components; must match the model.
    reward: reward weights, used when training.
    cooldown_s: how long a scaling move counts as recent (state and reward).
    initial_replicas: warm replicas at t=0; null sizes them by Erlang C for
    the starting traffic (the planned peak until the first decision's
    replicas are ready), as every elastic policy does.
    untrained: start from an all-zero table instead of a model (it falls
    back to the predictive rule in every state until trained); the starting
    point of training.
    min_visits: a state with fewer updates than this is not trusted: the
    policy falls back to the predictive rule there (rule ``fallback_predictive``).
    fallback_headroom: the fallback predictive policy's ``headroom``.
    burst_hold_s: after a bursty tick the target stays at least that tick's
    predictive sizing (at ``burst_headroom``) for this many seconds
    (shield rule ``burst_floor``, :mod:`elastic_des.agent.mdp`); null: off.
    burst_headroom: the headroom of that sizing.
    miss_hold_s: after a tick that missed the SLO target with requests
    waiting for capacity, the target stays at least the replicas ready then
    plus those ordered, one more than ready at least, for this many seconds
    (shield rule ``miss_floor``); null: off.
    hold_tolerance: at use, hold when holding's value is within this share
    of the best action's (a near-tie: the table cannot tell them apart, and
    holding changes nothing; ``details["near_tie_hold"]`` names the action
    passed over); 0: off. Training is unaffected.
    scale_in_window_s: a scale-in goes no lower than the highest target the
    agent proposed in this many seconds (the HPA's downscale stabilization on
    its own targets; shield rule ``scale_in_window``); null: off.
    world: the name of the world the policy sizes (``${world.name}``), which
    picks the shipped model.
    """

    _target_: str = "elastic_des.agent.policy.QLearningPolicy"
    model_path: Optional[str] = None
    actions: list[str] = field(default_factory=lambda: ["hold", "-1", "x1.0", "x1.2", "x1.5", "x2.0"])
    state: StateConfig = field(default_factory=StateConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    cooldown_s: float = 300.0
    initial_replicas: Optional[int] = None
    untrained: bool = False
    world: Optional[str] = "${world.name}"
    min_visits: int = 3
    fallback_headroom: float = 0.1
    burst_hold_s: Optional[float] = None
    burst_headroom: float = 0.1
    scale_in_window_s: Optional[float] = None
    miss_hold_s: Optional[float] = None
    hold_tolerance: float = 0.0
