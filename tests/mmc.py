"""M/M/c and M/M/c/K configurations of the simulator, for validation tests.

The engine becomes a textbook queue when every replica has one slot, service
is exponential, replicas are warm from t=0 and never change (a static fleet
of ``c``), and arrivals are a homogeneous Poisson process (no diurnal cycle,
noise or spikes). A finite ``queue_capacity`` of ``K - c`` turns it into an
M/M/c/K queue; no queue timeout, so nothing else is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from scipy import stats

from elastic_des.app import run


def mmc_overrides(
    servers: int,
    rho: float,
    duration_s: float,
    mean_service_s: float = 1.0,
    queue_capacity: Optional[int] = None,
) -> list[str]:
    """Overrides that make a run an M/M/c (or M/M/c/K) queue at load ``rho``."""
    rate = rho * servers / mean_service_s
    capacity = "null" if queue_capacity is None else str(queue_capacity)
    return [
        f"scenario.duration_s={duration_s}",
        f"scenario.workload.base_rate_rps={rate!r}",
        "scenario.workload.diurnal_amplitude=0",
        "scenario.workload.noise_cv=0",
        "scenario.workload.spikes=[]",
        "world.model.service_model=exponential",
        f"world.model.mean_service_s={mean_service_s!r}",
        "world.model.slots_per_replica=1",
        "world.model.cold_start_s=0",
        "world.fleet.min_replicas=1",
        f"world.fleet.max_replicas={servers}",
        "world.fleet.initial_replicas=null",
        f"world.fleet.queue_capacity={capacity}",
        "world.fleet.queue_timeout_s=null",
        "policy=static",
        # Only the policy's world: the static baseline world would double the cost.
        "baseline.enabled=false",
        f"policy.replicas={servers}",
        "output.progress=false",
        "output.requests=true",
    ]


def simulate_requests(cfg, output_dir: Path) -> pd.DataFrame:
    """Run ``cfg`` into ``output_dir`` and return its per-request table."""
    run(cfg, output_dir)
    return pd.read_parquet(Path(output_dir) / "requests.parquet")


def t_interval(samples, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval ``(mean, low, high)``
    of independent per-seed estimates."""
    x = np.asarray(samples, dtype=float)
    mean = float(x.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half
