"""The Q-learning agent: Bellman update, greedy choice, model files, the MDP,
the predictive fallback, scale-free states, AutoscaleEnv and short training runs."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from elastic_des.analysis.forensics import SHIELDS
from elastic_des.agent.env import AutoscaleEnv
from elastic_des.agent.actions import parse_actions
from elastic_des.agent.mdp import AutoscaleMDP
from elastic_des.agent.qtable import QTable, visit_rate
from elastic_des.agent.reward import Reward, RewardConfig
from elastic_des.agent.state import COMPONENTS, StateConfig, StateEncoder
from elastic_des.agent.distribution import draw_synthetic
from elastic_des.agent.training import dual_ascent, window_scenario
from elastic_des.app import run
from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import PolicyContext
from elastic_des.agent.policy import QLearningPolicy, shipped_model
from elastic_des.engine.workload import build_workload

HOLD = 0  # index of "hold" in the default actions [hold, -1, x1.0, x1.2, x1.5, x2.0]
DEFAULT_ACTIONS = ["hold", "-1", "x1.0", "x1.2", "x1.5", "x2.0"]


def context(**overrides) -> PolicyContext:
    values = dict(fleet_field="world.fleet", min_replicas=1, max_replicas=10, slots_per_replica=16,
                  mean_service_s=2.675, cold_start_s=90.0, tick_s=60.0, slo_latency_s=30.0, slo_target=0.99,
                  peak_rate_rps=12.0, mean_rate_rps=8.0, initial_rate_rps=8.0, rng=np.random.default_rng(0))
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
        table.cost[:] = values
        table.visits[:] = 1
    table.save(path, {"problem": policy.mdp.describe()})
    return table


# -- the table ----------------------------------------------------------

def test_bellman_update_matches_hand_computation():
    table = QTable.zeros(4, 2, hold_action=0, multiplier=0.0)
    table.cost[1] = [2.0, 5.0]
    table.visits[1] = [3, 1]
    # target = -cost + gamma * Q(s', a*) = -1 + 0.9 * 5 = 3.5; Q <- 0 + 0.5 * (3.5 - 0) = 1.75
    assert table.update(0, 1, 1.0, 0.0, 1, alpha=0.5, gamma=0.9) == pytest.approx(3.5)
    assert table.cost[0, 1] == pytest.approx(1.75)
    # again: TD error 3.5 - 1.75 = 1.75, Q <- 1.75 + 0.5 * 1.75 = 2.625
    assert table.update(0, 1, 1.0, 0.0, 1, alpha=0.5, gamma=0.9) == pytest.approx(1.75)
    assert table.cost[0, 1] == pytest.approx(2.625)
    assert table.visits.tolist() == [[0, 2], [3, 1], [0, 0], [0, 0]]
    # untried actions are no estimate: s' = 1 with only action 0 tried bootstraps from 2, not 5;
    # a state never visited from 0
    table.visits[1] = [3, 0]
    assert table.update(2, 0, 1.0, 0.0, 1, alpha=1.0, gamma=0.5) == pytest.approx(0.0)  # -1 + 0.5 * 2
    assert table.update(2, 1, 1.0, 0.0, 3, alpha=1.0, gamma=0.5) == pytest.approx(-1.0)
    assert visit_rate(0, 0.8, 0.05) == 1.0 and visit_rate(3, 0.8, 0.05) == pytest.approx(4 ** -0.8)
    assert visit_rate(10**6, 0.8, 0.05) == 0.05


def test_two_part_table_equals_one_table_at_the_multiplier():
    """Linearity of the return: learning cost and SLA apart and combining them
    with λ gives what one table learns for the reward -(cost + λ sla)."""
    rng = np.random.default_rng(4)
    split = QTable.zeros(5, 3, hold_action=0, multiplier=0.7)
    single = QTable.zeros(5, 3, hold_action=0, multiplier=0.0)
    for _ in range(400):
        s, a, s2 = int(rng.integers(5)), int(rng.integers(3)), int(rng.integers(5))
        cost, sla = float(rng.uniform(0, 2)), float(rng.exponential(1.0))
        alpha = float(rng.uniform(0.1, 1.0))
        split.update(s, a, cost, sla, s2, alpha, 0.8)
        single.update(s, a, cost + 0.7 * sla, 0.0, s2, alpha, 0.8)
    for s in range(5):
        np.testing.assert_allclose(split.values(s), single.values(s), atol=1e-9)


def test_dual_ascent_raises_the_multiplier_while_the_sla_is_missed():
    assert dual_ascent(1.0, [4.0, 3.0], 0.2, 10.0, 0.5) == pytest.approx(math.exp(0.2))  # median 3.5: +1, clipped
    assert dual_ascent(1.0, [0.0, 0.0], 0.2, 10.0, 0.75) == pytest.approx(math.exp(-0.2))  # no misses: down
    assert dual_ascent(1.0, [1.0], 0.2, 10.0, 0.75) == 1.0  # exactly the budget: at the constraint
    assert dual_ascent(2.0, [1.5], 0.0, 10.0, 0.75) == 2.0
    # one hard episode in four is tolerated; two are more than a quarter: up (by the second's 1 budget too many)
    assert dual_ascent(1.0, [0.0, 0.0, 0.0, 7.0], 0.2, 10.0, 0.75) == pytest.approx(math.exp(-0.2))
    assert dual_ascent(1.0, [0.0, 0.0, 2.0, 7.0], 0.2, 10.0, 0.75) == pytest.approx(math.exp(0.2))
    assert dual_ascent(1.0, [0.0, 0.0, 2.0, 7.0], 0.2, 10.0, 0.5) == pytest.approx(math.exp(-0.2))  # the median: met
    # an infeasible outlier is one vote: its size does not matter
    assert dual_ascent(1.0, [0.0, 0.0, 1.5, 500.0], 0.2, 10.0, 0.75) == dual_ascent(1.0, [0.0, 0.0, 1.5, 7.0], 0.2, 10.0, 0.75)
    assert dual_ascent(9.9, [5.0], 0.2, 10.0, 0.75) == 10.0  # the ceiling


def test_epsilon_greedy_explores_at_the_configured_rate():
    table = QTable.zeros(1, 4, hold_action=1)
    table.cost[0] = [-1.0, -1.0, -0.1, -1.0]
    rng = np.random.default_rng(7)
    picks = [table.epsilon_greedy(0, 0.2, rng) for _ in range(4000)]
    explored = np.mean([e for _, e in picks])
    assert explored == pytest.approx(0.2, abs=0.02)
    assert all(a == 2 for a, e in picks if not e)


def policy_with_values(values, visits=5, hold_tolerance=0.0):
    """An untrained policy whose table holds ``values`` (hold first), each
    tried ``visits`` times, in the state of :func:`observation`; the policy,
    that observation and its step."""
    policy = QLearningPolicy(untrained=True, hold_tolerance=hold_tolerance)
    policy.reset(context())
    obs = observation()
    step = policy.mdp.observe(obs)
    policy.table.cost[step.state] = values
    policy.table.visits[step.state] = visits
    return policy, obs, step


def test_policy_takes_the_greedy_action_of_a_known_table():
    policy, obs, step = policy_with_values([-3.0, -2.0, -4.0, -1.0, -5.0, -6.0])
    decision = policy.decide(obs)
    assert decision.rule == "greedy"
    assert decision.target == math.ceil(1.2 * step.model_size)  # size_x1.2
    assert decision.q_values["size_x1.2"] == -1.0 and decision.q_values["hold"] == -3.0
    assert decision.details["state"] == step.state and decision.details["action"] == "size_x1.2"
    for name in COMPONENTS:
        assert f"{name}_band" in decision.details


def test_a_near_tie_with_holding_holds_and_the_record_names_the_action_passed_over():
    # x2.0 beats hold by 0.006 on values of about 8: 0.075 % apart, a near-tie.
    others = [-8.0621, -8.066, -8.045, -8.119, -8.0404]
    policy, obs, _ = policy_with_values([-8.0464, *others], visits=30, hold_tolerance=1e-3)
    decision = policy.decide(obs)
    assert decision.rule == "greedy" and decision.details["action"] == "hold"
    assert decision.details["near_tie_hold"] == "size_x2"
    assert decision.target == obs.target_replicas
    # Off (the tolerance 0), or holding clearly worse, or never tried: the best action.
    for tolerance, hold_value, hold_visits in ((0.0, -8.0464, 30), (1e-3, -8.2, 30), (1e-3, -8.0464, 0)):
        other, obs, step = policy_with_values([hold_value, *others], visits=30, hold_tolerance=tolerance)
        other.table.visits[step.state, HOLD] = hold_visits
        chosen = other.decide(obs)
        assert chosen.details["action"] == "size_x2" and "near_tie_hold" not in chosen.details


def test_the_hold_tolerance_leaves_training_alone():
    table = QTable.zeros(4, 3, hold_action=0)
    table.cost[1] = [-1.0005, -1.0, -3.0]
    table.visits[1] = 1
    assert table.greedy(1) == 1 and table.optimistic(1) == 1
    assert table.near_tie_hold(1, table.greedy(1), 1e-3) == 0


def surge(time_s: float) -> Observation:
    return observation(time_s=time_s, utilization=1.0, arrival_rate_rps=30.0, queue_length=200,
                       forecast_rps=np.full(15, 30.0), target_replicas=2)


def test_an_unlearned_state_falls_back_to_the_predictive_rule_and_says_so():
    """Not "hold": a surge in a state the table never saw is met by the
    predictive policy's size, and the decision record says why."""
    from elastic_des.policies.predictive import PredictivePolicy

    policy = QLearningPolicy(untrained=True)
    policy.reset(context())
    predictive = PredictivePolicy(headroom=0.1)
    predictive.reset(context())
    expected = predictive.decide(surge(660.0))
    decision = policy.decide(surge(660.0))
    assert decision.rule == "fallback_predictive"
    assert decision.target == expected.target > 2  # scales out, does not hold
    assert decision.details["fallback"] == {"policy": "predictive", "rule": expected.rule,
                                            "target": expected.target, "reason": "unseen_state"}
    assert decision.details["action"] == "fallback"
    # a state with fewer than min_visits updates is not trusted either
    state = policy.mdp.observe(surge(700.0)).state
    policy.table.visits[state, HOLD] = 2
    again = policy.decide(surge(720.0))
    assert again.details["state"] == state
    assert again.rule == "fallback_predictive" and again.details["fallback"]["reason"] == "visits 2 < min_visits 3"


