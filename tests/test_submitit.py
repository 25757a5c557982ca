"""Sweeps through submitit, the Slurm path the README documents, tried with
submitit's local executor: a 2-job sweep through ``hydra/launcher=submitit_local``
completes both jobs and aggregates them, and a job's summary is the one the
basic launcher writes for the same job (same folder name, same numbers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

ROOT = Path(__file__).resolve().parent.parent
JOB = ("scenario.duration_s=1800", "baseline.enabled=false", "output.report=false", "output.progress=false")


def multirun(sweep: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "-m", *args, *JOB, f"hydra.sweep.dir={sweep}"],
        cwd=sweep.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_job_sweep_through_submitit_local(tmp_path):
    sweep = tmp_path / "submitit"
    multirun(sweep, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "seed=0,1")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name.split("__")[:3] for p in jobs] == [["default", "threshold", "0"], ["default", "threshold", "1"]]
    for job in jobs:
        assert (job / "complete.json").is_file() and (job / "summary.json").is_file(), job
    assert (sweep / ".submitit").is_dir()  # submitit's own logs and pickles, beside the jobs
    table = pd.read_csv(sweep / "sweep_summary.csv")
    assert sorted(table["sweep/job_dir"]) == [p.name for p in jobs]
    assert set(table["sweep/status"]) == {"complete"}
    agg = pd.read_csv(sweep / "sweep_aggregate.csv")
    assert len(agg) == 1 and agg.loc[0, "n_seeds"] == 2 and agg.loc[0, "seeds"] == "0 1"
    summaries = [json.loads((p / "summary.json").read_text()) for p in jobs]
    assert agg.loc[0, "cost/usd.mean"] == pytest.approx(sum(s["cost/usd"] for s in summaries) / 2, rel=1e-12)

    # The same job through the basic launcher: same folder name, same summary.
    basic = tmp_path / "basic"
    multirun(basic, "seed=0")
    (same,) = [p for p in basic.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert same.name == jobs[0].name
    assert json.loads((same / "summary.json").read_text()) == summaries[0]
