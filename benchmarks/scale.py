"""Long runs: wall time and peak memory from one day to a month.

Runs the default scenario (both worlds, threshold policy on the SLM fleet
against the static LLM fleet) at a mean of ``--rate`` req/s without its
flash crowd, for each of ``--days``, streaming (``output.requests=false``,
no report), each run in its own ``python run.py`` subprocess. For each it
prints the requests simulated (both worlds), the wall time, the wall time
per million requests (flat if the cost per request does not grow with the
run) and the peak resident memory: of the subprocess (``ru_maxrss`` from
``os.wait4``: with ``run.workers=2`` the larger of the run's and its world
worker's peaks) and the sum of the two world processes' peaks (from
``timing.json``; pages shared after the fork count twice, so the sum errs
high). It also splits the wall time: the setup before the first simulated
event (``setup_s`` in ``timing.json``: planning and warm-up),
and the simulation after it, per million requests. Both worlds run at once with ``run.workers=2``,
so the split takes the world that finished last.

Usage: ``python benchmarks/scale.py [--days 1,7,30] [--rate 50] [--workers auto]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY_S = 86_400


@dataclass(frozen=True)
class ScaleRun:
    days: float
    requests: int
    wall_s: float
    peak_rss_mb: float
    world_rss_mb: float  # the worlds' processes' peaks, summed (one process: its peak)
    setup_s: float  # the last-finishing world's setup before its first event
    simulate_s: float  # and its time after that

    @property
    def wall_per_million_s(self) -> float:
        return self.wall_s / (self.requests / 1e6)

    @property
    def simulate_per_million_s(self) -> float:
        return self.simulate_s / (self.requests / 1e6)


def overrides(days: float, rate: float, workers: str, out_dir: Path) -> list[str]:
    return [
        f"scenario.duration_s={days * DAY_S:g}",
        f"scenario.workload.base_rate_rps={rate:g}",
        "scenario.workload.spikes=[]",
        "output.requests=false", "output.report=false", "output.progress=false",
        f"hydra.run.dir={out_dir}",
    ] + ([f"run.workers={workers}"] if workers else [])


def run_once(days: float, rate: float, workers: str) -> ScaleRun:
    """One run in a subprocess; its wall time and its own peak RSS."""
    with tempfile.TemporaryDirectory(prefix="elastic_des_scale_") as tmp:
        out_dir = Path(tmp) / "run"
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *overrides(days, rate, workers, out_dir)],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise RuntimeError(f"run of {days:g} days failed: {child.stderr.read().decode()[-2000:]}")
        summary = json.loads((out_dir / "summary.json").read_text())
        timing = json.loads((out_dir / "timing.json").read_text())
    requests = int(summary["requests/total"]) + int(summary.get("baseline/requests/total", 0))
    peaks: dict[int, float] = {}  # each world process's peak
    for world in timing.values():
        peaks[world["pid"]] = max(peaks.get(world["pid"], 0.0), world["peak_rss_mb"])
    # Serial worlds add up; parallel ones end with the slower.
    if len(peaks) == 1:
        setup = sum(world["setup_s"] for world in timing.values())
        simulate = sum(world["wall_s"] for world in timing.values()) - setup
    else:
        last = max(timing.values(), key=lambda world: world["wall_s"])
        setup, simulate = last["setup_s"], last["wall_s"] - last["setup_s"]
    # ru_maxrss is in KiB on Linux.
    return ScaleRun(days, requests, wall, usage.ru_maxrss / 1024, sum(peaks.values()), setup, simulate)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", default="1,7,30", help="comma-separated run lengths in days (default 1,7,30)")
    parser.add_argument("--rate", type=float, default=50.0, help="mean request rate, req/s (default 50)")
    parser.add_argument("--workers", default="", help="run.workers of each run (default: the config's)")
    args = parser.parse_args(argv)
    days = [float(d) for d in args.days.split(",")]
    print(f"default scenario without its flash crowd, mean {args.rate:g} req/s, both worlds, streaming, "
          f"run.workers={args.workers or 'default'}")
    print(f"{'days':>5} {'requests':>13} {'wall (s)':>9} {'wall/M req (s)':>15} {'setup (s)':>10} "
          f"{'simulation/M req (s)':>21} {'peak RSS (MB)':>14} {'worlds summed (MB)':>19}")
    for d in days:
        r = run_once(d, args.rate, args.workers)
        print(f"{r.days:>5g} {r.requests:>13,} {r.wall_s:>9.1f} {r.wall_per_million_s:>15.2f} {r.setup_s:>10.1f} "
              f"{r.simulate_per_million_s:>21.2f} {r.peak_rss_mb:>14.0f} {r.world_rss_mb:>19.0f}", flush=True)


if __name__ == "__main__":
    main()