def test_the_fallback_is_recorded_in_a_run(make_cfg, tmp_path):
    cfg = make_cfg("policy=q_learning", "policy.untrained=true", "scenario.duration_s=1200", "baseline.enabled=false",
                   "output.requests=false")
    run(cfg, tmp_path)
    world_dir = next(p.parent for p in tmp_path.rglob("decisions.jsonl"))
    records = [json.loads(line) for line in (world_dir / "decisions.jsonl").read_text().splitlines()]
    assert records and all(r["rule"] == "fallback_predictive" for r in records)
    assert all(r["details"]["fallback"]["reason"] == "unseen_state" for r in records)


# -- state, reward, MDP ---------------------------------------------------

def test_state_bands_follow_the_documented_rule():
    encoder = StateEncoder.from_config(StateConfig())
    values = {"load": 0.5, "queue": 0.0, "queue_growth": 0.5, "trend": 1.2, "pending": 1.0, "burst": 1.1,
              "size": 5.0, "recent_move": 1.0}
    # 0.5 <= 0.5 -> 0; 0 <= 0 -> 0; 0.5 > 0 -> 1; 1.2 > 1.05 -> 2; 1 > 0.5 -> 2; 1.1 <= 2 -> 0; 5 > 1.3 -> 3; +1 -> 2
    assert encoder.bands(values) == (0, 0, 1, 2, 2, 0, 3, 2)
    assert encoder.sizes == (4, 3, 2, 3, 3, 2, 4, 3) and encoder.n_states == 5184
    for state in (0, 17, 5183):
        assert encoder.index(encoder.unindex(state)) == state


