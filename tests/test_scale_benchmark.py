"""The scale benchmark on a short run: what it reports adds up, not a timing.

``benchmarks/scale.py`` runs ``run.py`` in a subprocess per run length and
splits each run's wall time into the worlds' setup (before the first
simulated event) and their simulation; the split and the request count must
describe the run it made.
"""

from __future__ import annotations

import pytest

from benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def scale():
    return load_benchmark("scale")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_run_splits_into_setup_and_simulation_within_its_wall_time(scale, workers):
    run = scale.run_once(0.01, 5.0, workers)  # the first 864 s of the default scenario's day, both worlds
    # both worlds replay the same requests
    assert run.requests > 1000 and run.requests % 2 == 0
    assert run.setup_s > 0 and run.simulate_s > 0
    # the worlds' setup and simulation happen within the subprocess's wall time (which adds start-up)
    assert run.setup_s + run.simulate_s < run.wall_s
    assert run.simulate_per_million_s == pytest.approx(run.simulate_s / (run.requests / 1e6))
    assert run.peak_rss_mb > 0 and run.world_rss_mb > 0
