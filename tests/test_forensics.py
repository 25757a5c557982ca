"""Decision forensics: sentences that state the record's numbers, and
counterfactual replays that are exact when nothing changes and show the
cost of holding during a spike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import SMALL_REPLICAS, compose_config
from elastic_des.app import run
from elastic_des.analysis.counterfactual import decision, load_run_config, replay
from elastic_des.errors import ConfigError
from elastic_des.analysis.forensics import TEMPLATES, clock, explain, load_records, number, rank_by_proxy, reason

ROOT = Path(__file__).resolve().parent.parent

# One hour with a flash crowd: 2.5× the rate from 30 to 40 min.
SPIKE = ("scenario.duration_s=3600", SMALL_REPLICAS, "output.progress=false", "output.report=false", "output.requests=false",
         "scenario.workload.spikes=[{start_s:1800,duration_s:600,multiplier:2.5}]")


def simulate_run(run_dir: Path, *overrides: str) -> Path:
    """A run folder as ``python run.py`` leaves it, Hydra's config record included."""
    cfg = compose_config(*overrides)
    run(cfg, run_dir)  # writes .hydra/config.yaml and the completion marker too
    return run_dir


@pytest.fixture(scope="module")
def spike_run(tmp_path_factory) -> Path:
    return simulate_run(tmp_path_factory.mktemp("spike"), *SPIKE, "policy=threshold")


def first_scale_up_in_spike(run_dir: Path) -> dict:
    return next(d for d in load_records(run_dir).decisions
                if 1800 <= d["time_s"] < 2400 and d["replicas_after"] > d["replicas_before"])


def test_sentence_states_the_numbers_of_a_scale_up(spike_run):
    record = first_scale_up_in_spike(spike_run)
    sentence = explain(record)
    d, obs, forecast = record["details"], record["observation"], record["forecast_rps"]
    assert sentence.startswith(f"{clock(record['time_s'])} scaled up {record['replicas_before']}→{record['replicas_after']}: ")
    assert clock(record["time_s"]) == f"00:{int(record['time_s'] // 60):02d}"
    if d["utilization"] > d["upper"]:
        assert f"utilization {number(d['utilization'])} is above the {number(d['upper'])} band" in sentence
    if d["queue_per_replica"] > d["queue_limit"]:
        assert f"{number(d['queue_per_replica'])} requests wait per replica" in sentence
    assert f"over the next {len(forecast)} min ({number(forecast[0])}→{number(forecast[-1])} req/s)" in sentence
    gap = round(abs(obs["arrival_rate_rps"] / forecast[0] - 1) * 100)
    side = "above" if obs["arrival_rate_rps"] > forecast[0] else "below"
    assert f"the latest rate {number(obs['arrival_rate_rps'])} req/s is {gap}% {side} the next-tick forecast" in sentence


def test_trend_clause_agrees_with_the_forecasters_own_trend(spike_run):
    """EWMA forecasts a flat line: whatever the latest rate, its forecast
    never "rises" or "falls"; a forecast that does rise is said to."""
    decisions = load_records(spike_run).decisions
    assert all(len(set(d["forecast_rps"])) == 1 for d in decisions)  # the EWMA's forecast is flat
    sentences = [explain(d) for d in decisions]
    assert all("forecast flat over the next 15 min" in s for s in sentences)
    assert not any(word in s for s in sentences for word in ("forecast rises", "forecast falls"))
    assert any("above the next-tick forecast" in s for s in sentences)  # the latest rate is compared separately
    record = {**decisions[40], "forecast_rps": [10.0] * 14 + [13.0]}
    record["observation"] = {**record["observation"], "arrival_rate_rps": 15.0}
    assert ("forecast rises 30% over the next 15 min (10→13 req/s); the latest rate 15 req/s is 50% above "
            "the next-tick forecast") in explain(record)


