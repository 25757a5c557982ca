"""Streaming runs equal whole-array runs.

A world fed a :class:`~elastic_des.engine.windows.RequestSource` (requests
replayed a window at a time, reduced as they retire) must give the very
tick table, decisions and summary of the same world fed the whole arrays
(:func:`~elastic_des.engine.workload.build_workload`); the windows must
replay exactly the whole-array requests for every way requests are made
(NHPP thinning, renewal, on/off, client mixture, timestamps and rate
traces); the run-level percentiles of the summary (a histogram) must be
within 0.5% of the exact percentiles of the request table; a world holds
only the requests in flight; and ``requests.parquet``, written in row groups
as the run goes, must hold the table the whole-array world keeps.
"""

from __future__ import annotations

import json
import weakref

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from elastic_des import request_files
from elastic_des.engine import metrics, simulation
from elastic_des.app import run
from elastic_des.engine.histogram import DEFAULT_RELATIVE_ERROR
from elastic_des.engine.records import RequestStore
from elastic_des.engine.simulation import oracle_summary, policy_context, simulate_world
from elastic_des.engine.windows import WINDOW_S, RequestSource, two_readers
from elastic_des.engine.workload import build_workload, request_source
from elastic_des.factory import build
from elastic_des.forecasters.simple import EWMAForecaster
from elastic_des.policies.static import StaticPolicy
from mmc import mmc_overrides

SEVERAL = 2.2 * WINDOW_S  # three windows, the last one short


def scenario(kind: str) -> list[str]:
    """Overrides of a run of ``kind`` spanning more than one window."""
    long = [f"scenario.duration_s={SEVERAL}"]
    return {
        "synthetic": [*long, "scenario.workload.base_rate_rps=2"],
        "renewal": ["scenario=bursty_gamma", *long, "scenario.workload.base_rate_rps=2"],
        "onoff": ["scenario=bursty_onoff", *long, "scenario.workload.base_rate_rps=2"],
        "clients": ["scenario=servegen_image", f"scenario.duration_s={1.5 * WINDOW_S}",
                    "scenario.workload.trace.time_compression=2", "scenario.workload.trace.rate_scale=0.05"],
        "timestamps": ["scenario=azure_conv", f"scenario.duration_s={1.5 * WINDOW_S}",
                       "scenario.workload.trace.time_compression=0.1", "scenario.workload.trace.rate_scale=0.5"],
        "rates": ["scenario=servegen_week", *long],
        "exponential": [*mmc_overrides(servers=2, rho=0.9, duration_s=1.5 * WINDOW_S)[:-2]],
    }[kind]


