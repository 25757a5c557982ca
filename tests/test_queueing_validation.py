"""The simulator against queueing theory.

With one slot per replica, exponential service, a static warm fleet and a
constant Poisson arrival rate, a run is an M/M/c queue (an M/M/c/K queue
with a finite waiting room); see ``tests/mmc.py``. Each case is run over
independent seeds and the per-seed estimates give a 95% Student-t
confidence interval, which must contain the theoretical value and be narrow
(half-width under 10% of it), so a wrong engine cannot pass by being noisy.

Warm-up: a run starts empty with every server idle, which biases early
waits low. Requests arriving in the first ten relaxation times of the queue
(``mmc.relaxation_time_s``, at least 100 s) are left out of the estimates.
Requests arriving near the end need no such care: the simulation lets every
admitted request finish, and a FIFO wait depends only on the past.

Seeds are the first n (0..n-1), not chosen to make the tests pass; each
test is therefore deterministic. A 95% interval misses the truth one time in
twenty by design, so a failure after a change that alters the random streams
should be rerun with more seeds before the engine is blamed; a change that
leaves the streams alone (a faster dispatcher, say) cannot move the numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import compose_config
from elastic_des.app import run
from elastic_des.theory import erlang_c, mmc_mean_wait, mmck_blocking, mmck_mean_wait
from mmc import mmc_overrides, relaxation_time_s, t_interval

MAX_RELATIVE_HALF_WIDTH = 0.10


def warmup_s(servers: int, rho: float, capacity=None) -> float:
    return max(100.0, 10.0 * relaxation_time_s(servers, rho, capacity))


def replicate(tmp_path, overrides: list[str], seeds: int) -> list:
    """Run ``overrides`` for seeds 0..seeds-1; their output folders."""
    cfg = compose_config(*overrides)  # composed once; only the seed changes
    folders = []
    for seed in range(seeds):
        cfg.seed = seed
        folders.append(tmp_path / f"seed{seed}")
        run(cfg, folders[-1])
    return folders


def after_warmup(folders, warmup: float) -> list[pd.DataFrame]:
    """Per run, the requests arriving after ``warmup``."""
    runs = []
    for folder in folders:
        requests = pd.read_parquet(folder / "requests.parquet")
        kept = requests[requests["arrival_s"] >= warmup]
        assert len(kept) > 0.9 * len(requests), "the warm-up must be a small part of the run"
        runs.append(kept)
    return runs


def assert_in_interval(name: str, samples, theory: float) -> None:
    mean, low, high = t_interval(samples)
    half = (high - low) / 2
    # Shown by ``pytest -rP``: the numbers behind a pass.
    print(f"{name}: theory {theory:.5g}, mean {mean:.5g}, 95% CI [{low:.5g}, {high:.5g}], half-width {half / theory:.1%}")
    assert low <= theory <= high, f"{name}: theory {theory:.5g} outside 95% CI [{low:.5g}, {high:.5g}] (mean {mean:.5g})"
    assert half < MAX_RELATIVE_HALF_WIDTH * theory, (
        f"{name}: CI half-width {half:.3g} is {half / theory:.1%} of theory {theory:.5g}; run longer or more seeds"
    )


# -- M/M/c: Erlang C ------------------------------------------------------

MMC_CASES = [
    # (servers, rho, duration_s, seeds): sized for a CI half-width of about
    # 5% of Wq (the per-seed mean wait is the noisiest estimate; its variance
    # grows like 1/(1 - rho)^2 relative to Wq, hence the long slow cases).
    pytest.param(1, 0.5, 10_000, 10, id="c1-rho0.5"),
    pytest.param(4, 0.7, 6_000, 10, id="c4-rho0.7"),
    pytest.param(8, 0.9, 10_000, 20, id="c8-rho0.9", marks=pytest.mark.slow),
    pytest.param(16, 0.95, 20_000, 20, id="c16-rho0.95", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("servers, rho, duration_s, seeds", MMC_CASES)
def test_mmc_wait_matches_erlang_c(tmp_path, servers, rho, duration_s, seeds):
    runs = after_warmup(replicate(tmp_path, mmc_overrides(servers, rho, duration_s), seeds), warmup_s(servers, rho))
    assert all((r["outcome"] == "served").all() for r in runs), "an M/M/c queue drops nothing"
    rate = rho * servers
    assert_in_interval("Wq", [r["wait_s"].mean() for r in runs], mmc_mean_wait(servers, rate, 1.0))
    assert_in_interval("P(wait)", [(r["wait_s"] > 0).mean() for r in runs], erlang_c(servers, rate, 1.0))
    # Service is exponential with mean 1 whatever the queue does.
    assert_in_interval("service", [r["service_s"].mean() for r in runs], 1.0)


# -- M/M/c/K: blocking ----------------------------------------------------

MMCK_CASES = [
    # (servers, system capacity K, rho, duration_s, seeds)
    pytest.param(4, 8, 0.9, 4_000, 10, id="c4-K8-rho0.9"),
    pytest.param(1, 5, 1.2, 3_000, 10, id="c1-K5-rho1.2"),  # overloaded, stable only because K is finite
    pytest.param(16, 20, 1.0, 5_000, 10, id="c16-K20-rho1.0", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("servers, capacity, rho, duration_s, seeds", MMCK_CASES)
def test_mmck_blocking_matches_theory(tmp_path, servers, capacity, rho, duration_s, seeds):
    overrides = mmc_overrides(servers, rho, duration_s, queue_capacity=capacity - servers)
    runs = after_warmup(replicate(tmp_path, overrides, seeds), warmup_s(servers, rho, capacity))
    rate = rho * servers
    assert all(r["outcome"].isin(["served", "queue_full"]).all() for r in runs), "no timeouts are configured"
    assert_in_interval(
        "blocking", [(r["outcome"] == "queue_full").mean() for r in runs], mmck_blocking(servers, capacity, rate, 1.0)
    )
    assert_in_interval(
        "Wq of admitted",
        [r.loc[r["outcome"] == "served", "wait_s"].mean() for r in runs],
        mmck_mean_wait(servers, capacity, rate, 1.0),
    )


# -- Little's law and the controller's view -------------------------------

LITTLE = dict(servers=4, rho=0.7, duration_s=4_000.0, tick_s=10.0, seeds=6)
WINDOW_START_S = 200.0  # a tick boundary past the warm-up (10 relaxation times = 94 s)


@pytest.fixture(scope="module")
def little_runs(tmp_path_factory):
    assert WINDOW_START_S >= warmup_s(LITTLE["servers"], LITTLE["rho"])
    overrides = mmc_overrides(LITTLE["servers"], LITTLE["rho"], LITTLE["duration_s"]) + [
        f"controller.tick_s={LITTLE['tick_s']}"
    ]
    folders = replicate(tmp_path_factory.mktemp("little"), overrides, LITTLE["seeds"])
    return [(pd.read_parquet(f / "requests.parquet"), pd.read_parquet(f / "ticks.parquet")) for f in folders]


def overlap_s(begin: np.ndarray, end: np.ndarray, t0: float, t1: float) -> float:
    """Total length of the intervals ``[begin, end)`` inside ``[t0, t1)``."""
    return float(np.clip(np.minimum(end, t1) - np.maximum(begin, t0), 0.0, None).sum())


def test_littles_law(little_runs):
    """L = lambda W, with L measured two ways.

    ``L_path``: the time-average number in system over the window, from the
    request table's arrival and finish times; ``L_ticks``: the controller's
    own count (queue length + requests in service) sampled at every tick.
    ``lambda W``: the window's arrival rate times the mean sojourn of the
    requests arriving in it.
    """
    t0, t1 = WINDOW_START_S, LITTLE["duration_s"]
    lam_w, l_ticks = [], []
    for requests, ticks in little_runs:
        arrival, finish = requests["arrival_s"].to_numpy(), requests["finish_s"].to_numpy()
        inside = (arrival >= t0) & (arrival < t1)
        product = inside.sum() / (t1 - t0) * (finish[inside] - arrival[inside]).mean()
        l_path = overlap_s(arrival, finish, t0, t1) / (t1 - t0)
        # Sample-path Little's law: equal up to the requests straddling the window edges.
        assert l_path == pytest.approx(product, rel=0.01)
        sampled = ticks[(ticks["time_s"] > t0) & (ticks["time_s"] <= t1)]
        lam_w.append(product)
        l_ticks.append(float((sampled["queue_length"] + sampled["in_flight"]).mean()))
    servers, rate = LITTLE["servers"], LITTLE["rho"] * LITTLE["servers"]
    theory_l = rate * (mmc_mean_wait(servers, rate, 1.0) + 1.0)
    assert_in_interval("lambda W", lam_w, theory_l)
    assert_in_interval("L from the controller's samples", l_ticks, theory_l)
    # Paired: both measure the same run, so their difference is small and centred on 0.
    diff = np.subtract(l_ticks, lam_w)
    mean, low, high = t_interval(diff)
    assert low <= 0 <= high, f"L_ticks - lambda W: 95% CI [{low:.4g}, {high:.4g}] excludes 0"
    assert high - mean < 0.05 * theory_l


def test_controller_counts_match_request_table(little_runs):
    """What the controller observed at each tick is exactly what the request
    table implies: waiting = arrived but not started, in service = started
    but not finished, and busy slot-seconds = the service intervals."""
    servers, tick_s = LITTLE["servers"], LITTLE["tick_s"]
    for requests, ticks in little_runs:
        t = ticks["time_s"].to_numpy()
        arrival = np.sort(requests["arrival_s"].to_numpy())
        start = np.sort(requests["start_s"].to_numpy())
        finish = np.sort(requests["finish_s"].to_numpy())

        def count_by(times):
            return np.searchsorted(times, t, side="right")

        np.testing.assert_array_equal(ticks["queue_length"].to_numpy(), count_by(arrival) - count_by(start))
        np.testing.assert_array_equal(ticks["in_flight"].to_numpy(), count_by(start) - count_by(finish))
        busy = overlap_s(requests["start_s"].to_numpy(), requests["finish_s"].to_numpy(), 0.0, t[-1])
        assert ticks["utilization"].sum() * servers * tick_s == pytest.approx(busy, rel=1e-9)
        assert (ticks["replicas_ready"] == servers).all()