def test_forced_policy_remembers_the_applied_action(spike_run):
    """Threshold's cooldown follows what happened: forcing a scale-up where
    it held starts a cooldown; forcing a hold where it scaled starts none."""
    from elastic_des.analysis.counterfactual import ForcedActionPolicy, _history
    from elastic_des.engine.workload import build_workload
    from elastic_des.factory import build

    cfg, records = load_run_config(spike_run), load_records(spike_run)
    decisions = records.decisions
    workload = build_workload(cfg.scenario, cfg.seed)

    def forced(tick: int, target: int) -> list[dict]:
        policy = ForcedActionPolicy(build(cfg.policy, "policy"), tick, target)
        return _history(cfg, workload, policy, decisions[tick + 2]["time_s"]).decisions

    held = next(d for d in decisions if d["rule"] == "in_band" and d["tick"] > 5)
    after_up = forced(held["tick"], held["replicas_before"] + 1)
    assert after_up[held["tick"]]["rule"] == "forced"
    assert after_up[held["tick"] + 1]["rule"] == "cooldown"
    assert after_up[held["tick"] + 1]["details"]["cooldown_left_s"] == cfg.policy.cooldown_s - cfg.controller.tick_s
    scaled = first_scale_up_in_spike(spike_run)
    assert decisions[scaled["tick"] + 1]["rule"] == "cooldown"  # as it happened: the scale-up's cooldown
    after_hold = forced(scaled["tick"], scaled["replicas_before"])
    assert after_hold[scaled["tick"] + 1]["rule"] != "cooldown"  # no change happened, so no cooldown


def test_every_decision_of_a_run_is_explained_with_its_numbers(spike_run):
    for record in load_records(spike_run).decisions:
        sentence = explain(record)
        before, after = record["replicas_before"], record["replicas_after"]
        assert (f"held at {before}" if before == after else f"{before}→{after}") in sentence
        assert f"utilization {number(record['details']['utilization'])}" in sentence
        assert number(record["forecast_rps"][-1]) in sentence


@pytest.mark.parametrize("policy", ["static", "threshold", "hpa", "kpa", "predictive", "q_learning"])
def test_each_policy_rule_has_a_template(tmp_path, policy):
    """Every rule the policies fire in a spiky hour reads as a sentence of its
    own, not the generic list of numbers."""
    untrained = ("policy.untrained=true",) if policy == "q_learning" else ()  # needs no model file
    simulate_run(tmp_path, *SPIKE, f"policy={policy}", "baseline.enabled=false", *untrained)
    records = load_records(tmp_path).decisions
    for record in records:
        assert (record["policy"], record["rule"]) in TEMPLATES, record["rule"]
        assert not reason(record).startswith("rule "), explain(record)


def test_q_values_and_unknown_rules():
    # Decision 2163 of a 60 s tick, on the second day; a policy without templates.
    record = {
        "time_s": 86_400 + 12 * 3600 + 4 * 60, "tick": 2163, "policy": "q_learning", "rule": "greedy",
        "replicas_before": 4, "replicas_after": 5, "requested_target": 5,
        "details": {"epsilon": 0.05, "state": [3, 1]}, "q_values": {"hold": 0.84, "up_1": 1.21, "down_1": -0.3},
        "observation": {"arrival_rate_rps": 41.0}, "forecast_rps": [45.0] * 4 + [52.6],
    }
    assert explain(record) == (
        "day 2 12:04 scaled up 4→5: rule greedy (epsilon=0.05); forecast rises 17% over the next "
        "5 min (45→52.6 req/s); the latest rate 41 req/s is 9% below the next-tick forecast; "
        "Q(up_1)=1.21 beat Q(hold)=0.84."
    )


def test_q_values_of_an_exploring_agent():
    record = {"time_s": 120.0, "tick": 1, "policy": "q_learning", "rule": "explore", "replicas_before": 3,
              "replicas_after": 2, "requested_target": 2, "q_values": {"hold": 0.5, "up_1": 0.5, "down_1": -1.25},
              "details": {"action": "down_1", "load": 0.31, "model_size": 2, "forecast_peak_rps": 7.5,
                          "lead_ticks": 3, "visits": 12},
              "observation": {"arrival_rate_rps": 8.0}, "forecast_rps": [7.5, 7.5]}
    assert explain(record) == (
        "00:02 scaled down 3→2: exploring (ε-greedy): random action down_1; load 0.31, 2 replicas needed "
        "for the forecast peak of 7.5 req/s 3 ticks ahead; forecast flat over the next 2 min "
        "(7.5→7.5 req/s); the latest rate 8 req/s is 7% above the next-tick forecast; "
        "Q(down_1)=-1.25 although Q(hold)=0.5 was higher."
    )
    record["details"]["action"], record["rule"] = "hold", "greedy"
    assert explain(record).endswith("Q(hold)=0.5 tied with Q(up_1)=0.5.")
    record["q_values"] = {"hold": 0.0, "up_1": 0.0}
    assert explain(record).endswith("all Q-values are 0.")