def scaled(situation: dict, k: float, target: int) -> Observation:
    """The observation of a fleet ``k`` times larger facing ``k`` times the traffic."""
    counts = ("queue_length", "in_flight", "replicas_ready", "replicas_provisioning")
    return observation(**{**situation, **{c: int(round(situation[c] * k)) for c in counts},
                          "arrival_rate_rps": situation["arrival_rate_rps"] * k,
                          "forecast_rps": situation["forecast_rps"] * k, "target_replicas": target})


def test_state_means_the_same_at_1_and_at_100_requests_per_second():
    """Scale invariance: a scaled copy of a situation (traffic, fleet, queue and
    pending capacity all 100 times larger, the target at the same multiple of
    the model size) lands in the same state, component by component."""
    situations = [
        dict(arrival_rate_rps=1.0, queue_length=0, in_flight=3, replicas_ready=1, replicas_provisioning=0,
             forecast_rps=np.linspace(1.0, 1.3, 15), size=1.0),
        dict(arrival_rate_rps=2.4, queue_length=6, in_flight=8, replicas_ready=2, replicas_provisioning=2,
             forecast_rps=np.linspace(2.4, 2.0, 15), size=1.5),
        dict(arrival_rate_rps=0.8, queue_length=1, in_flight=2, replicas_ready=2, replicas_provisioning=0,
             forecast_rps=np.full(15, 0.8), size=0.5),
    ]
    for situation in situations:
        size = situation.pop("size")
        states = []
        for k in (1.0, 100.0):
            mdp = AutoscaleMDP(StateEncoder.from_config(StateConfig()), Reward(RewardConfig()), DEFAULT_ACTIONS, 300.0)
            mdp.reset(context(max_replicas=1000))
            model_size = mdp.context.replicas_for(max(situation["forecast_rps"][:mdp.lead_ticks].max(),
                                                      situation["arrival_rate_rps"]) * k)
            step = mdp.observe(scaled(situation, k, round(size * model_size)))
            assert step.model_size == model_size
            states.append(step)
        one, hundred = states
        assert one.bands == hundred.bands and one.state == hundred.state, situation
        for name in ("load", "queue", "trend", "pending", "burst"):
            assert one.values[name] == pytest.approx(hundred.values[name], rel=1e-9), name
        assert hundred.model_size >= 10 * one.model_size  # the same state at a very different fleet size


