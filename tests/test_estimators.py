"""The controller's estimates: service time per request, burstiness within a tick."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elastic_des.engine.distributions import LogNormal
from elastic_des.engine.estimators import ServiceTimeEstimator, arrival_burstiness
from elastic_des.rng import stream


def test_service_estimator_converges_to_the_true_mean_and_scv_of_a_synthetic_stream():
    truth = LogNormal(3.0, 1.5)  # mean 3 s, SCV 2.25, far from the prior (1 s, SCV 1)
    rng = stream(0, "test/estimator")
    estimator = ServiceTimeEstimator(prior_mean_s=1.0, prior_scv=1.0, half_life_requests=2000)
    for _ in range(400):  # 400 ticks of 100 completed requests
        estimator.update(truth.sample(rng, 100))
    assert estimator.mean_s == pytest.approx(truth.mean, rel=0.08)
    assert estimator.scv == pytest.approx(truth.scv, rel=0.35)
    # Over seeds, the estimate is centred on the truth: the prior's weight has decayed away.
    means = []
    for seed in range(20):
        rng = stream(seed, "test/estimator")
        e = ServiceTimeEstimator(1.0, 1.0, half_life_requests=200)
        for _ in range(100):
            e.update(truth.sample(rng, 100))
        means.append(e.mean_s)
    half = 2.09 * np.std(means, ddof=1) / math.sqrt(len(means))
    assert abs(np.mean(means) - truth.mean) < half + 0.02 * truth.mean


def test_service_estimator_starts_at_the_prior_and_moves_more_on_a_busy_tick():
    quiet, busy = ServiceTimeEstimator(2.0, 0.5), ServiceTimeEstimator(2.0, 0.5)
    assert quiet.mean_s == 2.0 and quiet.scv == pytest.approx(0.5)
    quiet.update(np.full(10, 4.0))
    busy.update(np.full(400, 4.0))
    assert 2.0 < quiet.mean_s < busy.mean_s < 4.0
    quiet.update(np.empty(0))  # a tick without completions changes nothing
    assert quiet.mean_s == pytest.approx(2.0 + 2.0 * (1 - 0.5 ** (10 / 200)))


@pytest.mark.parametrize("bad", [dict(prior_mean_s=0.0, prior_scv=1.0), dict(prior_mean_s=1.0, prior_scv=-1.0),
                                 dict(prior_mean_s=1.0, prior_scv=1.0, half_life_requests=0.0)])
def test_service_estimator_refuses_impossible_priors(bad):
    with pytest.raises(ValueError):
        ServiceTimeEstimator(**bad)


def test_burstiness_of_known_counts():
    # 3 arrivals in second 0, none in 1, 1 in second 2, 0 in 3: peak 3, mean 1, variance 2.
    peak, dispersion = arrival_burstiness(np.array([0.1, 0.2, 0.9, 2.5]), 0.0, 4.0)
    assert peak == 3.0 and dispersion == pytest.approx(2.0)
    assert arrival_burstiness(np.empty(0), 0.0, 60.0) == (0.0, 1.0)


def test_dispersion_of_poisson_counts_is_one_within_a_confidence_interval():
    rng = stream(1, "test/poisson")
    values = []
    for _ in range(300):
        t = np.sort(rng.uniform(0, 60, rng.poisson(600)))
        values.append(arrival_burstiness(t, 0.0, 60.0)[1])
    half = 1.97 * np.std(values, ddof=1) / math.sqrt(len(values))
    assert abs(np.mean(values) - 1.0) < half