def test_bounded_target_is_stated():
    record = {"time_s": 60.0, "tick": 0, "policy": "threshold", "rule": "above_band", "replicas_before": 8,
              "replicas_after": 8, "requested_target": 9,
              "details": {"utilization": 0.9, "upper": 0.75, "lower": 0.4, "queue_per_replica": 0.0, "queue_limit": 2.0},
              "observation": {"arrival_rate_rps": 10.0}, "forecast_rps": [10.0]}
    assert explain(record) == ("00:01 held at 8 (asked for 9, kept within the fleet's replica bounds): utilization "
                               "0.9 is above the 0.75 band; forecast flat over the next 1 min (10→10 req/s); "
                               "the latest rate 10 req/s is in line with it.")


def test_proxy_ranks_scaling_actions_only(spike_run):
    records = load_records(spike_run)
    table = rank_by_proxy(records.decisions, records.candidate_ticks, window_ticks=10, k=3)
    assert len(table) == 3 and (table["change"] != 0).all()
    assert table["proxy"].is_monotonic_decreasing
    ticks = records.candidate_ticks
    top = table.iloc[0]
    window = ticks.iloc[top["tick"] + 1: top["tick"] + 11]
    assert top["proxy"] == pytest.approx(abs(top["change"]) * (window["arrivals"] * window["utilization"]).sum())


def test_forcing_the_action_taken_is_refused(spike_run):
    record = first_scale_up_in_spike(spike_run)
    cfg, records = load_run_config(spike_run), load_records(spike_run)
    with pytest.raises(ConfigError, match=f"gives {record['replicas_after']} replicas, the target the policy chose"):
        replay(cfg, records, record["tick"], str(record["replicas_after"]), window_ticks=10)


def test_holding_during_a_spike_misses_more(spike_run):
    record = first_scale_up_in_spike(spike_run)
    cfg, records = load_run_config(spike_run), load_records(spike_run)
    result = replay(cfg, records, record["tick"], "hold", window_ticks=10)
    assert result.forced_target == record["replicas_before"]
    assert result.extra_misses > 0
    # Holding need not cost less over the window: the rule scales out later, to more, for
    # the backlog it left. Billing is per replica-second, so it saves at most one
    # replica from the decision on, for the window.
    usd_per_replica_s = cfg.world.model.gpus_per_replica * cfg.world.model.usd_per_gpu_hour / 3600
    assert -result.extra_cost_usd <= (result.window_end_s - result.time_s) * usd_per_replica_s + 1e-9
    sentence = result.sentence()
    assert f"had it held at {record['replicas_before']} instead of scaling up to {record['replicas_after']}" in sentence
    assert f"{result.extra_misses} more of the {result.requests} requests" in sentence
    more_or_less = "more" if result.extra_cost_usd > 0 else "less"
    assert sentence.endswith(f"it would have cost ${abs(result.extra_cost_usd):.2f} {more_or_less}")


def test_replay_refuses_a_run_it_cannot_reproduce(spike_run, tmp_path):
    record = first_scale_up_in_spike(spike_run)
    cfg = load_run_config(spike_run)
    cfg.policy.upper = 0.9  # not the policy the run was made with
    with pytest.raises(RuntimeError, match="does not reproduce"):
        replay(cfg, load_records(spike_run), record["tick"], "hold", window_ticks=5)


def test_bad_explain_input_names_the_field(spike_run):
    cfg, records = load_run_config(spike_run), load_records(spike_run)
    with pytest.raises(ConfigError, match="explain.forced_action = 'sideways'"):
        replay(cfg, records, 3, "sideways", 5)
    with pytest.raises(ConfigError, match=r"explain.forced_action = '999': gives 999 replicas, outside world.fleet"):
        replay(cfg, records, 3, "999", 5)
    with pytest.raises(ConfigError, match="explain.tick = 5000: is not a decision of this run"):
        decision(records, 5000)
    with pytest.raises(ConfigError, match="explain.window_ticks = 0"):
        replay(cfg, records, 3, "hold", 0)
    with pytest.raises(ConfigError, match="explain.run_dir = .*not a run folder"):
        load_run_config(spike_run / "figures")