def test_burstiness_band_is_poisson_at_every_rate_and_bursty_when_the_rate_jumps(make_cfg):
    """The per-second dispersion the controller measures is ~1 for Poisson
    arrivals at 1 and at 100 req/s, and above the band edge for a rate that
    jumps every 5 s (a doubly-stochastic Poisson process)."""
    from elastic_des.engine.simulation import simulate_world
    from elastic_des.factory import build

    def dispersions(*overrides):
        cfg = make_cfg("policy=predictive", "scenario.duration_s=1200", "scenario.workload.spikes=[]",
                       "scenario.workload.diurnal_amplitude=0", *overrides)
        workload = build_workload(cfg.scenario, 0)
        result = simulate_world(cfg.world, cfg.scenario, cfg.controller, build(cfg.policy, "policy"),
                                build(cfg.forecaster, "forecaster"), workload, 0)
        return np.array([d["observation"]["arrival_dispersion"] for d in result.decisions])

    edge = StateConfig().burst[0]
    for rate in (1, 100):
        poisson = dispersions(f"scenario.workload.base_rate_rps={rate}", "scenario.workload.noise_cv=0")
        assert np.mean(poisson) == pytest.approx(1.0, abs=0.15)
        assert np.mean(poisson <= edge) >= 0.95
    bursty = dispersions("scenario.workload.base_rate_rps=100", "scenario.workload.noise_cv=0.5",
                         "scenario.workload.noise_window_s=5")
    assert np.mean(bursty > edge) >= 0.95


def test_bad_band_edges_and_actions_are_config_errors():
    with pytest.raises(ConfigError, match=r"policy.state.load = \[0.7, 0.5\]: edges must be strictly"):
        StateEncoder({**StateConfig().__dict__, "load": [0.7, 0.5]})
    with pytest.raises(ConfigError, match="policy.actions .* must include 'hold'"):
        QLearningPolicy(untrained=True, actions=["-1", "+1"])
    with pytest.raises(ConfigError, match=r"policy.actions\[1\] = 'x-2'"):
        QLearningPolicy(untrained=True, actions=["hold", "x-2"])
    with pytest.raises(ConfigError, match="must not repeat"):
        parse_actions(["hold", "+1", "+1"])
    with pytest.raises(ConfigError, match="policy.reward.sla = -1.0"):
        Reward({**RewardConfig().__dict__, "sla": -1.0})
    with pytest.raises(ConfigError, match="policy.min_visits = 0"):
        QLearningPolicy(untrained=True, min_visits=0)


def test_actions_meet_a_surge_in_one_step():
    actions = parse_actions(DEFAULT_ACTIONS + ["+4"])
    assert [a.name for a in actions] == ["hold", "down_1", "size_x1", "size_x1.2", "size_x1.5", "size_x2", "up_4"]
    # at 40 replicas needed, x2 orders 80 at once; +4 adds four; x1.2 of 5 is 6 (not 7 by rounding)
    assert actions[5].target(10, 40) == 80 and actions[6].target(10, 40) == 14
    assert actions[3].target(10, 5) == 6 and actions[1].target(10, 40) == 9 and actions[0].target(10, 40) == 10


def test_reward_terms():
    reward = Reward(RewardConfig(sla=2.0, cost=1.0, flap=0.5, cooldown=0.1))
    # 2% missed with a 1% budget is two budgets (unweighted: the multiplier combines); 3 of 4 reference replicas
    assert reward.outcome(0.98, 3, 0.99, 4) == pytest.approx({"sla": 2.0, "cost": 0.75})
    assert reward.outcome(math.nan, 3, 0.99, 4)["sla"] == 0.0
    assert reward.stability(-1, +1) == {"flap": 0.5, "cooldown": 0.0}
    assert reward.stability(+1, +1) == {"flap": 0.0, "cooldown": 0.1}
    assert reward.stability(0, +1) == {"flap": 0.0, "cooldown": 0.0}
    assert reward.stability(-1, 0) == {"flap": 0.0, "cooldown": 0.0}


def test_mdp_rewards_the_previous_action_and_tracks_recent_moves():
    reward = Reward(RewardConfig(sla=1.0, cost=1.0, flap=0.5, cooldown=0.0))
    mdp = AutoscaleMDP(StateEncoder.from_config(StateConfig()), reward, ["hold", "-1", "+1"], 180.0)
    mdp.reset(context())
    assert mdp.reference_replicas == mdp.context.replicas_for(12.0)

    def low(**values):  # 1 req/s: one replica is the model size, so the floor is not in the way
        return observation(arrival_rate_rps=1.0, forecast_rps=np.full(15, 1.0), **values)

    first = mdp.observe(low(time_s=60.0))
    assert first.reward is None and first.model_size == 1
    assert mdp.act(low(time_s=60.0), first, 2) == 3  # up 1 from 2
    second = mdp.observe(low(time_s=120.0, target_replicas=3, replicas_provisioning=1, sla_compliance=0.97))
    assert second.values["recent_move"] == 1 and second.values["pending"] == 0.5
    # no flap: nothing moved before; cost part and SLA part (3 budgets of 1%)
    assert second.reward == pytest.approx((3 / mdp.reference_replicas, 3.0))
    # scaling in within the cooldown of a scale-out is a reversal the agent may not make: a hold
    assert mdp.act(low(time_s=120.0, target_replicas=3), second, 1) == 3
    assert mdp.details(second)["shield"] == "cooldown"
    third = mdp.observe(low(time_s=180.0, target_replicas=3))
    assert third.reward_terms["flap"] == 0.0 and third.values["recent_move"] == 1
    # after the cooldown it may; scaling out again soon after is allowed, and costs the flap term
    assert mdp.act(low(time_s=300.0, target_replicas=3), mdp.observe(low(time_s=300.0, target_replicas=3)), 1) == 2
    fourth = mdp.observe(low(time_s=360.0, target_replicas=2))
    assert mdp.act(low(time_s=360.0, target_replicas=2), fourth, 2) == 3
    assert mdp.observe(low(time_s=420.0, target_replicas=3)).reward_terms["flap"] == 0.5
    fifth = mdp.observe(low(time_s=700.0, target_replicas=1))
    assert mdp.act(low(time_s=700.0, target_replicas=1), fifth, 1) == 1  # down at the minimum is a hold
    assert mdp.details(fifth)["shield"] is None


