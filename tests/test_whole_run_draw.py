"""The windows replay the run's draw, bit for bit.

A run's requests are *defined* as one pass over the seeded streams in
pieces that do not depend on the windows: NHPP thinning draws, slice after
slice, a Poisson count, the slice's candidate times, then their acceptance
draws; a renewal process draws blocks of gaps; request sizes draw, block
after block, the block's prompts, then its outputs. These tests write that
definition out in a few lines and check that the windowed replay of
:mod:`elastic_des.engine.windows` and :mod:`elastic_des.engine.arrivals`
gives the same numbers with short windows (shorter and longer than a slice,
not a multiple of it) and small chunks, so every path that a month-long run
takes (many windows, a slice across a window's edge, renewal blocks drawn
in chunks) is exercised on a small run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from elastic_des import rng as rng_streams
from elastic_des.engine import arrivals, windows
from elastic_des.engine.arrivals import OnOffRateProfile
from elastic_des.engine.distributions import (
    Exponential, Gamma, LogNormal, Uniform, Weibull, interarrival_distribution, make_distribution,
)
from elastic_des.engine.windows import ThinnedArrivals, window_edges
from elastic_des.engine.workload import SyntheticRateProfile, request_source


def whole_run_thinning(profile, slice_s: float, rng: np.random.Generator) -> np.ndarray:
    upper, kept, start = profile.upper_bound(), [], 0.0
    for k in range(int(math.ceil(profile.duration_s / slice_s))):
        start, end = k * slice_s, min((k + 1) * slice_s, profile.duration_s)
        count = rng.poisson(upper * (end - start))
        candidates = np.sort(rng.uniform(start, end, count))
        keep = rng.uniform(0.0, upper, count) < profile.rate(candidates)
        kept.append(candidates[keep])
    return np.concatenate(kept)


def whole_run_renewal(gaps, horizon: float, rng: np.random.Generator) -> np.ndarray:
    expected, chunks, end, first = horizon / gaps.mean, [], 0.0, True
    while end < horizon:
        draws = gaps.sample(rng, int(expected + 4.0 * math.sqrt(expected * (1.0 + gaps.scv)) + 16))
        if first:
            draws[0] *= rng.uniform()
            first = False
        points = end + np.cumsum(draws)
        chunks.append(points)
        end = float(points[-1])
        expected = max(1.0, (horizon - end) / gaps.mean)
    points = np.concatenate(chunks)
    return points[points < horizon]


def profile_of(make_cfg, *overrides, onoff: bool = False):
    cfg = make_cfg("scenario.duration_s=20000", "scenario.workload.base_rate_rps=3",
                   "scenario.workload.noise_cv=0.3", "scenario.workload.noise_window_s=300",
                   "scenario.workload.diurnal_period_s=7000", *overrides)
    profile = SyntheticRateProfile(cfg.scenario.workload, cfg.scenario.duration_s, rng_streams.stream(5, "rate_noise"))
    return OnOffRateProfile(profile, 400.0, 900.0, 6.0, rng_streams.stream(5, "modulation")) if onoff else profile


@pytest.mark.parametrize("window_s", [3000.0, 1500.0, 7000.0, 250.0, 1234.5])
@pytest.mark.parametrize("onoff", [False, True])
def test_thinning_windows_are_the_whole_run_draw(make_cfg, window_s, onoff):
    profile = profile_of(make_cfg, onoff=onoff)
    expected = whole_run_thinning(profile, windows.SLICE_S, rng_streams.stream(9, "arrivals"))
    replay = ThinnedArrivals(profile, lambda: rng_streams.stream(9, "arrivals"), window_s=window_s)
    assert replay.slice_s() == windows.SLICE_S
    windows_drawn = list(replay())
    assert len(windows_drawn) == len(window_edges(profile.duration_s, window_s)) >= 3
    assert len(expected) > 10_000
    assert np.array_equal(np.concatenate(windows_drawn), expected)
    for (start, end), arrivals_in in zip(window_edges(profile.duration_s, window_s), windows_drawn):
        assert np.all((arrivals_in >= start) & (arrivals_in < end))
    assert np.array_equal(np.concatenate(list(replay())), expected)  # a second replay is the same


@pytest.mark.parametrize("family, cv", [("gamma", 3.0), ("weibull", 2.0), ("exponential", 1.0)])
@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_renewal_chunks_are_the_whole_run_draw_and_move_the_generator_alike(monkeypatch, family, cv, chunk):
    monkeypatch.setattr(arrivals, "RENEWAL_CHUNK", chunk)
    gaps = interarrival_distribution(family, 0.5, cv, "gaps")
    for horizon in (3.0, 5000.0):  # a first block under the chunk and over it
        reference, replay = rng_streams.stream(3, "gaps"), rng_streams.stream(3, "gaps")
        expected = whole_run_renewal(gaps, horizon, reference)
        chunks = list(arrivals._renewal_points(gaps, horizon, replay))
        assert np.array_equal(np.concatenate(chunks), expected)
        assert replay.bit_generator.state == reference.bit_generator.state  # a shared generator moves on alike
        assert all(len(c) <= chunk for c in chunks)


@pytest.mark.parametrize("distribution", [Exponential(3.0), LogNormal(200.0, 1.5), Uniform(1.0, 9.0),
                                          Gamma(2.0, 0.5), Weibull(1.0, 0.7)], ids=type)
def test_distributions_draw_element_by_element(distribution):
    # What renewal blocks drawn in chunks rely on: drawing a + b values is drawing a, then b.
    whole, parts = rng_streams.stream(1, "sizes"), rng_streams.stream(1, "sizes")
    expected = distribution.sample(whole, 5000)
    drawn = np.concatenate([distribution.sample(parts, n) for n in (1, 999, 3000, 1000)])
    assert np.array_equal(drawn, expected)
    assert parts.bit_generator.state == whole.bit_generator.state


@pytest.mark.parametrize("block", [1000, 1 << 16])
def test_request_sizes_are_each_blocks_prompts_then_its_outputs(make_cfg, monkeypatch, block):
    monkeypatch.setattr(windows, "SIZE_BLOCK", block)
    cfg = make_cfg("scenario.duration_s=50000", "scenario.workload.base_rate_rps=1")
    batches = list(request_source(cfg.scenario, cfg.seed).batches())
    assert len(batches) >= 3
    prompts = np.concatenate([b.prompt_tokens for b in batches])
    outputs = np.concatenate([b.output_tokens for b in batches])
    assert len(prompts) > 10 * 1000
    sizes = rng_streams.stream(cfg.seed, "request_sizes")
    workload = cfg.scenario.workload
    prompt_dist = make_distribution(workload.prompt_tokens, "p")
    output_dist = make_distribution(workload.output_tokens, "o")
    expected_prompts, expected_outputs = [], []
    while sum(map(len, expected_prompts)) < len(prompts):
        expected_prompts.append(prompt_dist.sample(sizes, block))
        expected_outputs.append(output_dist.sample(sizes, block))
    expected_prompts = np.concatenate(expected_prompts)[:len(prompts)]
    expected_outputs = np.concatenate(expected_outputs)[:len(prompts)]
    assert np.array_equal(prompts, np.maximum(1.0, np.rint(expected_prompts)))
    assert np.array_equal(outputs, np.maximum(1.0, np.rint(expected_outputs)))


def test_request_sizes_taken_in_any_parts_are_the_sizes_taken_at_once(monkeypatch):
    monkeypatch.setattr(windows, "SIZE_BLOCK", 100)
    prompt, output = LogNormal(200.0, 1.5), Exponential(3.0)
    whole = windows.RequestSizes(prompt.sample, output.sample, rng_streams.stream(2, "sizes")).take(1234)
    parts = windows.RequestSizes(prompt.sample, output.sample, rng_streams.stream(2, "sizes"))
    taken = [parts.take(n) for n in (0, 1, 99, 100, 301, 733)]
    assert np.array_equal(np.concatenate([p for p, _ in taken]), whole[0])
    assert np.array_equal(np.concatenate([o for _, o in taken]), whole[1])
