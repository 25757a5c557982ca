"""The Hydra application end to end: files, keys, the dual world, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elastic_des.app import format_summary, run
from elastic_des.progress import Progress

ROOT = Path(__file__).resolve().parent.parent


def test_run_writes_summary_and_tables(make_cfg, tmp_path):
    summary = run(make_cfg(), tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["sla/compliance"] == pytest.approx(summary["sla/compliance"])
    ticks = pd.read_parquet(tmp_path / "ticks.parquet")
    assert set(ticks["role"]) == {"candidate", "baseline"}
    assert set(ticks["world"]) == {"slm/threshold", "llm/static"}
    requests = pd.read_parquet(tmp_path / "requests.parquet")
    per_world = requests.groupby("role", observed=True).size()
    assert per_world["candidate"] == per_world["baseline"] == summary["requests/total"]
    decisions = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == len(ticks[ticks["role"] == "candidate"]) - 1  # no decision at the end
    assert summary["run/name"] == "default__threshold__0"


def test_dual_world_replays_the_same_arrivals(make_cfg, tmp_path):
    run(make_cfg(), tmp_path)
    requests = pd.read_parquet(tmp_path / "requests.parquet")
    candidate = requests[requests["role"] == "candidate"]
    baseline = requests[requests["role"] == "baseline"]
    assert candidate["arrival_s"].to_numpy().tobytes() == baseline["arrival_s"].to_numpy().tobytes()
    assert (candidate["output_tokens"].to_numpy() == baseline["output_tokens"].to_numpy()).all()


def test_savings_are_computed_from_both_worlds(make_cfg):
    summary = run(make_cfg())
    assert summary["savings/cost_usd"] == pytest.approx(summary["baseline/cost/usd"] - summary["cost/usd"])
    assert summary["savings/cost_fraction"] == pytest.approx(1 - summary["cost/usd"] / summary["baseline/cost/usd"])
    # A static LLM fleet on 4-GPU nodes costs a whole number of node-hours.
    assert summary["baseline/cost/gpu_hours"] == pytest.approx(4 * summary["baseline/replicas/max"] * 2)


def test_baseline_can_be_disabled(make_cfg):
    summary = run(make_cfg("baseline.enabled=false"))
    assert not any(k.startswith(("baseline/", "savings/")) for k in summary)


def test_format_summary_shows_both_worlds(make_cfg):
    text = format_summary(run(make_cfg("scenario.duration_s=600")))
    assert "slm/threshold" in text and "llm/static" in text and "savings/cost_fraction" in text


def test_progress_bar_is_off_without_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with Progress(100.0, "x", "sim-s") as progress:
        assert progress.bar is None and progress.logging


def test_cli_runs_from_another_directory(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "scenario.duration_s=600", "output.progress=false",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "sla/compliance" in result.stdout
    assert (tmp_path / "run" / "summary.json").stat().st_size > 0


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "scenario.workload.base_rate_rps=-2",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "scenario.workload.base_rate_rps = -2" in result.stderr
    assert "Traceback" not in result.stderr


def test_billing_per_tick_costs_add_up_to_the_cumulative_and_the_run_cost(make_cfg, tmp_path):
    summary = run(make_cfg(), tmp_path)
    ticks = pd.read_parquet(tmp_path / "ticks.parquet")
    for role, prefix in (("candidate", ""), ("baseline", "baseline/")):
        world = ticks[ticks["role"] == role]
        assert (world["cost_usd"] >= 0).all()
        assert np.allclose(world["cost_usd"].cumsum(), world["cost_usd_cumulative"], rtol=1e-12)
        assert world["cost_usd"].sum() == pytest.approx(summary[f"{prefix}cost/usd"], rel=1e-12)
