"""Sweeps that aggregate themselves: the multirun callback's tables and
figures hold the jobs' own numbers, whichever launcher ran the jobs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import compose_config
from elastic_des.app import run
from elastic_des.analysis import plots
from elastic_des.analysis.sweep import aggregate, ci95, collect, pareto_points, summarize_sweep
from elastic_des.runfolder import building

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
JOB = ("scenario.duration_s=1800", "output.progress=false", "output.report=false", "output.requests=false")


def multirun(sweep_dir: Path, *launcher: str) -> None:
    """``python run.py -m seed=0,1 policy=static,threshold ...`` into ``sweep_dir``."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "-m", *launcher, "seed=0,1", "policy=static,threshold", *JOB,
         f"hydra.sweep.dir={sweep_dir}"],
        cwd=sweep_dir.parent, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def job_summaries(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/summary.json")}


def check_sweep(sweep_dir: Path) -> pd.DataFrame:
    """The sweep's files exist and hold exactly the jobs' summaries."""
    for name in ("sweep_pareto.png", "sweep_savings.png"):
        data = (sweep_dir / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    summaries = job_summaries(sweep_dir)
    assert len(summaries) == 4
    table = pd.read_csv(sweep_dir / "sweep_summary.csv").set_index("sweep/job_dir")
    assert set(table.index) == set(summaries)
    for job, summary in summaries.items():
        assert set(summary) | {"sweep/overrides", "sweep/variant", "sweep/status", "sweep/error"} == set(table.columns)
        assert table.loc[job, "sweep/status"] == "complete"
        for key, value in summary.items():
            shown = table.loc[job, key]
            assert shown == value or (value is None and pd.isna(shown)), (job, key)
        assert table.loc[job, "sweep/variant"] == f"policy={summary['run/policy']}"
    agg = pd.read_csv(sweep_dir / "sweep_aggregate.csv").set_index("sweep/variant")
    assert sorted(agg.index) == ["policy=static", "policy=threshold"]
    for variant, row in agg.iterrows():
        jobs = [s for s in summaries.values() if f"policy={s['run/policy']}" == variant]
        assert row["n_seeds"] == 2 and row["seeds"] == "0 1" and row["run/world"] == jobs[0]["run/world"]
        for key in ("cost/usd", "sla/compliance", "latency/p99_s", "savings/cost_fraction", "baseline/cost/usd"):
            values = [s[key] for s in jobs]
            assert row[f"{key}.mean"] == pytest.approx(np.mean(values), rel=1e-12)
            half_width = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)  # 0 for a static baseline's cost
            assert row[f"{key}.ci95"] == pytest.approx(half_width, rel=1e-9, abs=1e-12)
    return table


def test_sweep_aggregates_itself(tmp_path):
    """``python run.py -m ...`` (basic launcher) ends with the sweep tables and figures."""
    multirun(tmp_path / "sweep")
    check_sweep(tmp_path / "sweep")


def test_jobs_in_one_process_do_not_share_state():
    """A worker that runs job A, then B, then A again reproduces A exactly."""
    a = compose_config(*JOB, "policy=threshold", "seed=0")
    b = compose_config(*JOB, "policy=threshold", "seed=1", "scenario.workload.base_rate_rps=12")
    first, _, again = run(a), run(b), run(a)
    assert first == again


@pytest.mark.slow
def test_joblib_sweep_matches_single_runs(tmp_path):
    """A parallel sweep (joblib, two worker processes reused across the four
    jobs) writes the sweep tables, and every job equals the same config run
    alone in this process: no state leaks between jobs. Slow only because
    each worker process imports the package (torch) afresh."""
    sweep_dir = tmp_path / "sweep"
    multirun(sweep_dir, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    table = check_sweep(sweep_dir)
    for job, row in table.iterrows():
        alone = run(compose_config(*JOB, f"policy={row['run/policy']}", f"seed={row['run/seed']}"))
        for key, value in alone.items():
            assert row[key] == value or (pd.isna(row[key]) and pd.isna(value)), (job, key)


@pytest.mark.slow
def test_ray_sweep(tmp_path):
    """The Ray launcher against a local Ray instance it starts itself
    (``pip install -e '.[ray]'``; skipped without it)."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    multirun(tmp_path / "sweep", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2")
    check_sweep(tmp_path / "sweep")


def fake_job(sweep_dir: Path, name: str, overrides: list[str], summary: dict | None) -> None:
    """A job folder as a run leaves it: complete with ``summary``, or (None) interrupted."""
    job = sweep_dir / name
    if summary is None:
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        return
    with building(job, "seed: 0\n", {"overrides.yaml": yaml.safe_dump(overrides)}) as staging:
        (staging / "summary.json").write_text(json.dumps(summary))


def test_variants_are_the_overrides_that_vary(tmp_path, caplog):
    """A sweep over a policy parameter groups jobs by that parameter, seed
    excepted; a job that left no summary is reported and skipped."""
    for i, (upper, seed, cost) in enumerate([(0.6, 0, 1.0), (0.6, 1, 3.0), (0.8, 0, 2.0), (0.8, 1, 2.5)]):
        fake_job(tmp_path, str(i), ["policy=threshold", f"policy.upper={upper}", f"seed={seed}"],
                 {"run/name": f"x{i}", "run/scenario": "default", "run/policy": "threshold",
                  "run/world": "slm/threshold", "run/seed": seed, "cost/usd": cost, "sla/compliance": 0.99,
                  "sla/met": bool(seed)})
    fake_job(tmp_path, "4", ["policy=threshold", "policy.upper=0.9", "seed=0"], None)
    with caplog.at_level(logging.WARNING, logger="elastic_des.analysis.sweep"):
        jobs = collect(tmp_path)
    assert "jobs left out of the aggregate: 4 (it has no complete.json" in caplog.text
    assert list(jobs["sweep/variant"]) == ["policy.upper=0.6"] * 2 + ["policy.upper=0.8"] * 2
    paths = summarize_sweep(tmp_path)
    assert set(paths) == {"summary", "aggregate", "pareto"}  # no baseline in these jobs: no savings plot
    agg = pd.read_csv(paths["aggregate"]).set_index("sweep/variant")
    assert agg.loc["policy.upper=0.6", "cost/usd.mean"] == 2.0
    assert agg.loc["policy.upper=0.6", "cost/usd.ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * np.std([1, 3], ddof=1) / np.sqrt(2))
    assert agg.loc["policy.upper=0.8", "sla/met.mean"] == 0.5  # the share of seeds that met the SLA


def test_ci95_needs_two_values():
    assert np.isnan(ci95([1.0]))
    assert np.isnan(ci95([1.0, float("nan")]))
    x = [0.2, 0.5, 0.4, 0.9]
    low, high = stats.t.interval(0.95, 3, loc=np.mean(x), scale=stats.sem(x))
    assert ci95(x) == pytest.approx((high - low) / 2)


def test_no_summaries_write_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="elastic_des.analysis.sweep"):
        assert summarize_sweep(tmp_path) == {}
    assert "nothing to aggregate" in caplog.text and not list(tmp_path.iterdir())


def test_proportion_intervals_stay_within_zero_and_one_and_say_when_clipped():
    jobs = pd.DataFrame({"sweep/variant": ["a"] * 3, "run/scenario": "s", "run/policy": "p", "run/world": "w",
                         "run/seed": [0, 1, 2], "sla/compliance": [1.0, 1.0, 0.97], "cost/usd": [10.0, 12.0, 11.0]})
    row = aggregate(jobs).iloc[0]
    half = row["sla/compliance.ci95"]
    assert row["sla/compliance.mean"] + half > 1  # the t interval crosses 1 ...
    assert row["sla/compliance.ci95_high"] == 1.0 and row["sla/compliance.ci95_clipped"]  # ... and is clipped
    assert row["sla/compliance.ci95_low"] == pytest.approx(row["sla/compliance.mean"] - half)
    # not a proportion: the interval is the plain t interval, unclipped
    assert row["cost/usd.ci95_low"] == pytest.approx(11.0 - row["cost/usd.ci95"])
    assert "cost/usd.ci95_clipped" not in row


def test_pareto_plot_zooms_on_the_policies_and_states_the_far_baseline():
    agg = pd.DataFrame({"sweep/variant": ["policy=a", "policy=b"], "run/policy": ["a", "b"],
                        "run/baseline": "llm/static", "cost/usd.mean": [100.0, 120.0], "cost/usd.ci95": [5.0, 5.0],
                        "sla/compliance.mean": [0.995, 0.999], "sla/compliance.ci95_low": [0.99, 0.997],
                        "sla/compliance.ci95_high": [1.0, 1.0], "baseline/cost/usd.mean": [2400.0, 2400.0],
                        "baseline/cost/usd.ci95": [10.0, 10.0], "baseline/sla/compliance.mean": [0.993, 0.993],
                        "baseline/sla/compliance.ci95_low": [0.99, 0.99],
                        "baseline/sla/compliance.ci95_high": [0.996, 0.996]})
    ax = plots.pareto(pareto_points(agg)).axes[0]
    left, right = ax.get_xlim()
    assert left > 80 and right < 150  # the policies fill the axis; the $2,400 baseline is off it
    assert ax.get_ylim()[1] <= 100.5  # no room above 100 %: nothing is drawn there
    box = [t.get_text() for t in ax.texts]
    assert any("static baseline llm/static: $2,400.00, 99.30% met" in t for t in box)
