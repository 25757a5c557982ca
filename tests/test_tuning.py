"""Tuning with the Optuna sweeper: the objective, the choice of the best
solution, and a 3-trial study whose tuned config a plain run loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from elastic_des.analysis.tuning import best_solution
from elastic_des.objective import objective_value, sla_shortfall
from elastic_des.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PENALIZED = OmegaConf.create({"kind": "penalized_cost", "sla_penalty": 10.0})


def test_penalty_is_zero_when_the_target_is_met_and_grows_with_the_shortfall():
    assert objective_value({"cost/usd": 100.0, "sla/compliance": 0.995}, PENALIZED, 0.99) == 100.0
    # 2% misses against a 1% budget: one budget short, eleven times the cost
    assert objective_value({"cost/usd": 100.0, "sla/compliance": 0.98}, PENALIZED, 0.99) == pytest.approx(1100.0)
    assert sla_shortfall(0.985, 0.99) == pytest.approx(0.5)


def test_two_objectives_and_plain_sla():
    summary = {"cost/usd": 12.5, "sla/compliance": 0.97}
    assert objective_value(summary, OmegaConf.create({"kind": "cost_and_sla", "sla_penalty": 0}), 0.99) == [12.5, 0.97]
    assert objective_value(summary, OmegaConf.create({"kind": "sla", "sla_penalty": 0}), 0.99) == 0.97


def test_pareto_choice_is_the_cheapest_meeting_the_target_else_the_most_compliant():
    front = {"solutions": [{"params": {"policy.upper": 0.9}, "values": [10.0, 0.98]},
                           {"params": {"policy.upper": 0.8}, "values": [12.0, 0.992]},
                           {"params": {"policy.upper": 0.7}, "values": [15.0, 0.999]}]}
    assert best_solution(front, 0.99) == ({"policy.upper": 0.8}, [12.0, 0.992])
    assert best_solution(front, 0.9999) == ({"policy.upper": 0.7}, [15.0, 0.999])
    with pytest.raises(ConfigError):
        best_solution({"name": "optuna"}, 0.99)


def test_unknown_objective_is_refused(make_cfg):
    from elastic_des.app import run

    with pytest.raises(ConfigError, match="objective.kind = 'cheap'"):
        run(make_cfg("objective.kind=cheap"))


def test_three_trial_tuning_writes_a_config_a_plain_run_loads(tmp_path):
    tuned = tmp_path / "tuned"
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "-m", "experiment=tune_threshold", "hydra.sweeper.n_trials=3",
         "scenario.duration_s=3600", "output.progress=false", f"hydra.sweep.dir={sweep}",
         f"hydra.callbacks.tuned_config.config_dir={tuned}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert len(trials) == 3
    # the study's best value is the penalized cost of one of its trials
    values = [objective_value(t, PENALIZED, t["sla/target"]) for t in trials]
    assert results["best_value"] == pytest.approx(min(values))
    path = tuned / "policy" / "threshold_tuned_default.yaml"
    assert path.read_text() == (sweep / "tuned_policy.yaml").read_text()
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), f"hydra.searchpath=[file://{tuned}]", "policy=threshold_tuned_default",
         "scenario.duration_s=3600", "output.progress=false", "output.report=false", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = yaml.safe_load((tmp_path / "run" / ".hydra" / "config.yaml").read_text())["policy"]
    for key, value in results["best_params"].items():
        assert loaded[key.split(".", 1)[1]] == pytest.approx(value)
    best = min(trials, key=lambda t: objective_value(t, PENALIZED, t["sla/target"]))
    rerun = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert rerun["cost/usd"] == best["cost/usd"] and rerun["sla/compliance"] == best["sla/compliance"]
