"""The log-bucketed histogram keeps its stated relative error (0.5%) and merges exactly."""

from __future__ import annotations

import numpy as np
import pytest

from elastic_des.engine.histogram import DEFAULT_RELATIVE_ERROR, LogHistogram

QUANTILES = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
# Bucket edges are computed with a logarithm: a value on an edge may land in
# the neighbouring bucket, which adds rounding to the bound (not more).
ROUNDING = 1e-9


def samples(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    return {
        "exponential": lambda: rng.exponential(2.0, size),
        "lognormal_wide": lambda: rng.lognormal(0.0, 3.0, size),
        "ties": lambda: rng.integers(1, 5, size) * 0.25,
        "narrow": lambda: 10.0 + rng.uniform(0, 1e-3, size),
        # Zeros (requests started at once) beside positive values, counted exactly.
        "zeros": lambda: np.where(rng.uniform(size=size) < 0.3, 0.0, rng.exponential(1.0, size)),
    }[kind]()


@pytest.mark.parametrize("size", [1, 2, 3, 10, 1000, 100_000])
@pytest.mark.parametrize("kind", ["exponential", "lognormal_wide", "ties", "narrow", "zeros"])
def test_quantiles_within_the_stated_relative_error(kind, size):
    values = samples(kind, size, np.random.default_rng(size))
    histogram = LogHistogram()
    for chunk in np.array_split(values, 7):
        histogram.add(chunk)
    exact = np.quantile(values, QUANTILES)
    estimate = np.array(histogram.quantiles(QUANTILES))
    error = np.abs(estimate - exact)
    assert np.all(error <= DEFAULT_RELATIVE_ERROR * (1 + ROUNDING) * exact)  # exact zeros stay 0
    assert histogram.count == size


def test_the_bound_is_tight_not_loose():
    # Uniform on many buckets: some quantile must come close to the bound, or
    # the histogram is finer than it says (and the test above proves little).
    values = np.random.default_rng(0).uniform(1, 100, 200_000)
    histogram = LogHistogram()
    histogram.add(values)
    qs = np.linspace(0, 1, 401)
    relative = np.abs(np.array(histogram.quantiles(qs)) - np.quantile(values, qs)) / np.quantile(values, qs)
    assert 0.5 * DEFAULT_RELATIVE_ERROR < relative.max() <= DEFAULT_RELATIVE_ERROR * (1 + ROUNDING)


def test_merge_equals_counting_everything_in_one():
    rng = np.random.default_rng(3)
    a, b = rng.exponential(1.0, 5000), rng.lognormal(1.0, 1.0, 7000)
    left, right, both = LogHistogram(), LogHistogram(), LogHistogram()
    left.add(a)
    right.add(b)
    both.add(np.concatenate([a, b]))
    left.merge(right)
    assert left.counts == both.counts and left.count == both.count == 12_000
    with pytest.raises(ValueError, match="relative_error"):
        left.merge(LogHistogram(0.01))


def test_empty_and_invalid_input():
    assert all(np.isnan(LogHistogram().quantiles([0.5, 0.99])))
    with pytest.raises(ValueError, match="non-negative"):
        LogHistogram().add([1.0, -1e-9])
    with pytest.raises(ValueError, match="non-negative"):
        LogHistogram().add([np.inf])
    with pytest.raises(ValueError, match="relative_error"):
        LogHistogram(0.0)
    with pytest.raises(ValueError, match="quantile"):
        LogHistogram().quantiles([1.5])
