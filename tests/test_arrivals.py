"""Bursty arrival processes: rates, CVs and family moments against theory; bad input."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from elastic_des.app import run
from elastic_des.engine.arrivals import OnOffRateProfile, client_mixture_chunks, renewal_chunks
from elastic_des.engine.distributions import Gamma, Weibull, interarrival_distribution
from elastic_des.engine.traces import PACKAGED_TRACES, load_client_trace
from elastic_des.engine.windows import ThinnedArrivals, concatenate
from elastic_des.engine.workload import PiecewiseRateProfile
from elastic_des.errors import ConfigError
from elastic_des.rng import stream
from scenario_yaml import scenario_overrides

T = 1.96


def sample_renewal(*args) -> np.ndarray:
    return concatenate(renewal_chunks(*args))


def sample_client_mixture(*args) -> np.ndarray:
    return concatenate(client_mixture_chunks(*args))


def sample_nhpp(profile, rng) -> np.ndarray:
    return concatenate(ThinnedArrivals(profile, lambda: rng)())


def constant(rate: float, duration_s: float) -> PiecewiseRateProfile:
    return PiecewiseRateProfile(duration_s, np.array([rate]), duration_s)


def batch_ci(values: np.ndarray, batches: int = 40) -> tuple[float, float]:
    """Mean and 95% half-width of ``values`` by batch means (for correlated series)."""
    means = np.array([b.mean() for b in np.array_split(values, batches)])
    return means.mean(), T * means.std(ddof=1) / math.sqrt(batches)


@pytest.mark.parametrize("family", ["gamma", "weibull"])
@pytest.mark.parametrize("cv", [0.5, 3.0])
def test_renewal_matches_its_rate_cv_and_family(family, cv):
    rate, duration = 20.0, 20_000.0
    t = sample_renewal(constant(rate, duration), family, cv, stream(3, "test/renewal"), "f")
    gaps = np.diff(t)
    mean, half = batch_ci(gaps)
    assert abs(mean - 1 / rate) < half
    # CV: per-batch CVs, averaged (each batch holds ~10k gaps).
    cvs = np.array([b.std() / b.mean() for b in np.array_split(gaps, 40)])
    assert abs(cvs.mean() - cv) < T * cvs.std(ddof=1) / math.sqrt(40) + 0.02 * cv
    # The family: quantiles of the gaps against the analytic law's (not a KS test: at CV 3 a
    # Gamma gap is often below the float resolution of arrival times ~1e4 s, a tie at 0).
    law = interarrival_distribution(family, 1 / rate, cv, "f")
    if family == "gamma":
        analytic = stats.gamma(1 / cv**2, scale=law.mean * cv**2)
    else:
        analytic = stats.weibull_min(law.shape, scale=law.mean / math.gamma(1 + 1 / law.shape))
    q = np.array([0.5, 0.75, 0.9, 0.99])
    np.testing.assert_allclose(np.quantile(gaps, q), analytic.ppf(q), rtol=0.05)


def test_family_moments_are_analytic():
    for law in (Gamma(2.0, 3.0), Weibull(2.0, 3.0), Weibull(0.5, 0.4)):
        x = law.sample(stream(0, "test/moments"), 400_000)
        assert x.mean() == pytest.approx(law.mean, rel=0.03)
        assert x.std() / x.mean() == pytest.approx(law.cv, rel=0.08)


def test_renewal_follows_a_varying_rate():
    profile = PiecewiseRateProfile(1000.0, np.array([5.0, 40.0]), 2000.0)
    t = sample_renewal(profile, "gamma", 2.0, stream(0, "test/varying"), "f")
    first, second = np.sum(t < 1000), np.sum(t >= 1000)
    # A gamma renewal count over a window has variance ≈ cv² × mean.
    assert abs(first - 5000) < 4 * math.sqrt(4 * 5000)
    assert abs(second - 40000) < 4 * math.sqrt(4 * 40000)


def test_onoff_keeps_the_mean_rate_and_has_the_mmpp_dispersion():
    on, off, ratio, rate = 30.0, 90.0, 6.0, 10.0
    counts, idc = [], []
    for seed in range(12):
        profile = OnOffRateProfile(constant(rate, 40_000.0), on, off, ratio, stream(seed, "test/mod"))
        t = sample_nhpp(profile, stream(seed, "test/arrivals"))
        counts.append(len(t) / 40_000.0)
        per_window = np.bincount((t // 600).astype(int), minlength=66)[:66]
        idc.append(per_window.var(ddof=1) / per_window.mean())
    mean, half = np.mean(counts), T * np.std(counts, ddof=1) / math.sqrt(12)
    assert abs(mean - rate) < half
    # Asymptotic index of dispersion of an on/off MMPP: 1 + 2 α β (λ1 - λ0)² / ((α + β)³ λ̄).
    share = on / (on + off)
    low = rate / (share * ratio + 1 - share)
    a, b = 1 / on, 1 / off
    theory = 1 + 2 * a * b * (ratio * low - low) ** 2 / ((a + b) ** 3 * rate)
    assert np.mean(idc) == pytest.approx(theory, rel=0.25)


def write_clients(path, rows, columns=("window_start_s", "client", "rate_rps", "interarrival_cv", "family")):
    frame = pd.DataFrame(rows, columns=list(columns))
    with gzip.open(path, "wt") as f:
        frame.to_csv(f, index=False)
    return path


def test_client_mixture_matches_each_clients_rate_and_cv(tmp_path):
    path = write_clients(tmp_path / "c.csv.gz", [
        (w * 600, client, rate, cv, family)
        for w in range(30) for client, rate, cv, family in ((1, 2.0, 3.0, "Gamma"), (2, 0.5, 1.5, "Weibull"))
    ])
    trace = load_client_trace(path)
    assert trace.window_s == 600 and trace.windows == 30
    one = load_client_trace(write_clients(tmp_path / "one.csv.gz", [(w * 600, 1, 2.0, 3.0, "Gamma") for w in range(30)]))
    t = sample_client_mixture(one, 0, 600.0, 1.0, 18_000.0, stream(0, "test/clients"), "f")
    gaps = np.diff(t)
    mean, half = batch_ci(gaps, 30)
    assert abs(mean - 0.5) < half
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(3.0, rel=0.12)
    both = sample_client_mixture(trace, 0, 600.0, 1.0, 18_000.0, stream(0, "test/clients"), "f")
    assert abs(len(both) - 2.5 * 18_000) < 4 * math.sqrt(18_000 * (2.0 * 9 + 0.5 * 2.25))


def test_shipped_client_file_replays_at_its_total_rate():
    trace = load_client_trace(PACKAGED_TRACES / "servegen_mm-image_clients.csv.gz")
    expected = trace.aggregate().rate_rps[:36].sum() * trace.window_s / 4  # 6 h of windows, compressed 4x
    t = sample_client_mixture(trace, 0, trace.window_s / 4, 0.25, trace.window_s * 9, stream(0, "test/mm"), "f")
    # Compressed 4x and scaled by 0.25: the same number of requests in a quarter of the time.
    assert len(t) == pytest.approx(expected * 4 * 0.25, rel=0.05)


@pytest.mark.parametrize("arrivals, message", [
    ({"process": "renewal", "cv": 0.0}, "scenario.workload.arrivals.cv = 0.0"),
    ({"process": "renewal", "cv": -1.0}, "scenario.workload.arrivals.cv = -1.0"),
    ({"process": "renewal", "family": "pareto"}, "scenario.workload.arrivals.family = 'pareto'"),
    ({"process": "bursty"}, "scenario.workload.arrivals.process = 'bursty'"),
    ({"process": "onoff", "burst_ratio": 0.5}, "scenario.workload.arrivals.burst_ratio = 0.5"),
    ({"process": "renewal", "family": "weibull", "cv": 0.001}, "scenario.workload.arrivals.cv = 0.001"),
])
def test_bad_arrival_settings_name_the_field(make_cfg, tmp_path, arrivals, message):
    overrides = scenario_overrides(tmp_path, "bad", {"duration_s": 600, "workload": {"arrivals": arrivals}})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        run(make_cfg(*overrides), tmp_path / "out")


@pytest.mark.parametrize("rows, columns, message", [
    ([(0, 1, -2.0, 2.0, "Gamma"), (600, 1, 1.0, 2.0, "Gamma")], None, "column rate_rps = '-2.0'"),
    ([(0, 1, 2.0, 2.0, "Gamma"), (600, 1, 1.0, 2.0, "Pareto")], None, "column family = 'Pareto'"),
    ([(0, 1, 2.0, 0.0, "Gamma"), (600, 1, 1.0, 2.0, "Gamma")], None, "column interarrival_cv = 0"),
    ([(0, 1, 2.0, 2.0, "Gamma"), (600, 1, 1.0, 0.001, "Weibull")], None, "row 3 column interarrival_cv = 0.001"),
    ([(0, 1, 2.0), (600, 1, 1.0)], ("window_start_s", "client", "rate_rps"), "missing column"),
])
def test_bad_client_files_name_the_row_and_column(make_cfg, tmp_path, rows, columns, message):
    path = write_clients(tmp_path / "bad.csv.gz", rows, columns or
                         ("window_start_s", "client", "rate_rps", "interarrival_cv", "family"))
    trace = {"path": str(path), "format": "clients"}
    overrides = scenario_overrides(tmp_path, "bad", {"duration_s": 600, "workload": {"trace": trace}})
    with pytest.raises(ConfigError, match=message):
        run(make_cfg(*overrides, "baseline.enabled=false"), tmp_path / "out")
    assert not (tmp_path / "out" / "summary.json").exists()