def test_no_action_goes_below_the_model_size():
    mdp = AutoscaleMDP(StateEncoder.from_config(StateConfig()), Reward(RewardConfig()), ["hold", "-1", "x1.5"], 300.0)
    mdp.reset(context())
    step = mdp.observe(observation(time_s=600.0, target_replicas=1, arrival_rate_rps=8.0))
    assert step.model_size == 2
    # hold and -1 would leave one replica where Erlang C asks for two: the floor lifts them to two
    assert mdp.target(observation(target_replicas=1), step, 0) == 2 and mdp.shield == "floor"
    assert mdp.target(observation(target_replicas=1), step, 1) == 2
    assert mdp.target(observation(target_replicas=1), step, 2) == 3 and mdp.shield is None



def shielded_mdp(**shields) -> AutoscaleMDP:
    # cooldown_s 60: the model size forgets a tick after the next, so only the burst floor remembers
    mdp = AutoscaleMDP(StateEncoder.from_config(StateConfig()), Reward(RewardConfig()), ["hold", "-1", "x1.0"],
                       60.0, **shields)
    mdp.reset(context())
    return mdp


def quiet(time_s: float, target: int) -> Observation:
    return observation(time_s=time_s, arrival_rate_rps=1.0, forecast_rps=np.full(15, 1.0), arrival_dispersion=1.0,
                       target_replicas=target, replicas_ready=target)


def test_the_burst_floor_keeps_a_bursty_ticks_size_through_the_quiet_minutes_after_it():
    """A burst shorter than a cold start: the ticks after it are quiet, the
    model size falls to one replica, and only the burst floor keeps the
    fleet that the burst needed, for burst_hold_s, then lets it go."""
    bursty = observation(time_s=600.0, arrival_rate_rps=12.0, forecast_rps=np.full(15, 12.0),
                         arrival_dispersion=8.0, queue_length=40, sla_compliance=0.95)
    with_floor, without = shielded_mdp(burst_hold_s=600.0, burst_headroom=0.1), shielded_mdp()
    burst_size = with_floor.observe(bursty).floor
    absorbed = shielded_mdp(burst_hold_s=600.0)  # no request waits, the SLO met: nothing to remember
    absorbed.observe(replace(bursty, queue_length=0, sla_compliance=1.0))
    assert absorbed.observe(quiet(720.0, burst_size)).floor == 1
    assert burst_size >= without.observe(bursty).model_size > 1  # the burst's own size, at least
    after = with_floor.observe(quiet(720.0, burst_size))
    assert after.model_size == 1 and after.floor == burst_size and after.floor_rule == "burst_floor"
    assert with_floor.target(quiet(720.0, burst_size), after, 1) == burst_size  # -1 lifted back
    assert with_floor.details(after)["shield"] == "burst_floor" and with_floor.details(after)["floor"] == burst_size
    plain = without.observe(quiet(720.0, burst_size))
    assert without.target(quiet(720.0, burst_size), plain, 1) == burst_size - 1 and without.shield is None
    later = with_floor.observe(quiet(1200.0, burst_size))  # 600 s after the burst: released
    assert later.floor == 1 and with_floor.target(quiet(1200.0, burst_size), later, 1) == burst_size - 1


