"""Planners size with what the fleet measures: the trace's own request sizes and
the observed service time; bursty ticks get the Allen–Cunneen correction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from elastic_des.app import run
from elastic_des.theory import replicas_for_slo
from conftest import SLOTS_WORLD
from scenario_yaml import scenario_overrides

# Azure conversation requests at 8x their rate, while the config claims requests
# of 20 prompt and 2 output tokens (a service time of ~0.08 s instead of ~3 s), on
# the slots model (SLOTS_WORLD), whose Erlang C sizes these tests state.
SMALL_SIZES = {
    "duration_s": 3600,
    "workload": {
        "trace": {"path": "AzureLLMInferenceTrace_conv.csv", "format": "timestamps", "rate_scale": 8.0},
        "prompt_tokens": {"kind": "constant", "mean": 20},
        "output_tokens": {"kind": "constant", "mean": 2},
    },
}


@pytest.mark.parametrize("policy", ["static", "threshold", "hpa", "kpa", "predictive", "oracle"])
def test_no_planner_stays_at_the_wrong_size_when_trace_sizes_differ_from_the_config(make_cfg, tmp_path, policy):
    overrides = scenario_overrides(tmp_path, "small_sizes", SMALL_SIZES)
    out = tmp_path / policy
    summary = run(make_cfg(*overrides, *SLOTS_WORLD, f"policy={policy}", "baseline.enabled=false",
                           "scenario.duration_s=3600"), out)
    requests = pd.read_parquet(out / "requests.parquet")
    ticks = pd.read_parquet(out / "ticks.parquet")
    # The config's sizes would call for a single replica at this rate.
    rate = summary["workload/mean_rate_rps"]
    config_service = 0.05 + 20 / 8000 + 2 / 80
    assert replicas_for_slo(rate, config_service, 16, 30.0, summary["sla/target"]) == 1
    # Every planner ends up at a fleet sized for the trace's real sizes: in the last ten
    # minutes at least 3/4 of what Erlang C gives for the real mean service time (the
    # threshold rule climbs one replica per 180 s cooldown, so it needs most of the hour).
    real = replicas_for_slo(rate, requests["service_s"].mean(), 16, 30.0, summary["sla/target"])
    assert real >= 8
    assert ticks["replicas_ready"].iloc[-10:].mean() >= 0.75 * real, (policy, ticks["replicas_ready"].iloc[-10:].tolist())
    if policy in ("static", "predictive", "oracle"):  # Erlang-C and clairvoyant planners: right from the start
        late = requests[requests["arrival_s"] >= 600]
        met = ((late["outcome"] == "served") & (late["latency_s"] <= 30.0)).mean()
        assert met >= 0.97, (policy, met)
    # The measured service time follows the trace, not the config: at ~2,600 completions
    # a tick (13 half-lives of 200), it is close to the last ticks' completions.
    recent = requests[(requests["finish_s"] >= 3600 - 180) & (requests["finish_s"] < 3600)]
    assert ticks["service_mean_s"].iloc[-1] == pytest.approx(recent["service_s"].mean(), rel=0.15)
    assert ticks["service_mean_s"].iloc[-1] > 20 * config_service


def _predictive(make_cfg, tmp_path, name, body, correction: bool, seed: int = 1):
    overrides = scenario_overrides(tmp_path, name, body)
    out = tmp_path / f"{name}_{correction}_{seed}"
    summary = run(make_cfg(*overrides, *SLOTS_WORLD, "policy=predictive", f"policy.burst_correction={str(correction).lower()}",
                           "baseline.enabled=false", "output.requests=false", f"seed={seed}",
                           "world.fleet.initial_replicas=3", "scenario.duration_s=7200"), out)
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    return summary, np.array([d["replicas_after"] for d in decisions])


def test_burst_correction_beats_plain_erlang_c_on_a_bursty_renewal_stream(make_cfg, tmp_path):
    # Gamma inter-arrival times of CV 6 at 10 req/s, a 15 s SLO at 99.9 %: Erlang C with a
    # 10 % rate headroom under-sizes; Allen–Cunneen sizes up in the bursty ticks. (Neither
    # reaches 99.9 % here: the burst correction narrows the gap, it does not close it.)
    # Over three seeds: the gain is 0.1-2.6 points a seed.
    body = {"duration_s": 7200, "slo": {"latency_s": 15, "target_compliance": 0.999},
            "workload": {"base_rate_rps": 10.0, "arrivals": {"process": "renewal", "family": "gamma", "cv": 6.0}}}
    gains = []
    for seed in range(3):
        plain, _ = _predictive(make_cfg, tmp_path, "bursty", body, correction=False, seed=seed)
        burst, _ = _predictive(make_cfg, tmp_path, "bursty", body, correction=True, seed=seed)
        assert plain["sla/compliance"] < plain["sla/target"]
        assert burst["sla/compliance"] > plain["sla/compliance"]
        assert burst["cost/usd"] > plain["cost/usd"]
        gains.append(burst["sla/compliance"] - plain["sla/compliance"])
    assert np.mean(gains) > 0.005, gains


def test_burst_correction_equals_plain_erlang_c_on_poisson_arrivals(make_cfg, tmp_path):
    body = {"duration_s": 7200, "workload": {"base_rate_rps": 20.0}}
    plain, plain_targets = _predictive(make_cfg, tmp_path, "poisson", body, correction=False)
    burst, burst_targets = _predictive(make_cfg, tmp_path, "poisson", body, correction=True)
    # One tick in a thousand may look bursty by chance (the test's χ² quantile).
    assert np.mean(plain_targets == burst_targets) >= 0.99
    assert burst["cost/usd"] == pytest.approx(plain["cost/usd"], rel=0.01)
    assert burst["sla/compliance"] == pytest.approx(plain["sla/compliance"], abs=0.001)
