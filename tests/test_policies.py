"""Each policy's decision rule on crafted observations, then a short run of each."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from elastic_des.factory import build
from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import PolicyContext
from elastic_des.policies.hpa import HPAPolicy
from elastic_des.policies.kpa import KPAPolicy
from elastic_des.policies.predictive import PredictivePolicy, horizon_ticks
from elastic_des.policies.static import StaticPolicy
from elastic_des.policies.threshold import ThresholdPolicy
from elastic_des.agent.policy import QLearningPolicy
from elastic_des.rng import stream
from elastic_des.engine.simulation import simulate_world
from elastic_des.theory import replicas_for_slo
from elastic_des.engine.workload import build_workload

SLOTS = 16


def context(**changes) -> PolicyContext:
    base = PolicyContext(
        fleet_field="world.fleet", min_replicas=1, max_replicas=64, slots_per_replica=SLOTS,
        mean_service_s=2.675, cold_start_s=90.0, tick_s=60.0, slo_latency_s=30.0, slo_target=0.99,
        peak_rate_rps=20.0, mean_rate_rps=8.0, initial_rate_rps=8.0, rng=stream(0, "test/policy"),
    )
    return replace(base, **changes)


def obs(time_s=60.0, ready=1, provisioning=0, draining=0, target=None, utilization=0.0, queue=0, in_flight=0,
        rate=0.0, forecast=None) -> Observation:
    """An observation with quiet defaults; ``target`` defaults to ready + provisioning."""
    return Observation(
        time_s=time_s, tick=int(time_s // 60) - 1, arrival_rate_rps=rate, utilization=utilization,
        queue_length=queue, in_flight=in_flight, latency_p50_s=math.nan, latency_p95_s=math.nan,
        latency_p99_s=math.nan, sla_compliance=math.nan, drops=0, replicas_ready=ready,
        replicas_provisioning=provisioning, replicas_draining=draining,
        target_replicas=ready + provisioning if target is None else target,
        forecast_rps=np.zeros(15) if forecast is None else np.asarray(forecast, dtype=float),
        slots_per_replica=SLOTS,
    )


def started(policy, **changes):
    policy.reset(context(**changes))
    return policy


# -- static ------------------------------------------------------------------

def test_static_is_erlang_c_sizing_for_the_peak_whatever_the_load():
    ctx = context(peak_rate_rps=40.0)
    expected = replicas_for_slo(40.0, ctx.mean_service_s, SLOTS, ctx.slo_latency_s, ctx.slo_target)
    assert expected > 1
    policy = started(StaticPolicy(), peak_rate_rps=40.0)
    assert policy.initial_replicas() == expected
    for load in (obs(utilization=0.0), obs(ready=expected, utilization=1.0, queue=500)):
        assert policy.decide(load).target == expected


def test_static_fixed_size_and_bounds():
    assert started(StaticPolicy(replicas=3)).decide(obs()).target == 3
    with pytest.raises(ConfigError, match="policy.replicas = 100"):
        started(StaticPolicy(replicas=100))
    with pytest.raises(ConfigError, match="policy.replicas = 0"):
        StaticPolicy(replicas=0)


# -- threshold ---------------------------------------------------------------

def test_threshold_bands():
    policy = started(ThresholdPolicy(upper=0.75, lower=0.4, step=2, cooldown_s=0))
    assert policy.decide(obs(ready=4, utilization=0.8)).target == 6
    assert policy.decide(obs(ready=4, utilization=0.5)).rule == "in_band"
    assert policy.decide(obs(ready=4, utilization=0.3)).target == 2
    # Low utilization with a queue does not scale in; a long queue scales out.
    assert policy.decide(obs(ready=4, utilization=0.3, queue=1)).rule == "in_band"
    assert policy.decide(obs(ready=4, utilization=0.5, queue=9)).rule == "above_band"


def test_threshold_cooldown_blocks_then_expires():
    policy = started(ThresholdPolicy(cooldown_s=180))
    assert policy.decide(obs(time_s=60, ready=2, utilization=0.9)).target == 3
    blocked = policy.decide(obs(time_s=180, ready=2, provisioning=1, utilization=0.9))
    assert (blocked.target, blocked.rule) == (3, "cooldown")
    assert blocked.details["cooldown_left_s"] == pytest.approx(60)
    assert policy.decide(obs(time_s=240, ready=3, utilization=0.9)).target == 4


# -- hpa ---------------------------------------------------------------------

def test_hpa_holds_inside_the_tolerance_band():
    policy = started(HPAPolicy(target_utilization=0.7, tolerance=0.1))
    for utilization in (0.64, 0.70, 0.76):  # ratios 0.914, 1.0, 1.086
        decision = policy.decide(obs(ready=10, utilization=utilization))
        assert (decision.target, decision.rule) == (10, "in_tolerance")


def test_hpa_scales_by_the_ratio_outside_the_band():
    up = started(HPAPolicy()).decide(obs(ready=10, utilization=0.78))  # ratio 1.114
    assert (up.target, up.rule) == (math.ceil(0.78 / 0.7 * 10), "scale_up") == (12, "scale_up")
    down = started(HPAPolicy()).decide(obs(ready=10, utilization=0.35))  # first decision: nothing to stabilize on
    assert (down.target, down.rule) == (5, "scale_down")


def test_hpa_scale_up_rate_limit_is_max_of_100_percent_and_4_pods_per_period():
    policy = started(HPAPolicy(target_utilization=0.2), tick_s=5.0)
    first = policy.decide(obs(time_s=100, ready=2, utilization=1.0))  # wants ceil(5 x 2) = 10
    assert first.details["recommendation"] == 10
    assert (first.target, first.rule) == (6, "scale_up_rate_limited")  # max(2 x 2, 2 + 4)
    # 5 s later the 4 added replicas are still in the 15 s period: no more.
    second = policy.decide(obs(time_s=105, ready=2, provisioning=4, utilization=1.0))
    assert (second.target, second.details["scale_up_limit"]) == (6, 6)
    # After the period the limit counts from 6: max(12, 10) = 12.
    third = policy.decide(obs(time_s=120, ready=2, provisioning=4, utilization=1.0, target=6))
    assert third.details["scale_up_limit"] == 12 and third.target == 10


def test_hpa_stabilization_keeps_the_highest_recommendation_of_the_window():
    policy = started(HPAPolicy(downscale_stabilization_s=300))
    utilization = {60: 0.70, 120: 0.35, 180: 0.48, 240: 0.35, 300: 0.35, 360: 0.35, 420: 0.35}
    decisions = {t: policy.decide(obs(time_s=t, ready=10, utilization=u)) for t, u in utilization.items()}
    assert [decisions[t].details["recommendation"] for t in utilization] == [10, 5, 7, 5, 5, 5, 5]
    for t in (120, 180, 240, 300):  # the 10 recommended at t=60 is in the window
        assert (decisions[t].target, decisions[t].rule) == (10, "stabilization_hold")
    # At 360 the window (60, 360] no longer holds t=60; its highest is 7 (t=180).
    assert (decisions[360].target, decisions[360].rule) == (7, "scale_down")
    assert decisions[420].target == 7  # (120, 420] still holds t=180


def test_hpa_not_ready_replicas_count_as_idle_on_scale_up():
    # Alone, 4 ready replicas at 100 % (ratio 1.43) would grow to 6.
    assert started(HPAPolicy()).decide(obs(ready=4, utilization=1.0)).target == 6
    # With 4 more cold-starting, counted at 0 %, the ratio is 0.71: that would
    # reverse the direction, so the HPA holds.
    held = started(HPAPolicy()).decide(obs(ready=4, provisioning=4, utilization=1.0))
    assert (held.target, held.rule) == (8, "not_ready_hold")
    assert held.details["ratio_with_not_ready"] == pytest.approx(1 / 0.7 / 2)
    # 6 ready + 2 starting: ratio 1.07 is within the tolerance: hold.
    assert started(HPAPolicy()).decide(obs(ready=6, provisioning=2, utilization=1.0)).rule == "not_ready_hold"
    # Still clearly above after dilution: scale on ready + not-ready pods.
    grow = started(HPAPolicy(target_utilization=0.4)).decide(obs(ready=6, provisioning=2, utilization=1.0))
    assert grow.details["ratio_with_not_ready"] == pytest.approx(2.5 * 6 / 8)
    assert (grow.target, grow.rule) == (15, "scale_up")


def test_hpa_ignores_not_ready_replicas_on_scale_down_and_needs_metrics():
    down = started(HPAPolicy()).decide(obs(ready=10, provisioning=5, utilization=0.35))
    assert down.details["recommendation"] == 5  # ceil(0.5 x 10 ready), the 5 starting ignored
    none = started(HPAPolicy()).decide(obs(ready=0, provisioning=3, utilization=0.0))
    assert (none.target, none.rule) == (3, "no_metrics")
    with pytest.raises(ConfigError, match="world.fleet.min_replicas = 0"):
        started(HPAPolicy(), min_replicas=0)


@pytest.mark.parametrize("field, value", [
    ("target_utilization", 0.0), ("target_utilization", 1.5), ("tolerance", -0.1),
    ("downscale_stabilization_s", -1.0), ("scale_up_period_s", 0.0), ("scale_up_pods", -1),
])
def test_hpa_rejects_bad_config(field, value):
    with pytest.raises(ConfigError, match=f"policy.{field} = {value}"):
        HPAPolicy(**{field: value})


# -- kpa ---------------------------------------------------------------------

PER_REPLICA = 0.7 * SLOTS  # 11.2 requests


def test_kpa_stable_mode_sizes_for_concurrency_per_replica():
    policy = started(KPAPolicy())
    # Tick average: 0.5 x 64 slots busy + 4 waiting = 36 requests -> ceil(36 / 11.2) = 4.
    decision = policy.decide(obs(ready=4, utilization=0.5, queue=4, in_flight=30))
    assert decision.details["stable_concurrency"] == pytest.approx(36)
    assert decision.details["panic_concurrency"] == 34  # the instantaneous 30 + 4
    assert (decision.target, decision.rule) == (4, "stable")
    grow = started(KPAPolicy()).decide(obs(ready=4, utilization=0.9, queue=10, in_flight=60))
    assert (grow.target, grow.rule) == (math.ceil((0.9 * 64 + 10) / PER_REPLICA), "stable") == (7, "stable")


def test_kpa_scale_down_is_at_most_halving():
    decision = started(KPAPolicy()).decide(obs(ready=10, utilization=0.0))
    assert decision.details["desired_stable"] == 5 and decision.target == 5
    slower = started(KPAPolicy(max_scale_down_rate=4)).decide(obs(ready=10, utilization=0.0))
    assert slower.target == 2


def test_kpa_panics_at_twice_the_ready_replicas_and_never_scales_down_in_panic():
    policy = started(KPAPolicy())
    calm = policy.decide(obs(time_s=60, ready=2, utilization=0.6, in_flight=19, queue=0))  # ceil(19/11.2)=2: ratio 1
    assert calm.rule == "stable" and not calm.details["panic"]
    # 32 in service + 40 waiting: ceil(72 / 11.2) = 7 >= 2 x 2 ready: panic.
    burst = policy.decide(obs(time_s=120, ready=2, utilization=1.0, in_flight=32, queue=40))
    assert (burst.target, burst.rule) == (7, "panic_enter") and burst.details["panic"]
    # Load eases to 50 (5 replicas): still >= 2 x 2 ready, so panic goes on and holds 7.
    eased = policy.decide(obs(time_s=180, ready=2, provisioning=5, utilization=1.0, in_flight=32, queue=18))
    assert eased.details["desired_panic"] == 5
    assert (eased.target, eased.rule) == (7, "panic_hold")
    # Below the threshold now, but panic started (was last extended) at 180 and
    # lasts while now <= 180 + 60: still no scale-down.
    quiet = policy.decide(obs(time_s=240, ready=7, utilization=0.15, in_flight=20))
    assert quiet.details["panic_ratio"] < 2
    assert (quiet.target, quiet.rule) == (7, "panic_hold")
    # Past the stable window: panic ends and the stable count (at most halving) applies.
    after = policy.decide(obs(time_s=300, ready=7, utilization=0.15, in_flight=20))
    assert (after.target, after.rule) == (3, "panic_exit") and not after.details["panic"]
    assert policy.decide(obs(time_s=360, ready=3, utilization=0.4, in_flight=19)).rule == "stable"


def test_kpa_panic_threshold_boundary():
    # ceil(44 / 11.2) = 4 = 2.0 x 2 ready: panics; ceil(33 / 11.2) = 3 does not.
    at = started(KPAPolicy()).decide(obs(ready=2, utilization=0.0, in_flight=32, queue=12))
    assert at.details["panic_ratio"] == 2.0 and at.rule == "panic_enter"
    below = started(KPAPolicy()).decide(obs(ready=2, utilization=0.0, in_flight=32, queue=1))
    assert below.details["panic_ratio"] == 1.5 and below.rule == "stable"


def test_kpa_windows_map_onto_ticks():
    # A 30 s tick: the 60 s stable window averages the last two ticks; the
    # 6 s panic window is shorter than a tick and uses the instantaneous reading.
    policy = started(KPAPolicy(), tick_s=30.0)
    policy.decide(obs(time_s=30, ready=2, utilization=0.25))  # 8 requests
    second = policy.decide(obs(time_s=60, ready=2, utilization=0.75, in_flight=20))  # 24
    assert second.details["stable_concurrency"] == pytest.approx(16)
    assert second.details["panic_concurrency"] == 20
    third = policy.decide(obs(time_s=90, ready=2, utilization=0.5))  # 16: mean of 24 and 16
    assert third.details["stable_concurrency"] == pytest.approx(20)
    # A 2 s tick (Knative's own): the 6 s panic window averages 3 ticks.
    fine = started(KPAPolicy(), tick_s=2.0)
    assert (fine.stable_ticks, fine.panic_ticks) == (30, 3)


@pytest.mark.parametrize("field, value", [
    ("target_utilization", 0.0), ("stable_window_s", 0.0), ("panic_window_pct", 0.0),
    ("panic_threshold_pct", 100.0), ("max_scale_up_rate", 1.0), ("max_scale_down_rate", 0.5),
])
def test_kpa_rejects_bad_config(field, value):
    with pytest.raises(ConfigError, match=f"policy.{field} = {value}"):
        KPAPolicy(**{field: value})


# -- predictive --------------------------------------------------------------

def size(rate, headroom=0.1, **changes):
    ctx = context(**changes)
    return replicas_for_slo(rate * (1 + headroom), ctx.mean_service_s, SLOTS, ctx.slo_latency_s, ctx.slo_target)


def test_predictive_horizon_covers_the_cold_start():
    assert horizon_ticks(90, 60) == (1, 2)
    assert horizon_ticks(120, 60) == (2, 2)
    assert horizon_ticks(600, 60) == (10, 10)
    assert horizon_ticks(0, 60) == (0, 0)


def test_predictive_sizes_for_the_forecast_at_the_horizon():
    forecast = [5, 30, 20, 60, 60, 60]  # index 1..2 covers a 90 s cold start at 60 s ticks
    decision = started(PredictivePolicy()).decide(obs(ready=2, rate=5.0, forecast=forecast))
    assert decision.details["forecast_rps"] == 30
    assert decision.details["forecast_replicas"] == size(30) > size(5) == decision.details["load_replicas"]
    assert (decision.target, decision.rule) == (size(30), "scale_out_forecast")
    # With a 600 s cold start it looks 10 ticks ahead.
    far = started(PredictivePolicy(), cold_start_s=600.0).decide(obs(ready=2, forecast=[1] * 10 + [40]))
    assert far.details["forecast_rps"] == 40 and far.target == size(40)


def test_predictive_reacts_to_load_the_forecast_missed():
    decision = started(PredictivePolicy()).decide(obs(ready=2, rate=30.0, forecast=[5] * 15))
    assert (decision.target, decision.rule) == (size(30), "scale_out_load")


def test_predictive_never_scales_in_on_the_forecast_alone():
    policy = started(PredictivePolicy(scale_in_window_s=300))
    current = size(30)
    low = [2.0] * 15
    # Load still needs the fleet; the forecast says it will drop: hold.
    hold = policy.decide(obs(time_s=60, ready=current, rate=30.0, forecast=low))
    assert hold.details["forecast_replicas"] < current
    assert (hold.target, hold.rule) == (current, "hold_forecast_lower")
    # Now the load has dropped too, but t=60's need is in the 300 s window.
    delayed = policy.decide(obs(time_s=120, ready=current, rate=2.0, forecast=low))
    assert (delayed.target, delayed.rule) == (current, "scale_in_delayed")
    shrink = policy.decide(obs(time_s=360, ready=current, rate=2.0, forecast=low))
    assert (shrink.target, shrink.rule) == (size(2), "scale_in")


def test_predictive_needs_a_forecast_past_the_cold_start():
    policy = started(PredictivePolicy())
    with pytest.raises(ConfigError, match="controller.forecast_horizon_ticks = 2"):
        policy.decide(obs(forecast=[1.0, 1.0]))
    with pytest.raises(ValueError, match="finite rates"):
        policy.decide(obs(forecast=[1.0, np.nan, 1.0]))
    with pytest.raises(ConfigError, match="policy.headroom = -0.1"):
        PredictivePolicy(headroom=-0.1)


def test_every_elastic_policy_starts_sized_for_the_starting_traffic():
    # A run does not open a running service's traffic onto the minimum fleet: every
    # elastic rule starts where Erlang C puts the starting rate, the same fleet for all.
    ctx = context(initial_rate_rps=30.0)
    expected = replicas_for_slo(30.0, ctx.mean_service_s, SLOTS, ctx.slo_latency_s, ctx.slo_target)
    assert expected > 1
    for policy in (ThresholdPolicy(), HPAPolicy(), KPAPolicy(), PredictivePolicy(), QLearningPolicy(world="slm")):
        policy.reset(ctx)
        assert policy.initial_replicas() == expected, policy.name
    fixed = ThresholdPolicy(initial_replicas=2)
    fixed.reset(ctx)
    assert fixed.initial_replicas() == 2


def test_the_starting_traffic_is_the_planned_peak_until_the_first_replicas_ordered_can_serve(make_cfg):
    cfg = make_cfg("scenario.duration_s=3600", "scenario.workload.base_rate_rps=40",
                   "scenario.workload.diurnal_amplitude=0", "scenario.workload.spikes=[{start_s: 120, duration_s: 60, multiplier: 2.0}]")
    profile = build_workload(cfg.scenario, cfg.seed).profile
    t, rates = profile.grid()
    assert profile.peak_before(100.0) == pytest.approx(rates[t < 100.0].max())
    assert profile.peak_before(200.0) == pytest.approx(rates[t < 200.0].max())
    assert profile.peak_before(200.0) > 1.5 * profile.peak_before(100.0)  # the spike at 120 s counts
    assert profile.peak_before(0.0) == pytest.approx(rates[0])  # the rate at t = 0 at least


def test_a_run_into_high_traffic_starts_with_every_elastic_policy_sized_for_it(make_cfg):
    starts = {}
    for name in ("hpa", "predictive", "q_learning"):
        cfg = make_cfg(f"policy={name}", "scenario.duration_s=600", "scenario.workload.base_rate_rps=40",
                       "scenario.workload.spikes=[]")
        workload = build_workload(cfg.scenario, cfg.seed)
        result = simulate_world(cfg.world, cfg.scenario, cfg.controller, build(cfg.policy, "policy"),
                                build(cfg.forecaster, "forecaster"), workload, cfg.seed)
        starts[name] = int(result.ticks["replicas_ready"].iloc[0])
        assert result.ticks["sla_compliance"].iloc[0] >= cfg.scenario.slo.target_compliance, name
    assert len(set(starts.values())) == 1 and starts["hpa"] > 1, starts


# -- in the simulator --------------------------------------------------------

RULES = {
    "hpa": {"in_tolerance", "not_ready_hold", "no_metrics", "hold", "scale_up", "scale_up_rate_limited",
            "scale_down", "stabilization_hold"},
    "kpa": {"stable", "panic_enter", "panic", "panic_hold", "panic_exit"},
    "predictive": {"scale_out_forecast", "scale_out_load", "hold", "hold_forecast_lower", "scale_in",
                   "scale_in_delayed"},
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_policy_runs_in_the_simulator(make_cfg, name):
    cfg = make_cfg(f"policy={name}", "scenario.duration_s=3600")
    workload = build_workload(cfg.scenario, cfg.seed)
    result = simulate_world(cfg.world, cfg.scenario, cfg.controller, build(cfg.policy, "policy"),
                            build(cfg.forecaster, "forecaster"), workload, cfg.seed)
    assert len(result.decisions) == 59
    assert {d["rule"] for d in result.decisions} <= RULES[name]
    assert all(d["policy"] == name for d in result.decisions)
    assert all(1 <= d["replicas_after"] <= 64 for d in result.decisions)
    assert result.summary["requests/total"] > 0