def test_the_miss_floor_adds_a_replica_after_a_miss_with_requests_waiting_and_holds_it():
    """A miss the model size does not see (a burst of long prompts stalls one
    batching replica at a low mean rate): the fleet that served it plus one,
    for miss_hold_s; a miss with nothing waiting asks for nothing, nor one
    the sizing already answers with replicas on their way."""
    stalled = observation(time_s=600.0, arrival_rate_rps=1.5, forecast_rps=np.full(15, 1.5), arrival_dispersion=4.0,
                          sla_compliance=0.72, queue_length=0, queue_wait_mean_s=7.5,
                          target_replicas=1, replicas_ready=1)
    mdp, plain = shielded_mdp(miss_hold_s=600.0), shielded_mdp()
    step = mdp.observe(stalled)
    assert plain.observe(stalled).model_size == step.model_size == 1  # queueing theory sees no need
    assert (step.floor, step.floor_rule) == (2, "miss_floor")
    assert mdp.target(stalled, step, 0) == 2 and mdp.details(step)["shield"] == "miss_floor"  # hold lifted to 2
    after = mdp.observe(quiet(900.0, 2))
    assert (after.floor, after.floor_rule) == (2, "miss_floor") and mdp.target(quiet(900.0, 2), after, 1) == 2
    assert mdp.observe(quiet(1260.0, 2)).floor == 1  # 660 s after the miss: released
    # missed, but nobody waited: service alone longer than the SLO, more replicas would not help
    unfixable = shielded_mdp(miss_hold_s=600.0)
    assert unfixable.observe(replace(stalled, queue_wait_mean_s=0.0)).floor == 1
    met = shielded_mdp(miss_hold_s=600.0)  # waited, but the SLO was met
    assert met.observe(replace(stalled, sla_compliance=0.995)).floor == 1
    # a surge the sizing sees, two replicas already starting: nothing to hold after it
    ordered = shielded_mdp(miss_hold_s=600.0)
    surge = ordered.observe(replace(stalled, queue_length=30, replicas_provisioning=2, target_replicas=3))
    assert surge.floor_rule == "floor" and ordered.observe(quiet(900.0, 3)).floor == 1
    # the backlog a scale-out's cold start left, drained by the replica now ready: nothing to hold either
    drained = shielded_mdp(miss_hold_s=600.0)
    drained.commit(observation(time_s=560.0, target_replicas=1), 2)  # scaled out 40 s ago
    assert drained.observe(replace(stalled, replicas_ready=2, target_replicas=2)).floor_rule == "floor"
    assert shielded_mdp(miss_hold_s=600.0).observe(replace(stalled, replicas_ready=2, target_replicas=2)).floor == 3
    assert "missed the SLO" in SHIELDS["miss_floor"]


def test_the_scale_in_window_waits_for_a_dip_that_lasts_the_window():
    """A scale-in goes no lower than the highest target proposed in the
    window: a one-tick dip is held, a dip that lasts the window is followed."""
    mdp, plain = shielded_mdp(scale_in_window_s=600.0), shielded_mdp()
    for m in (mdp, plain):
        assert m.target(quiet(0.0, 4), m.observe(quiet(0.0, 4)), 0) == 4  # hold at 4: a proposal of 4
    step = mdp.observe(quiet(120.0, 4))
    assert mdp.target(quiet(120.0, 4), step, 1) == 4 and mdp.shield == "scale_in_window"  # -1 held
    assert mdp.details(step)["shield"] == "scale_in_window"
    assert plain.target(quiet(120.0, 4), plain.observe(quiet(120.0, 4)), 1) == 3 and plain.shield is None
    # 700 s: the proposal of 4 at t = 0 has left the window; the dip to 3 has lasted it
    assert mdp.target(quiet(700.0, 4), mdp.observe(quiet(700.0, 4)), 1) == 3 and mdp.shield is None
    # scaling out is never held
    assert mdp.target(quiet(760.0, 3), mdp.observe(quiet(760.0, 3)), 0) == 3
    assert "scale-in window" in SHIELDS["scale_in_window"]  # the decision sentence names it


def test_the_fallback_is_shielded_too_and_a_run_records_the_burst_floor(make_cfg, tmp_path):
    policy = QLearningPolicy(untrained=True, burst_hold_s=900.0)
    policy.reset(context())
    policy.decide(observation(time_s=600.0, arrival_rate_rps=12.0, forecast_rps=np.full(15, 12.0),
                              arrival_dispersion=8.0, queue_length=40))
    decision = policy.decide(quiet(1000.0, 1))  # past the model size's 300 s, within the 900 s hold
    assert decision.rule == "fallback_predictive" and decision.details["shield"] == "burst_floor"
    assert decision.target == decision.details["floor"] > decision.details["fallback"]["target"]
    cfg = make_cfg("scenario=bursty_onoff", "policy=q_learning", "policy.burst_hold_s=900", "scenario.duration_s=3600",
                   "scenario.workload.spikes=[]", "baseline.enabled=false", "output.requests=false")
    run(cfg, tmp_path)
    records = [json.loads(line) for line in next(tmp_path.rglob("decisions.jsonl")).read_text().splitlines()]
    lifted = [r for r in records if r["details"]["shield"] == "burst_floor"]
    assert lifted and all(r["replicas_after"] >= r["details"]["floor"] > r["details"]["model_size"] for r in lifted)


def test_the_fallback_does_not_scale_in_within_the_cooldown_of_a_scale_out():
    """The shield covers the fallback too: an unseen state a tick after a
    scale-out must not undo it (a reversal within the cooldown, a flap)."""
    policy = QLearningPolicy(untrained=True)  # every state unseen: the fallback decides
    policy.reset(context())
    policy.mdp.commit(observation(time_s=600.0, target_replicas=2), 4)  # the table scaled out to 4
    calm = observation(time_s=660.0, arrival_rate_rps=1.0, forecast_rps=np.full(15, 1.0),
                       target_replicas=4, replicas_ready=2, replicas_provisioning=2)
    held = policy.decide(calm)
    assert held.rule == "fallback_predictive" and held.details["fallback"]["target"] < 4  # it alone scales in
    assert held.target == 4 and held.details["shield"] == "cooldown"


