"""The Erlang C planners on continuous-batching replicas (``engine.service.serving_plan``).

* the planned capacity of a replica, ``c / S(c)``, is what a closed-loop load
  test at concurrency ``c`` measures (conservation of work: decode gets the
  time prefill leaves);
* a static fleet sized by Erlang C for the peak meets the SLO at the peak,
  for both presets, end to end through ``elastic_des.run``;
* every decision's observation carries TTFT and queue-wait signals, and an
  SLO on TTFT and TPOT alone is what compliance counts.
"""

from __future__ import annotations

import pytest

from elastic_des.app import run
from elastic_des.engine.closed_loop import closed_loop
from elastic_des.engine.service import serving_plan
from elastic_des.engine.simulation import simulate_world
from elastic_des.engine.workload import build_workload
from elastic_des.factory import build
from conftest import compose_config

PEAK = ("scenario.duration_s=3600", "scenario.workload.diurnal_amplitude=0", "scenario.workload.spikes=[]",
        "scenario.workload.noise_cv=0", "policy=static", "baseline.enabled=false", "output.progress=false",
        "output.report=false", "output.requests=false")


@pytest.mark.parametrize("world", ["slm", "llm"])
def test_planned_capacity_is_the_closed_loop_throughput_at_the_planned_batch(world):
    cfg = compose_config(f"world={world}", "scenario.workload.prompt_tokens={kind:constant,mean:1000}",
                         "scenario.workload.output_tokens={kind:constant,mean:200}")
    plan = serving_plan(cfg.world.model, cfg.scenario.workload, cfg.scenario.slo)
    measured = closed_loop(cfg.world.model, plan.slots, 20 * plan.slots, 1000, 200)
    assert measured.output_tokens_per_s / 200 == pytest.approx(plan.capacity_rps, rel=0.05)


@pytest.mark.parametrize("world, rate_rps", [("slm", 40.0), ("llm", 20.0)])
def test_static_sizing_meets_the_slo_at_the_peak(world, rate_rps):
    """An hour at a constant peak rate, the default sizes (log-normal) and SLO."""
    summary = run(compose_config(*PEAK, f"world={world}", f"scenario.workload.base_rate_rps={rate_rps}"))
    assert summary["replicas/max"] >= 2  # the peak needs a fleet, not one replica
    assert summary["sla/compliance"] >= summary["sla/target"], summary


def test_every_decision_sees_ttft_and_queue_signals():
    cfg = compose_config("scenario.duration_s=900", "policy=threshold", "baseline.enabled=false")
    result = simulate_world(cfg.world, cfg.scenario, cfg.controller, build(cfg.policy, "policy"),
                            build(cfg.forecaster, "forecaster"), build_workload(cfg.scenario, cfg.seed), cfg.seed)
    observed = [d["observation"] for d in result.decisions]
    assert observed and all(o["ttft_p99_s"] > 0 and o["queue_wait_mean_s"] >= 0 for o in observed)
    assert (result.ticks["ttft_p50_s"] <= result.ticks["ttft_p99_s"]).all()


def test_an_slo_on_ttft_and_tpot_alone_counts_both():
    """The same run judged by TTFT <= 0.1 s and TPOT <= 15 ms instead of end to end."""
    base = ("scenario.duration_s=1800", "baseline.enabled=false", "output.progress=false", "output.report=false")
    summary = run(compose_config(*base, "scenario.slo.latency_s=null", "scenario.slo.ttft_s=0.1",
                                 "scenario.slo.tpot_s=0.015"))
    assert "sla/latency_slo_s" not in summary and summary["sla/ttft_slo_s"] == 0.1
    assert summary["latency/ttft_p50_s"] < 0.1 < summary["latency/ttft_p99_s"]  # the objective bites
    assert 0.5 < summary["sla/compliance"] < 1.0
