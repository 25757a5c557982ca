"""The engine benchmark on a small workload: a correctness check, not a timing.

``benchmarks/engine.py`` compares the speed of elastic_des with SimPy and
Ciw; its numbers mean something only if the engines simulate the same queue.
All of them replay the same requests, so they must agree on the mean wait.
"""

from __future__ import annotations

import pytest

from benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("engine")


@pytest.fixture(scope="module")
def results(bench):
    case = bench.mmc_case(2000, servers=8, rho=0.9, seed=3)
    return case, bench.benchmark(case, repeat=1)


def test_case_is_the_requested_mmc_workload(results):
    case, _ = results
    assert len(case) >= 2000
    assert case.arrival_s.shape == case.service_s.shape
    # Rate 0.9 * 8 = 7.2 req/s and mean service 1 s, within sampling noise.
    assert len(case) / case.scenario.duration_s == pytest.approx(7.2, rel=0.1)
    assert case.service_s.mean() == pytest.approx(1.0, rel=0.1)


def test_every_engine_runs_and_simulates_the_same_queue(bench, results):
    case, runs = results
    assert set(runs) == set(bench.ENGINES)
    waits = {name: r[0].mean_wait_s for name, r in runs.items()}
    # At load 0.9 on 8 servers most requests wait; zero would mean nothing queued.
    assert waits["simpy"] > 0.1
    for name, wait in waits.items():
        assert wait == pytest.approx(waits["simpy"], rel=1e-6), name
        assert runs[name][0].requests == len(case)
        assert runs[name][0].wall_s > 0 and runs[name][0].cpu_s >= 0


def test_report_lists_every_engine_and_the_ratios(bench, results):
    case, runs = results
    text = bench.report(case, runs)
    for name in bench.ENGINES:
        assert f"\n{name} " in text
    assert "elastic_des / simpy:" in text and "elastic_des / ciw:" in text


def test_bad_arguments_are_rejected(bench):
    with pytest.raises(ValueError, match="rho"):
        bench.mmc_case(100, rho=1.0)
    with pytest.raises(ValueError, match="requests"):
        bench.mmc_case(0)
    with pytest.raises(ValueError, match="repeat"):
        bench.benchmark(bench.mmc_case(10), repeat=0)