def test_bad_shield_settings_are_config_errors():
    with pytest.raises(ConfigError, match=r"policy.burst_hold_s = -1.0: must be finite and >= 0"):
        QLearningPolicy(untrained=True, burst_hold_s=-1.0)
    with pytest.raises(ConfigError, match=r"policy.burst_headroom = nan"):
        QLearningPolicy(untrained=True, burst_hold_s=600.0, burst_headroom=math.nan)
    with pytest.raises(ConfigError, match=r"policy.scale_in_window_s = -5.0: must be finite and >= 0"):
        QLearningPolicy(untrained=True, scale_in_window_s=-5.0)
    with pytest.raises(ConfigError, match=r"policy.scale_in_window_s = inf"):
        QLearningPolicy(untrained=True, scale_in_window_s=math.inf)
    with pytest.raises(ConfigError, match=r"policy.miss_hold_s = -60.0: must be finite and >= 0"):
        QLearningPolicy(untrained=True, miss_hold_s=-60.0)
    with pytest.raises(ConfigError, match=r"policy.miss_hold_s = nan"):
        QLearningPolicy(untrained=True, miss_hold_s=math.nan)
    for tolerance in (-0.001, math.nan, 1.0):
        with pytest.raises(ConfigError, match=rf"policy.hold_tolerance = {tolerance}: must be in \[0, 1\)"):
            QLearningPolicy(untrained=True, hold_tolerance=tolerance)

