"""The Q-learning agent: Bellman update, greedy choice, model files, the MDP,
AutoscaleEnv and a short training run that must improve the greedy policy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from elastic_des.agent.env import AutoscaleEnv
from elastic_des.agent.mdp import AutoscaleMDP, action_names
from elastic_des.agent.qtable import QTable, visit_rate
from elastic_des.agent.reward import Reward, RewardConfig
from elastic_des.agent.state import COMPONENTS, StateConfig, StateEncoder
from elastic_des.agent.training import window_scenario
from elastic_des.app import run
from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import PolicyContext
from elastic_des.agent.policy import QLearningPolicy, shipped_model
from elastic_des.engine.workload import build_workload

HOLD = 1  # index of delta 0 in the default actions [-1, 0, 1, 2]


def context(**overrides) -> PolicyContext:
    values = dict(fleet_field="world.fleet", min_replicas=1, max_replicas=10, slots_per_replica=16,
                  mean_service_s=2.675, cold_start_s=90.0, tick_s=60.0, slo_latency_s=30.0, slo_target=0.99,
                  peak_rate_rps=12.0, mean_rate_rps=8.0, rng=np.random.default_rng(0))
    return PolicyContext(**{**values, **overrides})


def observation(**overrides) -> Observation:
    values = dict(time_s=600.0, tick=9, arrival_rate_rps=8.0, utilization=0.6, queue_length=0, in_flight=20,
                  latency_p50_s=3.0, latency_p95_s=8.0, latency_p99_s=10.0, sla_compliance=1.0, drops=0,
                  replicas_ready=2, replicas_provisioning=0, replicas_draining=0, target_replicas=2,
                  forecast_rps=np.full(15, 8.0), slots_per_replica=16)
    return Observation(**{**values, **overrides})


def save_default_shaped(path, values=None) -> QTable:
    """A model file with the default encoding and actions."""
    policy = QLearningPolicy(untrained=True)
    table = policy.table
    if values is not None:
        table.values[:] = values
        table.visits[:] = 1
    table.save(path, {"problem": policy.mdp.describe()})
    return table


# -- the table ----------------------------------------------------------

def test_bellman_update_matches_hand_computation():
    table = QTable.zeros(4, 2, hold_action=0)
    table.values[1] = [2.0, 5.0]
    table.visits[1] = [3, 1]
    # target = r + gamma * max Q(s') = -1 + 0.9 * 5 = 3.5; Q <- 0 + 0.5 * (3.5 - 0) = 1.75
    assert table.update(0, 1, -1.0, 1, alpha=0.5, gamma=0.9) == pytest.approx(3.5)
    assert table.values[0, 1] == pytest.approx(1.75)
    # again: TD error 3.5 - 1.75 = 1.75, Q <- 1.75 + 0.5 * 1.75 = 2.625
    assert table.update(0, 1, -1.0, 1, alpha=0.5, gamma=0.9) == pytest.approx(1.75)
    assert table.values[0, 1] == pytest.approx(2.625)
    assert table.visits.tolist() == [[0, 2], [3, 1], [0, 0], [0, 0]]
    # a self-loop bootstraps from its own (updated) row: -1 + 0.9 * 2.625 = 1.3625
    table.update(0, 0, -1.0, 0, alpha=1.0, gamma=0.9)
    assert table.values[0, 0] == pytest.approx(1.3625)
    # untried actions are no estimate: s' = 1 with only action 0 tried bootstraps from 2, not 5;
    # a state never visited from 0
    table.visits[1] = [3, 0]
    assert table.update(2, 0, -1.0, 1, alpha=1.0, gamma=0.5) == pytest.approx(0.0)  # -1 + 0.5 * 2
    assert table.update(2, 1, -1.0, 3, alpha=1.0, gamma=0.5) == pytest.approx(-1.0)
    assert visit_rate(0, 0.8, 0.05) == 1.0 and visit_rate(3, 0.8, 0.05) == pytest.approx(4 ** -0.8)
    assert visit_rate(10**6, 0.8, 0.05) == 0.05


def test_greedy_uses_only_tried_actions_and_prefers_hold_on_ties():
    table = QTable.zeros(4, 4, hold_action=HOLD)
    table.values[0] = [-1.0, -0.5, -0.2, -3.0]
    table.visits[0] = 1
    assert table.greedy(0) == 2
    table.values[1] = [0.0, -0.5, -2.0, -3.0]  # action 0 untried: its 0 is optimism, not knowledge
    table.visits[1] = [0, 1, 1, 1]
    assert table.greedy(1) == HOLD
    assert table.optimistic(1) == 0
    table.values[2] = [-1.0, -1.0, -1.0, -1.0]
    table.visits[2] = 1
    assert table.greedy(2) == HOLD
    assert table.greedy(3) is None


def test_epsilon_greedy_explores_at_the_configured_rate():
    table = QTable.zeros(1, 4, hold_action=HOLD)
    table.values[0] = [-1.0, -1.0, -0.1, -1.0]
    rng = np.random.default_rng(7)
    picks = [table.epsilon_greedy(0, 0.2, rng) for _ in range(4000)]
    explored = np.mean([e for _, e in picks])
    assert explored == pytest.approx(0.2, abs=0.02)
    assert all(a == 2 for a, e in picks if not e)


def test_policy_takes_the_greedy_action_of_a_known_table():
    policy = QLearningPolicy(untrained=True)
    policy.reset(context())
    obs = observation()
    state = policy.mdp.observe(obs).state
    policy.table.values[state] = [-3.0, -2.0, -1.0, -4.0]
    policy.table.visits[state] = 5
    decision = policy.decide(obs)
    assert decision.rule == "greedy"
    assert decision.target == obs.target_replicas + 1  # up_1
    assert decision.q_values == {"down_1": -3.0, "hold": -2.0, "up_1": -1.0, "up_2": -4.0}
    assert decision.details["state"] == state and decision.details["action"] == "up_1"
    for name in COMPONENTS:
        assert f"{name}_band" in decision.details
    # an unvisited state: hold, and say why
    other = policy.decide(observation(time_s=660.0, utilization=0.95, queue_length=50, target_replicas=3))
    assert other.rule == "unseen_state" and other.target == 3


# -- state, reward, MDP ---------------------------------------------------

def test_state_bands_follow_the_documented_rule():
    encoder = StateEncoder.from_config(StateConfig())
    values = {"utilization": 0.5, "queue": 0.0, "trend": 1.2, "headroom": -5.0, "pending": 1.0, "recent_move": 1.0}
    # 0.5 <= 0.5 -> band 0; 0 <= 0 -> 0; 1.2 > 1.05 -> 2; -5 <= -2 -> 0; 1 > 0 -> 1; +1 -> 2
    assert encoder.bands(values) == (0, 0, 2, 0, 1, 2)
    assert encoder.sizes == (4, 3, 3, 5, 2, 3) and encoder.n_states == 1080
    for state in (0, 17, 1079):
        assert encoder.index(encoder.unindex(state)) == state


def test_bad_band_edges_and_actions_are_config_errors():
    with pytest.raises(ConfigError, match=r"policy.state.utilization = \[0.7, 0.5\]: edges must be strictly"):
        StateEncoder({**StateConfig().__dict__, "utilization": [0.7, 0.5]})
    with pytest.raises(ConfigError, match="policy.actions .* must include 0"):
        QLearningPolicy(untrained=True, actions=[-1, 1])
    with pytest.raises(ConfigError, match="policy.reward.sla = -1.0"):
        Reward({**RewardConfig().__dict__, "sla": -1.0})


def test_reward_terms():
    reward = Reward(RewardConfig(sla=2.0, cost=1.0, flap=0.5, cooldown=0.1))
    # 2% missed with a 1% budget is two budgets, weighted 2; 3 of 4 reference replicas
    assert reward.outcome(0.98, 3, 0.99, 4) == pytest.approx({"sla": 4.0, "cost": 0.75})
    assert reward.outcome(math.nan, 3, 0.99, 4)["sla"] == 0.0
    assert reward.stability(-1, +1) == {"flap": 0.5, "cooldown": 0.0}
    assert reward.stability(+1, +1) == {"flap": 0.0, "cooldown": 0.1}
    assert reward.stability(0, +1) == {"flap": 0.0, "cooldown": 0.0}
    assert reward.stability(-1, 0) == {"flap": 0.0, "cooldown": 0.0}


def test_mdp_rewards_the_previous_action_and_tracks_recent_moves():
    reward = Reward(RewardConfig(sla=1.0, cost=1.0, flap=0.5, cooldown=0.0))
    mdp = AutoscaleMDP(StateEncoder.from_config(StateConfig()), reward, [-1, 0, 1, 2], 180.0)
    mdp.reset(context())
    assert mdp.reference_replicas == mdp.needed(12.0)
    first = mdp.observe(observation(time_s=60.0))
    assert first.reward is None
    assert mdp.act(observation(time_s=60.0), 2) == 3  # up 1 from 2
    second = mdp.observe(observation(time_s=120.0, target_replicas=3, replicas_provisioning=1, sla_compliance=0.97))
    assert second.values["recent_move"] == 1 and second.values["pending"] == 1
    expected = 1.0 * 0.03 / 0.01 + 3 / mdp.reference_replicas  # no flap: nothing moved before
    assert second.reward == pytest.approx(-expected)
    assert mdp.act(observation(time_s=120.0, target_replicas=3), 0) == 2  # a reversal within the cooldown
    third = mdp.observe(observation(time_s=180.0))
    assert third.reward_terms["flap"] == 0.5
    assert mdp.act(observation(time_s=180.0, target_replicas=1), 0) == 1  # down at the minimum is a hold
    assert action_names([-2, 0, 1]) == ["down_2", "hold", "up_1"]


# -- model files ----------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    values = np.random.default_rng(1).uniform(-5, 0, (1080, 4))
    table = save_default_shaped(tmp_path / "m.npz", values)
    loaded, meta = QTable.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.values, table.values)
    np.testing.assert_array_equal(loaded.visits, table.visits)
    assert meta["shape"] == [1080, 4] and meta["format_version"] == 1
    policy = QLearningPolicy(model_path=str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(policy.table.values, values)


def test_truncated_model_is_a_config_error(tmp_path):
    path = tmp_path / "m.npz"
    save_default_shaped(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"m.npz: its SHA-256 differs"):
        QLearningPolicy(model_path=str(path))
    # the same truncation with metadata that vouches for it fails when read
    meta = json.loads(path.with_suffix(".json").read_text())
    import hashlib
    meta["npz_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"m.npz: cannot read the table"):
        QLearningPolicy(model_path=str(path))


def test_model_with_another_state_encoding_is_a_config_error(tmp_path):
    path = tmp_path / "m.npz"
    save_default_shaped(path)
    state = {**StateConfig().__dict__, "utilization": [0.6, 0.8]}
    with pytest.raises(ConfigError, match=r"m.json: state component 'utilization' has band edges \[0.5, 0.7, 0.85\]"):
        QLearningPolicy(model_path=str(path), state=state)
    with pytest.raises(ConfigError, match=r"trained with actions \[-1, 0, 1, 2\], policy.actions = \[-1, 0, 1\]"):
        QLearningPolicy(model_path=str(path), actions=[-1, 0, 1])
    with pytest.raises(ConfigError, match="model file .*missing.npz: not found"):
        QLearningPolicy(model_path=str(tmp_path / "missing.npz"))
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ConfigError, match="m.json: not valid JSON"):
        QLearningPolicy(model_path=str(path))


# -- in the simulator ---------------------------------------------------

@pytest.mark.parametrize("world", ["slm", "llm"])
def test_shipped_model_runs_with_policy_q_learning(make_cfg, world):
    cfg = make_cfg("policy=q_learning", f"world={world}", "scenario.duration_s=1800", "baseline.enabled=false")
    summary = run(cfg)
    assert summary["run/policy"] == "q_learning" and summary["run/world"] == f"{world}/q_learning"
    assert summary["requests/total"] > 0
    meta = QLearningPolicy(world=world).metadata
    assert meta["training"]["world"] == world and meta["training"]["scenario"] == "default"
    assert shipped_model(world).with_suffix(".json").is_file()
    with pytest.raises(ConfigError, match=r"no model shipped for world 'h100' \(shipped: \['llm', 'slm'\]\)"):
        QLearningPolicy(world="h100")


def test_window_scenario_is_the_same_rate_shifted(make_cfg):
    cfg = make_cfg("scenario.workload.noise_cv=0", "scenario.duration_s=86400")
    window = window_scenario(cfg.scenario, 34_200.0, 3600.0)
    full, part = build_workload(cfg.scenario, 0).profile, build_workload(window, 0).profile
    t = np.arange(0.0, 3600.0, 10.0)
    np.testing.assert_allclose(part.rate(t), full.rate(t + 34_200.0))
    # the 10:00 flash crowd starts 1800 s into the window and is clipped to it
    assert [(s.start_s, s.duration_s) for s in window.workload.spikes] == [(1800.0, 900.0)]


def test_autoscale_env_contract(make_cfg):
    cfg = make_cfg("policy=q_learning", "scenario.duration_s=900")
    env = AutoscaleEnv(cfg)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.int64 and obs.shape == (len(COMPONENTS),)
    assert all(0 <= b < n for b, n in zip(obs, env.observation_sizes))
    assert isinstance(info["state"], int) and info["time_s"] == 60.0
    rewards, steps, done = [], 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(2 if steps == 0 else HOLD)
        assert isinstance(reward, float) and reward <= 0
        assert not terminated
        rewards.append(reward)
        steps += 1
        done = truncated
    # decisions at 60 … 840 s; the last one (840 s) ends the episode
    assert steps == 13 and info["time_s"] == 840.0
    assert info["summary"]["requests/total"] > 0
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(HOLD)
    # the same seed and actions give the same rewards; close() ends a run midway
    env.reset(seed=3)
    again = [env.step(2 if i == 0 else HOLD)[1] for i in range(5)]
    assert again == rewards[:5]
    env.close()
    with pytest.raises(ValueError, match="action = 9"):
        env.reset(seed=3)
        env.step(9)
    env.close()


def test_training_on_a_tiny_budget_improves_the_greedy_policy(make_cfg, tmp_path):
    # Half an hour in which the load triples: holding the starting fleet (all an
    # untrained table does) overloads it, so there is something to learn. A
    # coarse encoding (72 states, not 1080) makes 12 short episodes enough.
    # Replicas of 16 sequences (7.5 req/s each at full load): two hold the start, not the end.
    ramp = ("scenario.duration_s=1800", "scenario.slo.target_compliance=0.99", "world.model.max_num_seqs=16",
            "scenario.workload.diurnal_amplitude=0", "scenario.workload.spikes=[]",
            "scenario.workload.trend_per_hour=4")
    coarse = ("policy.state.utilization=[0.8]", "policy.state.queue=[0]", "policy.state.headroom=[-1,0]")
    cfg = make_cfg("task=train", "policy=q_learning", *ramp, *coarse, "train.episodes=12", "train.episode_s=1800",
                   "train.jobs=1", "train.eval_every=100", "train.eval_windows=1",
                   f"train.model_dir={tmp_path}", "train.model_name=tiny")
    summary = run(cfg, tmp_path / "run")  # the run folder is replaced whole: the model goes beside it
    assert summary["train/transitions"] == 12 * (1800 // 60 - 2)
    assert summary["eval/final_reward"] > summary["eval/untrained_reward"]
    assert summary["eval/final_sla"] > summary["eval/untrained_sla"]
    curve = (tmp_path / "run" / "learning_curve.csv").read_text().splitlines()
    assert len(curve) == 1 + 12 + 2
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 0
    policy = QLearningPolicy(model_path=str(tmp_path / "tiny.npz"), state=cfg.policy.state)
    assert policy.metadata["training"]["episodes"] == 12
    assert policy.metadata["config_hash"] == summary["train/config_hash"]


def test_training_result_does_not_depend_on_worker_processes(make_cfg, tmp_path):
    common = ("task=train", "policy=q_learning", "scenario.duration_s=3600", "train.episodes=4",
              "train.episode_s=900", "train.episodes_per_round=2", "train.eval_every=100", "train.eval_windows=1",
              f"train.model_dir={tmp_path}")
    for jobs in (1, 2):
        run(make_cfg(*common, f"train.jobs={jobs}", f"train.model_name=j{jobs}"), tmp_path / f"out{jobs}")
    one, _ = QTable.load(tmp_path / "j1.npz")
    two, _ = QTable.load(tmp_path / "j2.npz")
    assert one.visits.sum() > 0
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.visits, two.visits)


def test_train_task_needs_the_q_learning_policy(make_cfg):
    with pytest.raises(ConfigError, match="policy = .*ThresholdPolicy.*add policy=q_learning"):
        run(make_cfg("task=train"))
    with pytest.raises(ConfigError, match="train.episode_s = 999999.0"):
        run(make_cfg("task=train", "policy=q_learning", "train.episode_s=999999"))
