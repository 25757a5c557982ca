"""A tabular Q-learning autoscaler.

At each tick the policy bands the observation into a state (utilization,
queue, forecast trend, forecast headroom, pending replicas, recent move; see
:mod:`elastic_des.agent.state`) and takes the action with the highest learned
value among those it has tried in that state: scale down 1, hold, up 1 or
up 2 by default. In a state it never visited in training it holds, and says
so (rule ``unseen_state``).

Without ``model_path`` it loads the model shipped with the package for the
world it sizes (``elastic_des/data/models/q_learning_<world>.npz``, ``slm``
and ``llm``, trained on the default scenario; see the README there): what
pays off with a 90 s cold start does not with a 10-minute one. A model only
fits the state encoding and actions it was trained with; loading it under
others is a ConfigError.

Training (``python run.py experiment=train``, :mod:`elastic_des.agent.training`)
runs this same policy inside the controller loop with :meth:`learn` switched
on: ε-greedy actions and a Bellman update of the previous (state, action) at
each tick, with the reward observed since.
"""

from __future__ import annotations

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
        actions: Any = (-1, 0, 1, 2),
        state: Any = None,
        reward: Any = None,
        cooldown_s: float = 300.0,
        initial_replicas: Optional[int] = None,
        untrained: bool = False,
        world: Optional[str] = None,
    ):
        if initial_replicas is not None and initial_replicas < 0:
            raise ConfigError(f"policy.initial_replicas = {initial_replicas}: must be >= 0 or null")
        self.mdp = AutoscaleMDP(
            StateEncoder.from_config(state if state is not None else StateConfig()),
            Reward(reward if reward is not None else RewardConfig()),
            list(actions), cooldown_s,
        )
        self.initial = initial_replicas
        if untrained:
            if model_path is not None:
                raise ConfigError(f"policy.untrained = true: conflicts with policy.model_path = {model_path!r}")
            self.table = QTable.zeros(self.mdp.encoder.n_states, self.mdp.n_actions, self.mdp.hold_action)
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
        self._previous: Optional[tuple[int, int]] = None

    def initial_replicas(self) -> int:
        """``initial_replicas``, or the Erlang C size for the planned mean rate."""
        return self.initial if self.initial is not None else self.mdp.initial_replicas()

    def decide(self, obs: Observation) -> Decision:
        step = self.mdp.observe(obs)
        learning = self.learning
        if learning is not None and self._previous is not None:
            learning.record(self.table, *self._previous, step.reward, step.state)
        if learning is not None:
            action, explored = self.table.epsilon_greedy(step.state, learning.epsilon, learning.rng)
            rule = "explore" if explored else "greedy"
        else:
            greedy = self.table.greedy(step.state)
            action, rule = (self.mdp.hold_action, "unseen_state") if greedy is None else (greedy, "greedy")
        self._previous = (step.state, action)
        target = self.mdp.act(obs, action)
        details = {**self.mdp.details(step), "action": self.mdp.names[action],
                   "visits": int(self.table.visits[step.state].sum())}
        # An untried action's 0 is a placeholder, not an estimate: report it as NaN (null in JSON).
        q = np.where(self.table.visits[step.state] > 0, self.table.values[step.state], np.nan)
        return Decision(target, rule, details, {name: float(v) for name, v in zip(self.mdp.names, q)})

    def applied(self, obs: Observation, decided: int, target: int) -> None:
        # The next state's recent move and the next reward follow the move that happened.
        self.mdp.replace_move(obs, target)
        delta = target - obs.target_replicas
        if self._previous is not None and delta in self.mdp.deltas:
            self._previous = (self._previous[0], self.mdp.deltas.index(delta))


class Learning:
    """How one run learns (discount, learning-rate schedule, exploration) and
    the transitions it saw.

    ``transitions`` are ``(state, action, reward, next_state)`` in order, so a
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
        self.transitions: list[tuple[int, int, float, int]] = []

    def update(self, table: QTable, state: int, action: int, reward: float, next_state: int) -> None:
        alpha = visit_rate(int(table.visits[state, action]), self.alpha_power, self.alpha_min)
        table.update(state, action, reward, next_state, alpha, self.gamma)

    def record(self, table: QTable, state: int, action: int, reward: float, next_state: int) -> None:
        self.update(table, state, action, reward, next_state)
        self.transitions.append((state, action, reward, next_state))


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
    got_actions = [a["delta"] for a in trained.get("actions", [])]
    if got_actions != mdp.deltas:
        raise ConfigError(f"model {meta_file}: trained with actions {got_actions}, policy.actions = {mdp.deltas}")
    if tuple(metadata["shape"]) != (mdp.encoder.n_states, mdp.n_actions):
        raise ConfigError(f"model {meta_file}: table shape {tuple(metadata['shape'])} != "
                          f"({mdp.encoder.n_states} states, {mdp.n_actions} actions) of the policy's encoding")


@dataclass
class QLearningConfig:
    """The q_learning policy.

    model_path: a model's .npz (its .json metadata alongside); null loads the
    model shipped with the package for ``world``.
    actions: replica deltas the agent chooses from; must match the model.
    state: band edges of the state components; must match the model.
    reward: reward weights, used when training.
    cooldown_s: how long a scaling move counts as recent (state and reward).
    initial_replicas: warm replicas at t=0; null sizes them by Erlang C for
    the scenario's planned mean rate.
    untrained: start from an all-zero table instead of a model (it holds in
    every state until trained); the starting point of training.
    world: the name of the world the policy sizes (``${world.name}``), which
    picks the shipped model.
    """

    _target_: str = "elastic_des.agent.policy.QLearningPolicy"
    model_path: Optional[str] = None
    actions: list[int] = field(default_factory=lambda: [-1, 0, 1, 2])
    state: StateConfig = field(default_factory=StateConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    cooldown_s: float = 300.0
    initial_replicas: Optional[int] = None
    untrained: bool = False
    world: Optional[str] = "${world.name}"
