"""Sweeps survive their jobs: a failing job is recorded and the others run,
an interrupted sweep resumes where it stopped, and any sweep folder can be
re-aggregated with ``python -m elastic_des.sweep DIR``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from elastic_des.runfolder import FAILED, MARKER

ROOT = Path(__file__).resolve().parent.parent
JOB = ("scenario.duration_s=600", "output.progress=false", "output.report=false", "output.requests=false")


def multirun(sweep_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), "-m", *overrides, *JOB, f"hydra.sweep.dir={sweep_dir}"]


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(multirun(sweep, "scenario.workload.base_rate_rps=4,-1,6"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "1 of 3 jobs" in result.stderr and "scenario.workload.base_rate_rps = -1.0: must be > 0" in result.stderr
    complete = sorted(p.parent.name for p in sweep.glob(f"*/{MARKER}"))
    (failed,) = [p.parent for p in sweep.glob(f"*/{FAILED}")]
    assert len(complete) == 2 and not (failed / MARKER).exists()
    assert "must be > 0" in json.loads((failed / FAILED).read_text())["error"]
    table = pd.read_csv(sweep / "sweep_summary.csv").set_index("sweep/job_dir")
    assert table["sweep/status"].to_dict() == {**{name: "complete" for name in complete}, failed.name: "failed"}
    assert "must be > 0" in table.loc[failed.name, "sweep/error"]
    agg = pd.read_csv(sweep / "sweep_aggregate.csv")
    assert sorted(agg["sweep/variant"]) == ["scenario.workload.base_rate_rps=4", "scenario.workload.base_rate_rps=6"]

    # Re-aggregation from the folder alone gives the same tables, and the same verdict.
    written = {name: (sweep / name).read_bytes() for name in ("sweep_summary.csv", "sweep_aggregate.csv")}
    for name in written:
        (sweep / name).unlink()
    again = subprocess.run([sys.executable, "-m", "elastic_des.sweep", str(sweep)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and failed.name in again.stderr
    assert {name: (sweep / name).read_bytes() for name in written} == written


def markers(sweep: Path) -> dict[str, tuple[int, int]]:
    """Each complete job's marker: inode and modification time (a re-run makes a new one)."""
    return {p.parent.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sweep.glob(f"*/{MARKER}")}


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_the_same_aggregate(tmp_path):
    """SIGKILL a sweep midway, rerun the same command: the finished jobs are
    skipped, the rest run, and the aggregate equals an uninterrupted sweep's.
    Slow: three sweeps of four jobs, each a fresh Python process."""
    sweep_args = ("seed=0,1,2,3", "policy=threshold")
    reference = tmp_path / "uninterrupted"
    done = subprocess.run(multirun(reference, *sweep_args), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    sweep = tmp_path / "killed"
    process = subprocess.Popen(multirun(sweep, *sweep_args), cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while len(markers(sweep)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = markers(sweep)
    assert 2 <= len(finished) < 4, "the sweep should have been killed midway"
    assert not (sweep / "sweep_aggregate.csv").exists()

    resumed = subprocess.run(multirun(sweep, *sweep_args), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = markers(sweep)
    assert len(after) == 4
    assert {name: after[name] for name in finished} == finished  # not re-run
    assert resumed.stdout.count("already complete with the same config, skipped") == len(finished)
    assert not [p.name for p in sweep.iterdir() if p.name.startswith(".")]  # no partial folder left
    for name in ("sweep_aggregate.csv", "sweep_summary.csv"):
        assert (sweep / name).read_bytes() == (reference / name).read_bytes(), name