def test_explain_command_keeps_the_run_folder_intact(tmp_path):
    """``task=explain`` runs in its own Hydra folder, named after the run it
    explains, the tick and the action: the run's config record is not
    overwritten by the explain invocation's."""
    run_dir = "outputs/runs/spiky__threshold__0"  # not the name the default scenario would give
    (tmp_path / run_dir).mkdir(parents=True)
    record = first_scale_up_in_spike(simulate_run(tmp_path / run_dir, *SPIKE))
    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "task=explain", f"explain.run_dir={run_dir}",
         f"explain.tick={record['tick']}", "output.progress=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load((tmp_path / run_dir / ".hydra" / "config.yaml").read_text())["task"] == "simulate"
    result = json.loads((tmp_path / f"outputs/explain/slm/spiky__threshold__0/tick{record['tick']}__hold"
                         / "explain.json").read_text())
    assert not (tmp_path / "outputs/explain/slm/default__threshold__0").exists()
    assert result["explain/decision"] == explain(record)
    assert result["counterfactual/extra_misses"] > 0
    assert result["explain/counterfactual"] in out.stdout


def test_q_values_print_enough_digits_a_near_tie_says_so_and_the_state_is_named():
    details = {"action": "x2.0", "visits": 40, "load": 0.887, "load_band": 3, "queue": 2.5,
               "queue_band": 2, "trend": 1.0, "trend_band": 1, "pending": 0.0, "pending_band": 0,
               "model_size": 5, "forecast_peak_rps": 17.7, "lead_ticks": 3}
    record = {"time_s": 36_060.0, "tick": 600, "policy": "q_learning", "rule": "greedy", "replicas_before": 2,
              "replicas_after": 4, "requested_target": 4, "details": details,
              "q_values": {"-1": -8.1030, "hold": -9.5, "x1.5": -8.7, "x2.0": -8.1021},
              "observation": {"arrival_rate_rps": 17.5}, "forecast_rps": [17.7] * 15}
    sentence = explain(record)
    assert "Q(x2.0)=-8.102 beat Q(-1)=-8.103, a near-tie (0.0009 apart)" in sentence
    assert ("state load ratio 0.887 (band 3), queue per replica 2.5 (band 2), forecast trend 1 (band 1), "
            "pending share 0 (band 0); 5 replicas needed") in sentence
    record["q_values"] = {"-1": -1.25, "hold": 0.5, "x2.0": 1.5}
    assert explain(record).endswith("Q(x2.0)=1.5 beat Q(hold)=0.5.")  # far apart: no near-tie
    # Held on a near-tie (policy.hold_tolerance): the sentence says why the lower value was taken.
    record["details"] = {**details, "action": "hold", "near_tie_hold": "x2.0"}
    record["replicas_after"] = record["requested_target"] = 2
    record["q_values"] = {"-1": -8.0621, "hold": -8.0464, "x2.0": -8.0404}
    assert explain(record).endswith("Q(hold)=-8.05 within 0.006 of Q(x2.0)=-8.04, a near-tie: held.")


def test_untried_actions_are_not_compared():
    # An untried action's value is null in decisions.jsonl; a state with none tried has no comparison.
    record = {"time_s": 120.0, "tick": 1, "policy": "q_learning", "rule": "greedy", "replicas_before": 3,
              "replicas_after": 3, "requested_target": 3, "details": {"action": "hold"},
              "q_values": {"hold": -0.5, "down_1": None, "size_x2": -2.0},
              "observation": {"arrival_rate_rps": 8.0}, "forecast_rps": [8.0, 8.0]}
    assert explain(record).endswith("Q(hold)=-0.5 beat Q(size_x2)=-2.")
    record["q_values"] = {"hold": None, "down_1": None}
    assert "Q(" not in explain(record)


def test_a_shielded_action_says_which_rule_changed_it():
    details = {"action": "hold", "visits": 12, "load": 1.2, "load_band": 3, "model_size": 5,
               "forecast_peak_rps": 17.7, "lead_ticks": 3, "shield": "floor"}
    record = {"time_s": 600.0, "tick": 10, "policy": "q_learning", "rule": "greedy", "replicas_before": 3,
              "replicas_after": 5, "requested_target": 5, "details": details, "q_values": {},
              "observation": {"arrival_rate_rps": 17.5}, "forecast_rps": [17.7] * 15}
    assert "greedy action hold in a state seen 12 times in training, lifted to the model size" in explain(record)
    details["shield"] = "cooldown"
    assert "held (no scale-in within the cooldown of a scale-out)" in explain(record)
    details.update(shield="burst_floor", floor=7)
    assert "lifted to 7, the sizing of a recent bursty tick" in explain(record)
    details["shield"] = None
    assert "seen 12 times in training: state load ratio" in explain(record)
