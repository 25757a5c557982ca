"""The clairvoyant oracle: per-tick needs against a brute force, the schedule's
cost against a brute force over all schedules, its SLA where it is attainable."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from elastic_des.app import run
from elastic_des.engine.clairvoyant import ClairvoyantLimit, replay_tick, tick_needs
from elastic_des.engine.policy import PolicyContext
from elastic_des.engine.provisioning import min_cost_schedule, tick_lengths
from elastic_des.errors import ConfigError
from elastic_des.policies.oracle import OraclePolicy
from elastic_des.rng import stream
from scenario_yaml import scenario_overrides


def naive_fifo(free: list[float], arrivals, services, latency, timeout) -> tuple[int, list[float]]:
    """A c-server FIFO queue written plainly (no heap): each request takes the
    server that frees first."""
    free = sorted(free)
    met = 0
    for t, s in zip(arrivals, services):
        j = min(range(len(free)), key=lambda i: free[i])
        start = max(t, free[j])
        if start - t > timeout:
            continue
        free[j] = start + s
        met += (start - t + s) <= latency
    return met, free


def brute_needs(arrival, service, tick_s, duration_s, slots, latency, target, timeout, lo,
                hi) -> tuple[list[int], list[bool]]:
    """Each tick, try every size from the floor up, carrying the chosen size's queue;
    and whether the largest fleet misses the target."""
    ticks = math.ceil(duration_s / tick_s)
    free: list[float] = []
    sizes, infeasible = [], []
    for k in range(ticks):
        start, end = k * tick_s, (k + 1) * tick_s
        mask = (arrival >= start) & (arrival < end)
        a, s = arrival[mask], service[mask]
        committed = sum(f > start for f in free)
        floor = max(lo, math.ceil(committed / slots))

        def fleet(c):
            servers = c * slots
            kept = sorted(free)[-servers:] if servers < len(free) else list(free) + [start] * (servers - len(free))
            return naive_fifo(kept if servers else [], a, s, latency, timeout) if servers else (0, [])

        results = {c: fleet(c) for c in range(floor, hi + 1)}
        required = math.ceil(target * len(a) - 1e-9)
        best = results[hi][0]
        infeasible.append(len(a) > 0 and best < required)
        required = min(required, best)
        size = floor if len(a) == 0 else min(c for c, (met, _) in results.items() if met >= required)
        sizes.append(size)
        free = results[size][1]
    return sizes, infeasible


@pytest.mark.parametrize("timeout", [40.0, math.inf])  # inf: the search skips the largest fleet when it can
@pytest.mark.parametrize("seed", range(6))
def test_oracle_needs_equal_a_brute_force_search(seed, timeout):
    rng = stream(seed, "test/oracle")
    duration, tick = 600.0, 60.0
    rate = rng.uniform(0.3, 2.5, 10).repeat(60)  # a rate per tick, bursts within
    arrival = np.sort(np.concatenate([k + rng.uniform(size=rng.poisson(r)) for k, r in enumerate(rate)]))
    service = rng.lognormal(1.0, 1.0, len(arrival))
    kwargs = dict(tick_s=tick, duration_s=duration, slots=2, slo_latency_s=20.0, slo_target=0.95,
                  queue_timeout_s=timeout, min_replicas=int(seed % 2), max_replicas=6)
    fast = tick_needs(arrival, service, **kwargs)
    slow, infeasible = brute_needs(arrival, service, tick, duration, 2, 20.0, 0.95, timeout, seed % 2, 6)
    assert fast.replicas.tolist() == slow
    assert fast.infeasible.tolist() == infeasible
    fast = fast.replicas.tolist()
    assert max(fast) > min(fast)  # the case exercises resizing


def test_the_limit_sized_tick_by_tick_reads_no_further_than_the_ticks_ended():
    # The limit a world computes as it runs: fed windows of 150 s, advanced at each 60 s
    # tick's end, it reads only the windows those ticks need and ends with the plan
    # computed from all requests at once.
    rng = stream(1, "test/oracle-limit")
    duration, tick, window = 900.0, 60.0, 150.0
    rate = rng.uniform(0.3, 2.5, 15).repeat(60)
    arrival = np.sort(np.concatenate([k + rng.uniform(size=rng.poisson(r)) for k, r in enumerate(rate)]))
    service = rng.lognormal(1.0, 1.0, len(arrival))
    kwargs = dict(tick_s=tick, duration_s=duration, slots=2, slo_latency_s=20.0, slo_target=0.95,
                  queue_timeout_s=math.inf, min_replicas=0, max_replicas=6)
    read_until = [0.0]

    def windows():
        for start in np.arange(0.0, duration, window):
            inside = (arrival >= start) & (arrival < start + window)
            read_until[0] = start + window
            yield arrival[inside], service[inside]

    limit = ClairvoyantLimit(windows(), cold_start_s=90.0, **kwargs)
    for end in np.arange(tick, duration + tick, tick):
        limit.advance_to(end)
        # a tick's requests are known once a window reaches past its end: at most one window ahead
        assert end <= read_until[0] < end + window + tick
    streamed = limit.plan()
    whole = ClairvoyantLimit([(arrival, service)], cold_start_s=90.0, **kwargs).plan()
    assert streamed.needs.tolist() == tick_needs(arrival, service, **kwargs).replicas.tolist()
    assert streamed.needs.tolist() == whole.needs.tolist() and streamed.replica_s == whole.replica_s
    assert streamed.alive.tolist() == whole.alive.tolist()
    assert max(streamed.needs) > min(streamed.needs)  # the case exercises resizing


@pytest.mark.parametrize("timeout", [0.5, math.inf])
def test_a_replay_stops_once_the_target_is_out_of_reach(timeout):
    rng = stream(0, "test/replay")
    arrival = np.sort(rng.uniform(0.0, 60.0, 200)).tolist()
    service = rng.lognormal(0.5, 1.0, 200).tolist()
    met, free = replay_tick([0.0] * 3, arrival, service, 5.0, timeout)
    assert 0 < met < len(arrival) and len(free) == 3
    assert replay_tick([0.0] * 3, arrival, service, 5.0, timeout, required=met) == (met, free)
    stopped, none = replay_tick([0.0] * 3, arrival, service, 5.0, timeout, required=met + 1)
    assert none is None and stopped <= met


def brute_schedule_cost(needs, tick_s, duration_s, cold_start_s, top) -> float:
    """Every sequence of replicas up per tick (>= needs); a replica started after
    t = 0 pays a cold start, the fleet at t = 0 is warm."""
    lengths = tick_lengths(len(needs), tick_s, duration_s)
    best = math.inf
    for alive in itertools.product(*(range(n, top + 1) for n in needs)):
        starts = sum(max(0, b - a) for a, b in zip(alive, alive[1:]))
        best = min(best, float(np.dot(alive, lengths)) + cold_start_s * starts)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_schedule_cost_equals_the_brute_force_minimum(seed):
    rng = stream(seed, "test/schedule")
    needs = rng.integers(0, 4, 6)
    cold_start = float(rng.choice([0.0, 30.0, 90.0, 150.0, 400.0]))
    alive, replica_s = min_cost_schedule(needs, 60.0, 350.0, cold_start)
    assert np.all(alive >= needs)
    assert replica_s == pytest.approx(brute_schedule_cost(needs, 60.0, 350.0, cold_start, int(needs.max())))


def test_billing_of_a_kept_gap_and_a_restart():
    # One replica needed in ticks 0 and 2 (gap 60 s), then in tick 6 (gap 180 s); cold start 90 s.
    alive, replica_s = min_cost_schedule(np.array([1, 0, 1, 0, 0, 0, 1]), 60.0, 420.0, 90.0)
    assert alive.tolist() == [1, 1, 1, 0, 0, 0, 1]
    assert replica_s == 3 * 60 + 60 + 90


SCENARIOS = {
    "default_2h": ({}, ["scenario.duration_s=7200"]),
    "flash": ({"duration_s": 3600, "workload": {"base_rate_rps": 12.0, "spikes": [
        {"start_s": 1200, "duration_s": 600, "multiplier": 3.0}]}}, []),
    "bursty": ({"duration_s": 3600, "workload": {"base_rate_rps": 15.0,
                                                  "arrivals": {"process": "renewal", "family": "gamma", "cv": 3.0}}}, []),
    "onoff": ({"duration_s": 3600, "workload": {"base_rate_rps": 15.0,
                                                 "arrivals": {"process": "onoff", "burst_ratio": 8.0}}}, []),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_oracle_meets_the_target_where_a_static_fleet_of_max_replicas_does(make_cfg, tmp_path, name):
    body, extra = SCENARIOS[name]
    overrides = scenario_overrides(tmp_path, name, body) if body else []
    common = (*overrides, *extra, "baseline.enabled=false", "output.requests=false", "world.fleet.max_replicas=24")
    static = run(make_cfg(*common, "policy=static", "policy.replicas=24"), tmp_path / "static")
    oracle = run(make_cfg(*common, "policy=oracle"), tmp_path / "oracle")
    assert static["sla/met"]
    assert oracle["sla/compliance"] >= oracle["sla/target"], oracle["sla/compliance"]
    assert oracle["cost/usd"] < static["cost/usd"]
    # The oracle's own run costs its schedule, plus ordering at tick granularity.
    assert 1.0 <= oracle["cost/oracle_ratio"] < 1.3
    assert static["cost/oracle_ratio"] > 1.0


def test_oracle_on_a_workload_it_cannot_read_ahead_says_why():
    ctx = PolicyContext(
        fleet_field="world.fleet", min_replicas=1, max_replicas=8, slots_per_replica=4, mean_service_s=2.0,
        cold_start_s=90.0, tick_s=60.0, slo_latency_s=30.0, slo_target=0.999, peak_rate_rps=5.0,
        mean_rate_rps=3.0, initial_rate_rps=3.0, rng=stream(0, "test"), future=None,
    )
    with pytest.raises(ConfigError, match="policy = oracle: .*future requests.*cannot be read ahead"):
        OraclePolicy().reset(ctx)


def test_every_summary_and_sweep_aggregate_reports_the_oracle_ratio(make_cfg, tmp_path):
    from elastic_des.analysis.sweep import aggregate

    summaries = [run(make_cfg("policy=hpa", f"seed={seed}", "scenario.duration_s=1800", "output.requests=false"),
                     tmp_path / str(seed)) for seed in (0, 1)]
    for summary in summaries:
        for prefix in ("", "baseline/"):
            assert summary[f"{prefix}cost/oracle_ratio"] == pytest.approx(
                summary[f"{prefix}cost/usd"] / summary[f"{prefix}cost/oracle_usd"])
    row = aggregate(pd.DataFrame(summaries).assign(**{"sweep/variant": "policy=hpa"})).iloc[0]
    assert math.isfinite(row["cost/oracle_ratio.mean"]) and math.isfinite(row["cost/oracle_ratio.ci95"])


def test_a_workload_that_cannot_be_read_ahead_has_no_oracle(make_cfg):
    from dataclasses import replace

    from elastic_des.engine.simulation import simulate_world
    from elastic_des.engine.workload import build_workload
    from elastic_des.factory import build

    cfg = make_cfg("scenario.duration_s=900")
    streamed = replace(build_workload(cfg.scenario, 0), read_ahead=False)
    with pytest.raises(ConfigError, match="cannot be read ahead"):
        simulate_world(cfg.world, cfg.scenario, cfg.controller, OraclePolicy(), build(cfg.forecaster, "f"), streamed, 0)
    result = simulate_world(cfg.world, cfg.scenario, cfg.controller, build(cfg.policy, "policy"),
                            build(cfg.forecaster, "f"), streamed, 0)
    assert math.isnan(result.summary["cost/oracle_ratio"])
