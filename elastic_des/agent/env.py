"""``AutoscaleEnv``: the autoscaling MDP behind a Gymnasium-style interface.

``reset(seed)`` starts a run of the configured scenario and world and returns
the first observation; ``step(action)`` applies an action at the current
decision tick and returns the next observation and the action's reward::

    env = AutoscaleEnv(cfg)            # cfg composed with policy=q_learning
    obs, info = env.reset(seed=0)
    while True:
        obs, reward, terminated, truncated, info = env.step(agent(obs))
        if terminated or truncated:
            break

Observation
    ``np.ndarray`` of int64, one band per state component
    (:data:`elastic_des.agent.state.COMPONENTS`); ``observation_sizes`` holds
    the number of bands of each (a Gymnasium ``MultiDiscrete``).
    ``info["state"]`` is the state number a Q-table is indexed by,
    ``info["details"]`` the values behind the bands.
Action
    an index into ``action_names`` (a ``Discrete(n_actions)``); the actions
    come from ``policy.actions`` (see :mod:`elastic_des.agent.actions`).
Reward
    of the action just taken, measured over the tick that followed it:
    ``-(cost part + reward.sla × SLA part)``, see
    :mod:`elastic_des.agent.reward`; ``info["reward_parts"]`` holds the two
    parts for a constrained learner. Always <= 0.
End
    the scenario's end is a time limit, so the last step returns
    ``truncated=True`` (``terminated`` is always False). It comes at the last
    decision tick; the fleet then holds through the final tick, and
    ``info["summary"]`` carries the run's summary.

The state, actions and reward are those of the q_learning policy's config
(``policy.state``, ``policy.actions``, ``policy.reward``, ``policy.cooldown_s``).

How it works: the controller asks its policy for a decision from inside
SimPy's event loop and needs the answer at once. To hand that moment to an
outside caller without rebuilding the simulation here, the run executes
:func:`~elastic_des.engine.simulation.simulate_world` in a worker thread whose
policy blocks at each decision until ``step`` supplies the action. Exactly
one of the two threads runs at any time, so a run is as deterministic as an
ordinary one.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Optional

import numpy as np
from omegaconf import DictConfig

from elastic_des.agent.mdp import AutoscaleMDP
from elastic_des.agent.reward import Reward
from elastic_des.agent.state import StateEncoder
from elastic_des.errors import ConfigError, require
from elastic_des.factory import build
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext
from elastic_des.engine.simulation import simulate_world
from elastic_des.engine.workload import build_workload


class _Aborted(Exception):
    """Raised inside the simulation when the environment is closed mid-run."""


_ABORT = object()


class _SteppedPolicy(Policy):
    """A policy whose decisions come from :meth:`AutoscaleEnv.step`."""

    name = "autoscale_env"

    def __init__(self, mdp: AutoscaleMDP, duration_s: float, to_agent: queue.Queue, to_sim: queue.Queue):
        self.mdp, self.duration_s = mdp, duration_s
        self.to_agent, self.to_sim = to_agent, to_sim

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        self.mdp.reset(context)

    def decide(self, obs: Observation) -> Decision:
        step = self.mdp.observe(obs)
        details = self.mdp.details(step)
        if obs.time_s + self.context.tick_s >= self.duration_s:
            # The last decision: no tick follows to reward it, so the episode ends here.
            self.to_agent.put(("last", step, obs, details))
            return Decision(obs.target_replicas, "episode_end", details)
        self.to_agent.put(("step", step, obs, details))
        action = self.to_sim.get()
        if action is _ABORT:
            raise _Aborted()
        target = self.mdp.act(obs, step, action)
        return Decision(target, "agent", {**details, "action": self.mdp.names[action]})


class AutoscaleEnv:
    """See the module docs. ``cfg`` is a composed run config with ``policy=q_learning``."""

    def __init__(self, cfg: DictConfig):
        node = cfg.policy
        for key in ("state", "reward", "actions", "cooldown_s"):
            if key not in node:
                raise ConfigError(f"policy.{key}: missing; AutoscaleEnv takes its state, actions and reward "
                                  "from the q_learning policy's config (compose with policy=q_learning)")
        require(cfg.scenario.duration_s > 2 * cfg.controller.tick_s, "scenario.duration_s", cfg.scenario.duration_s,
                f"must be longer than two decision ticks (controller.tick_s = {cfg.controller.tick_s})")
        self.cfg = cfg
        self.mdp = AutoscaleMDP(StateEncoder.from_config(node.state), Reward(node.reward),
                                list(node.actions), float(node.cooldown_s),
                                burst_hold_s=node.get("burst_hold_s"),
                                burst_headroom=float(node.get("burst_headroom", 0.1)),
                                scale_in_window_s=node.get("scale_in_window_s"),
                                miss_hold_s=node.get("miss_hold_s"))
        self.observation_sizes = self.mdp.encoder.sizes
        self.action_names = list(self.mdp.names)
        self.n_actions = self.mdp.n_actions
        self.multiplier = self.mdp.reward.weights["sla"]
        self._thread: Optional[threading.Thread] = None
        self._awaiting_action = False
        self._finished = True

    def reset(self, seed: Optional[int] = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new run with workload seed ``seed`` (default ``cfg.seed``)."""

        self.close()
        cfg = self.cfg
        seed = cfg.seed if seed is None else int(seed)
        require(seed >= 0, "seed", seed, "must be >= 0")
        workload = build_workload(cfg.scenario, seed)
        forecaster = build(cfg.forecaster, "forecaster")
        self._to_agent: queue.Queue = queue.Queue()
        self._to_sim: queue.Queue = queue.Queue()
        policy = _SteppedPolicy(self.mdp, cfg.scenario.duration_s, self._to_agent, self._to_sim)

        def simulate() -> None:
            try:
                result = simulate_world(cfg.world, cfg.scenario, cfg.controller, policy, forecaster, workload, seed)
                self._to_agent.put(("done", result))
            except _Aborted:
                pass
            except BaseException as exc:  # handed to the caller's thread and raised there
                self._to_agent.put(("error", exc))

        self._thread = threading.Thread(target=simulate, name="AutoscaleEnv", daemon=True)
        self._finished = False
        self._thread.start()
        kind, obs, _, info = self._receive()
        return obs, info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` now; returns (observation, reward, terminated, truncated, info)."""
        if self._finished:
            raise RuntimeError("AutoscaleEnv.step: the episode is over (or was never started); call reset()")
        if not (isinstance(action, (int, np.integer)) and 0 <= action < self.n_actions):
            raise ValueError(f"action = {action!r}: must be an integer in [0, {self.n_actions})")
        self._awaiting_action = False
        self._to_sim.put(int(action))
        kind, obs, reward, info = self._receive()
        truncated = kind == "last"
        if truncated:
            message = self._to_agent.get()
            self._raise_error(message)
            self._thread.join()
            self._finished = True
            info["summary"] = message[1].summary
        return obs, float(reward), False, truncated, info

    def _receive(self) -> tuple[str, np.ndarray, Optional[float], dict[str, Any]]:
        message = self._to_agent.get()
        self._raise_error(message)
        kind, step, obs, details = message
        if kind == "step":
            self._awaiting_action = True
        info = {"state": step.state, "time_s": obs.time_s, "target_replicas": obs.target_replicas,
                "details": details, "reward_parts": step.reward}
        reward = None if step.reward is None else -(step.reward[0] + self.multiplier * step.reward[1])
        return kind, np.asarray(step.bands, dtype=np.int64), reward, info

    def _raise_error(self, message: tuple) -> None:
        if message[0] == "error":
            self._thread.join()
            self._finished = True
            raise message[1]

    def close(self) -> None:
        """Stop a run in progress (its thread ends); safe to call twice."""
        if self._thread is None:
            return
        if self._awaiting_action:
            self._to_sim.put(_ABORT)
            self._awaiting_action = False
        self._thread.join()
        self._thread = None
        self._finished = True