# -- model files ----------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    values = np.random.default_rng(1).uniform(-5, 0, (5184, 6))
    table = save_default_shaped(tmp_path / "m.npz", values)
    loaded, meta = QTable.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.cost, table.cost)
    np.testing.assert_array_equal(loaded.sla, table.sla)
    np.testing.assert_array_equal(loaded.visits, table.visits)
    assert meta["shape"] == [5184, 6] and meta["format_version"] == 2
    assert loaded.multiplier == table.multiplier == RewardConfig().sla
    policy = QLearningPolicy(model_path=str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(policy.table.cost, values)


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
    state = {**StateConfig().__dict__, "load": [0.6, 0.8]}
    with pytest.raises(ConfigError, match=r"m.json: state component 'load' has band edges \[0.5, 0.8, 1.0\], "
                                          r"policy.state.load = \[0.6, 0.8\]"):
        QLearningPolicy(model_path=str(path), state=state)
    with pytest.raises(ConfigError, match=r"trained with actions \['hold', '-1', 'x1.0', 'x1.2', 'x1.5', 'x2.0'\], "
                                          r"policy.actions = \['hold', '\+1'\]"):
        QLearningPolicy(model_path=str(path), actions=["hold", "+1"])
    # a model from another state encoding (other components) names them
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["problem"]["state"]["components"] = [c for c in meta["problem"]["state"]["components"] if c["name"] != "burst"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"m.json: has no state component 'burst'"):
        QLearningPolicy(model_path=str(path))
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
    assert meta["training"]["world"] == world and meta["training"]["distribution"]["validation"]
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


def test_training_draws_bursty_renewal_arrivals_at_the_configured_share(make_cfg):
    cfg = make_cfg("task=train", "policy=q_learning")
    d, rng = cfg.train.distribution, np.random.default_rng(3)
    draws = [draw_synthetic(d, cfg.scenario, 3600.0, rng, f"s{i}")["workload"]["arrivals"] for i in range(400)]
    renewal = [a for a in draws if a["process"] == "renewal"]
    assert {a["process"] for a in draws} == {"renewal", "poisson"}
    # the share is a binomial proportion: 0.4 ± 4.5 standard errors over 400 draws
    assert abs(len(renewal) / 400 - d.renewal_share) < 4.5 * math.sqrt(0.24 / 400)
    cvs = [a["cv"] for a in renewal]
    assert all(a["family"] == "gamma" for a in renewal) and d.arrival_cv[0] <= min(cvs) <= max(cvs) <= d.arrival_cv[1]


def test_autoscale_env_contract(make_cfg):
    cfg = make_cfg("policy=q_learning", "scenario.duration_s=900")
    env = AutoscaleEnv(cfg)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.int64 and obs.shape == (len(COMPONENTS),)
    assert all(0 <= b < n for b, n in zip(obs, env.observation_sizes))
    assert isinstance(info["state"], int) and info["time_s"] == 60.0
    rewards, steps, done = [], 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(5 if steps == 0 else HOLD)
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
    again = [env.step(5 if i == 0 else HOLD)[1] for i in range(5)]
    assert again == rewards[:5]
    env.close()
    with pytest.raises(ValueError, match="action = 9"):
        env.reset(seed=3)
        env.step(9)
    env.close()


TINY = ("task=train", "policy=q_learning", "train.episodes=4", "train.episode_s=1200", "train.episodes_per_round=2",
        "train.eval_every=100", "train.eval_windows=1", "train.distribution.validation=[azure_conv]",
        "train.distribution.validation_seeds=1", "train.distribution.rate_rps=[0.5,20]")


def test_training_writes_coverage_and_the_validation_table(make_cfg, tmp_path):
    cfg = make_cfg(*TINY, "train.jobs=1", f"train.model_dir={tmp_path}", "train.model_name=tiny")
    summary = run(cfg, tmp_path / "run")  # the run folder is replaced whole: the model goes beside it
    assert summary["train/transitions"] == 4 * (1200 // 60 - 2)
    visited = summary["train/states_visited"]
    assert 0 < visited < summary["train/states"] == 5184
    assert summary["train/state_coverage"] == pytest.approx(visited / 5184)
    assert summary["train/cpu_s"] > 0 and summary["train/lagrange_multiplier"] > 0
    coverage = (tmp_path / "run" / "state_coverage.csv").read_text().splitlines()
    assert len(coverage) == 1 + visited and coverage[0].startswith("state,load,queue,")
    validation = (tmp_path / "run" / "validation.csv").read_text().splitlines()
    assert len(validation) == 1 + 2 and "azure_conv" in validation[1]  # untrained and trained
    assert 0 <= summary["validation/azure_conv/sla_compliance"] <= 1
    curve = (tmp_path / "run" / "learning_curve.csv").read_text()
    assert "synthetic" in curve and "validation" in curve
    policy = QLearningPolicy(model_path=str(tmp_path / "tiny.npz"))
    assert policy.metadata["training"]["episodes"] == 4
    assert policy.metadata["config_hash"] == summary["train/config_hash"]
    assert policy.table.multiplier == summary["train/lagrange_multiplier"]


def test_training_is_deterministic_for_a_seed_whatever_the_worker_processes(make_cfg, tmp_path):
    digests = []
    for name, jobs, seed in (("a", 1, 3), ("b", 2, 3), ("c", 1, 4)):
        run(make_cfg(*TINY, f"seed={seed}", f"train.jobs={jobs}", f"train.model_dir={tmp_path}",
                     f"train.model_name={name}"), tmp_path / name)
        digests.append(json.loads((tmp_path / f"{name}.json").read_text())["npz_sha256"])
    assert digests[0] == digests[1]  # same seed: byte-identical tables, 1 or 2 processes
    assert digests[0] != digests[2]  # another seed draws other scenarios


def test_train_task_needs_the_q_learning_policy(make_cfg):
    with pytest.raises(ConfigError, match="policy = .*ThresholdPolicy.*add policy=q_learning"):
        run(make_cfg("task=train"))
    with pytest.raises(ConfigError, match="train.episode_s = 60.0"):
        run(make_cfg("task=train", "policy=q_learning", "train.episode_s=60"))


@pytest.mark.parametrize("override, message", [
    ("train.distribution.rate_rps=[100,0.5]", r"train.distribution.rate_rps = \[100.0, 0.5\]: inverted range"),
    ("train.distribution.noise_cv=[]", r"train.distribution.noise_cv = \[\]: must be a range \[low, high\]"),
    ("train.distribution.rate_rps=[0,10]", r"train.distribution.rate_rps = \[0.0, 10.0\]: must be > 0"),
    ("train.distribution.replays=[default,nowhere]", r"train.distribution.replays\[1\]: unknown scenario 'nowhere'"),
    ("train.distribution.validation=[flash_crwd]", r"train.distribution.validation\[0\]: unknown scenario 'flash_crwd'"),
    ("train.distribution.validation=[default]", r"train.distribution.validation = \['default'\]: \['default'\] "
                                                r"also in train.distribution.replays"),
    ("train.distribution.validation=[]", r"train.distribution.validation = \[\]: must name at least one"),
    ("train.distribution.arrival_cv=[6,1.5]", r"train.distribution.arrival_cv = \[6.0, 1.5\]: inverted range"),
    ("train.lagrange_quantile=1.5", r"train.lagrange_quantile = 1.5: must be in \[0, 1\]"),
    ("train.distribution.renewal_share=1.5", r"train.distribution.renewal_share = 1.5: must be in \[0, 1\]"),
])
def test_bad_training_distribution_is_a_config_error_naming_the_field(make_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        run(make_cfg("task=train", "policy=q_learning", override))


def test_validation_scenario_replaying_a_training_trace_is_refused(make_cfg, tmp_path):
    from elastic_des.agent.distribution import validate_distribution

    cfg = make_cfg("task=train", "policy=q_learning", "train.distribution.replays=[azure_conv]",
                   "train.distribution.validation=[flash_crowd]")
    validate_distribution(cfg.train, cfg.scenario)  # disjoint: fine
    import elastic_des.agent.distribution as distribution
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in ("azure_conv", "flash_crowd"):
        (scenarios / f"{name}.yaml").write_text((distribution.SCENARIO_DIR / f"{name}.yaml").read_text())
    (scenarios / "azure_conv_copy.yaml").write_text((distribution.SCENARIO_DIR / "azure_conv.yaml").read_text()
                                                     .replace("name: azure_conv", "name: azure_conv_copy"))
    original = distribution.SCENARIO_DIR
    distribution.SCENARIO_DIR = scenarios
    try:
        cfg.train.distribution.validation = ["azure_conv_copy"]
        with pytest.raises(ConfigError, match=r"'azure_conv_copy' replays trace 'AzureLLMInferenceTrace_conv.csv', "
                                              r"as training replay 'azure_conv' does"):
            validate_distribution(cfg.train, cfg.scenario)
    finally:
        distribution.SCENARIO_DIR = original