@pytest.mark.parametrize("kind", ["synthetic", "renewal", "onoff", "clients", "timestamps", "rates"])
def test_windows_replay_the_whole_array_requests(make_cfg, kind):
    cfg = make_cfg(*scenario(kind))
    whole = build_workload(cfg.scenario, cfg.seed)
    assert len(whole) > 1000 and whole.arrival_s[-1] > WINDOW_S  # more than one window is used
    source = request_source(cfg.scenario, cfg.seed)
    for _ in range(2):  # each replay yields the same requests
        batches = list(source.batches())
        assert len(batches) >= 2
        for name in ("arrival_s", "prompt_tokens", "output_tokens"):
            assert np.array_equal(np.concatenate([getattr(b, name) for b in batches]), getattr(whole, name))
        for batch in batches:  # each window holds the arrivals of its span, sorted
            k = int(batch.arrival_s[0] // WINDOW_S)
            assert np.all((batch.arrival_s >= k * WINDOW_S) & (batch.arrival_s < (k + 1) * WINDOW_S))
            assert np.all(np.diff(batch.arrival_s) >= 0)


def _worlds(cfg):
    """The app's two worlds: (world, policy, forecaster, field)."""
    return [(cfg.world, build(cfg.policy, "policy"), build(cfg.forecaster, "forecaster"), "world"),
            (cfg.baseline.world, StaticPolicy(cfg.baseline.replicas, field="baseline.replicas"),
             EWMAForecaster(alpha=1.0), "baseline.world")]


def _simulate(cfg, world, policy, forecaster, field, workload, **kwargs):
    return simulate_world(world, cfg.scenario, cfg.controller, policy, forecaster, workload, cfg.seed,
                          field=field, **kwargs)


def _exact_percentiles(requests: pd.DataFrame) -> dict[str, float]:
    served = requests[requests["outcome"] == "served"]
    out = {}
    for column, key, percents in (("latency_s", "latency/p{}_s", (50, 95, 99)),
                                  ("ttft_s", "latency/ttft_p{}_s", (50, 95, 99)),
                                  ("tpot_s", "latency/tpot_p{}_s", (50, 99))):
        values = served[column].dropna().to_numpy()
        for p in percents:
            out[key.format(p)] = float(np.percentile(values, p)) if len(values) else float("nan")
    return out


@pytest.mark.parametrize("kind, model", [("synthetic", "batching"), ("synthetic", "tokens"), ("renewal", "batching"),
                                         ("timestamps", "tokens"), ("exponential", "exponential")])
def test_streaming_world_equals_whole_array_world(make_cfg, kind, model):
    overrides = [*scenario(kind), "world.model.slots_per_replica=8"] if model == "tokens" else scenario(kind)
    cfg = make_cfg(*overrides, *([f"world.model.service_model={model}"] if model == "tokens" else []))
    assert cfg.world.model.service_model == model
    whole, source = build_workload(cfg.scenario, cfg.seed), request_source(cfg.scenario, cfg.seed)
    world, policy, forecaster, field = _worlds(cfg)[0]
    kept = _simulate(cfg, world, policy, forecaster, field, whole, record_requests=True)
    streamed = _simulate(cfg, *_worlds(cfg)[0], source, record_requests=False)
    assert streamed.requests is None and len(kept.requests) == len(whole) > 1000
    pd.testing.assert_frame_equal(kept.ticks, streamed.ticks, check_exact=True)
    assert json.dumps(kept.decisions, default=str) == json.dumps(streamed.decisions, default=str)
    assert kept.summary.keys() == streamed.summary.keys()
    for key, value in kept.summary.items():
        assert value == streamed.summary[key] or (value != value and streamed.summary[key] != streamed.summary[key]), key
    # The summary's percentiles and means are the exact ones of the request table.
    assert kept.summary["latency/p99_s"] == _exact_percentiles(kept.requests)["latency/p99_s"]
    served = kept.requests["outcome"] == "served"
    assert kept.summary["requests/served"] == int(served.sum())
    assert kept.summary["latency/mean_s"] == kept.requests["latency_s"][served].mean()


@pytest.mark.parametrize("kind, model", [("synthetic", "batching"), ("exponential", "exponential")])
def test_past_the_exact_limit_percentiles_are_within_the_histogram_error(make_cfg, monkeypatch, kind, model):
    cfg = make_cfg(*scenario(kind))
    kept = _simulate(cfg, *_worlds(cfg)[0], build_workload(cfg.scenario, cfg.seed), record_requests=True)
    monkeypatch.setattr(metrics, "EXACT_VALUES", 1000)
    streamed = _simulate(cfg, *_worlds(cfg)[0], request_source(cfg.scenario, cfg.seed), record_requests=False)
    assert kept.summary["requests/served"] > 10 * metrics.EXACT_VALUES
    pd.testing.assert_frame_equal(kept.ticks, streamed.ticks, check_exact=True)
    exact = _exact_percentiles(kept.requests)
    checked = 0
    for key, value in kept.summary.items():
        if key in exact and not np.isnan(value):
            assert value == exact[key]
            assert abs(streamed.summary[key] - value) <= DEFAULT_RELATIVE_ERROR * abs(value) * (1 + 1e-9), key
            checked += 1
        elif key.endswith("mean_s"):
            assert streamed.summary[key] == pytest.approx(value, rel=1e-12), key
        elif key not in exact:
            assert value == streamed.summary[key] or (value != value and streamed.summary[key] != streamed.summary[key]), key
    assert checked >= (8 if model != "exponential" else 3)
    assert any(streamed.summary[key] != kept.summary[key] for key in exact if not np.isnan(kept.summary[key]))


@pytest.mark.parametrize("kind", ["synthetic", "timestamps"])
def test_the_limit_read_as_the_world_runs_is_the_one_replayed_before_it(make_cfg, kind):
    # A world that reports the clairvoyant limit's cost sizes its ticks from the
    # windows it loads: one replay of the requests, not two, and the very plan a
    # replay of every request before the run (what a clairvoyant policy reads) gives.
    cfg = make_cfg(*scenario(kind))
    source = request_source(cfg.scenario, cfg.seed)
    replays = []

    def counted():
        replays.append(1)
        return source.batches()

    counting = RequestSource(counted, source.profile, source.duration_s, sizes_from_trace=source.sizes_from_trace)
    world, policy, forecaster, field = _worlds(cfg)[0]
    assert not policy.clairvoyant
    result = _simulate(cfg, world, policy, forecaster, field, counting, record_requests=False)
    # a timestamps trace's prior reads its sizes once more, before the run
    assert len(replays) == (2 if source.sizes_from_trace else 1)
    before = policy_context(world, cfg.scenario, cfg.controller, source, cfg.seed, oracle=True).future.plan
    usd_per_replica_s = world.model.gpus_per_replica * world.model.usd_per_gpu_hour / 3600.0
    assert oracle_summary(before, usd_per_replica_s, result.summary["cost/usd"]) == {
        key: result.summary[key] for key in ("cost/oracle_usd", "cost/oracle_ratio", "oracle/infeasible_ticks")}
    assert 0 < result.summary["cost/oracle_usd"] <= result.summary["cost/usd"]


def test_two_readers_read_every_window_in_order_and_hold_it_only_until_both_have():
    class Window:  # an object a weak reference can watch
        def __init__(self, number):
            self.number = number

    made = []

    def windows():
        for number in range(200):  # more than itertools.tee's blocks of 57
            made.append(weakref.ref(window := Window(number)))
            yield window

    world, limit = two_readers(windows())
    seen_world, seen_limit = [], []
    for step in range(200):
        seen_world.append(next(world).number)
        if step % 3 == 0:  # the limit lags a few windows, then catches up
            while len(seen_limit) < len(seen_world):
                seen_limit.append(next(limit).number)
        # (no cycles: a window goes as its last reference does)
        # held: what the limit has not read yet, and the newest window (the generator's own)
        alive = {ref().number for ref in made if ref() is not None}
        assert alive == set(range(len(seen_limit), len(seen_world))) | {len(seen_world) - 1}
    seen_limit += [window.number for window in limit]
    assert seen_world == seen_limit == list(range(200))
    assert next(world, None) is None


def test_a_streaming_world_holds_only_the_requests_in_flight(make_cfg, monkeypatch):
    held = []
    retire = RequestStore.retire

    def measured(store):
        held.append(len(store.arrival))
        return retire(store)

    monkeypatch.setattr(RequestStore, "retire", measured)
    cfg = make_cfg(*scenario("synthetic"))
    result = _simulate(cfg, *_worlds(cfg)[0], request_source(cfg.scenario, cfg.seed), record_requests=False)
    total = result.summary["requests/total"]
    per_tick = result.ticks["arrivals"].max()
    assert total > 50 * per_tick  # a long run against a tick's arrivals
    assert max(held) <= 3 * per_tick  # the next tick's arrivals and those in flight, not the run


def test_retired_rows_of_one_window_are_slices_of_it_and_rows_across_windows_are_joined():
    # Retiring hands a tick's rows over as a slice of the window they were loaded
    # from (no copy), and joins them only across a window's edge.
    first = {"arrival": np.arange(0.0, 10.0), "service": np.full(10, 2.0)}
    second = {"arrival": np.arange(10.0, 20.0), "service": np.full(10, 3.0)}
    store = RequestStore([first, second])
    store.load_until(15.0)  # requests 0-14: all of the first window, half of the second
    store.finish_s[:8] = [1.0] * 8  # requests 0-7 finished
    rows = store.retire()
    assert rows["arrival"].tolist() == list(range(8))
    assert np.shares_memory(rows["arrival"], first["arrival"]) and np.shares_memory(rows["service"], first["service"])
    store.finish_s[:7] = [1.0] * 7  # requests 8-14
    rows = store.retire()
    assert rows["arrival"].tolist() == list(range(8, 15))
    assert rows["service"].tolist() == [2.0] * 2 + [3.0] * 5
    assert not np.shares_memory(rows["arrival"], first["arrival"])
    assert store.base == 15 and store.loaded == 15


def test_a_streaming_world_with_its_limit_holds_at_most_two_windows(make_cfg, monkeypatch):
    # Memory that does not grow with the run: the world and the clairvoyant limit
    # read the same windows, and neither may keep the ones both have passed.
    class Window(dict):  # a window a weak reference can watch
        pass

    made, most = [], [0]
    windows = simulation.world_windows

    def watched(*args):
        for window in windows(*args):
            made.append(weakref.ref(window := Window(window)))
            yield window

    def on_tick(now):
        most[0] = max(most[0], sum(ref() is not None for ref in made))

    monkeypatch.setattr(simulation, "world_windows", watched)
    cfg = make_cfg(f"scenario.duration_s={4.5 * WINDOW_S}", "scenario.workload.base_rate_rps=0.5")
    result = _simulate(cfg, *_worlds(cfg)[0], request_source(cfg.scenario, cfg.seed), record_requests=False,
                       on_tick=on_tick)
    assert len(made) == 5 and result.summary["cost/oracle_usd"] > 0
    assert most[0] <= 2  # the window being served, and the next one at its edge


def test_requests_file_is_written_in_row_groups_and_holds_the_whole_table(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(request_files, "ROW_GROUP_ROWS", 4096)
    cfg = make_cfg("scenario.duration_s=7200", "output.requests=true", "run.workers=1")
    run(cfg, tmp_path / "run")
    path = tmp_path / "run" / "requests.parquet"
    assert pq.ParquetFile(path).num_row_groups >= 6
    # The table as it was written before: each world's whole request table, labelled, candidate first.
    whole = build_workload(cfg.scenario, cfg.seed)
    frames = []
    for (world, policy, forecaster, field), role in zip(_worlds(cfg), ("candidate", "baseline")):
        result = _simulate(cfg, world, policy, forecaster, field, whole, record_requests=True)
        frames.append(result.requests.assign(role=role, world=f"{world.name}/{policy.name}"))
    expected = tmp_path / "expected.parquet"
    pd.concat(frames).to_parquet(expected, index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(expected), check_exact=True)
    assert not list((tmp_path / "run").glob(".requests.*"))  # the worlds' parts were joined and removed
