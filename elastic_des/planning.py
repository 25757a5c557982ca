"""What a scenario asks of the simulator, known before anything is sampled.

:func:`planned_demand` reads a scenario config and returns the expected
number of requests, the peak and mean arrival rate and the number of
candidate arrivals the NHPP sampler draws (exact thinning draws at the
profile's upper bound), from the rate profile's deterministic factors (the
noise has mean 1) or from the trace file. The validation pass
(:mod:`elastic_des.validate`) uses it to refuse a run that cannot fit in
memory before it allocates anything, and to warn about an overload the
fleet cannot absorb.

:func:`memory_estimate_bytes` turns it into bytes. A run holds one window
of requests at a time (:mod:`elastic_des.engine.windows`; its arrays, the
thinning candidates of a slice while it is drawn, at most
:data:`~elastic_des.engine.windows.DRAW_CHUNK`, the requests in flight), one row per
tick and decision, and, for a timestamps trace, the replayed trace whole;
the request table is written to disk as it goes. So a month at 50 req/s
(260M requests over both worlds) is estimated at well under 1 GB; the
figures were measured (``benchmarks/scale.py``, README) and err on the
safe side.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from elastic_des.engine.windows import DRAW_CHUNK, SLICE_S, WINDOW_S
from elastic_des.engine.traces import RequestColumns, load_aggregate_rates, load_request_trace
from elastic_des.engine.workload import run_rate_windows, validated_trace_path

# Peak resident bytes per request of the window being simulated, both worlds:
# the window's arrays and columns (engine.service.request_columns), the request
# rows and parquet buffers of the retired ones, the lists of those loaded.
BYTES_PER_WINDOW_REQUEST = 300.0
# Exact thinning holds, per candidate arrival: its time, a sorted copy, a uniform, its rate, the mask.
BYTES_PER_CANDIDATE = 40.0
# Per tick, both worlds: the tick rows, the candidate's decision records, the tick table.
BYTES_PER_TICK = 10_000.0
# Per request of a timestamps trace, held whole: the trace file's columns and the replay's arrays.
BYTES_PER_HELD_REQUEST = 200.0
# Points at which the synthetic profile's deterministic factors are evaluated (at most).
MAX_GRID = 200_000


@dataclass(frozen=True)
class Demand:
    """The arrivals a scenario plans: ``requests`` expected, ``candidates`` drawn by thinning."""

    requests: float
    candidates: float
    peak_rps: float
    mean_rps: float
    source: str  # the fields that set the volume, for messages
    held: bool = False  # every request is held at once (a timestamps trace)


def _synthetic(workload, duration_s: float) -> Demand:
    w = workload
    points = int(min(MAX_GRID, max(2.0, duration_s / 10.0)))
    t = np.linspace(0.0, duration_s, points, endpoint=False)
    rate = np.full_like(t, float(w.base_rate_rps))
    rate *= 1.0 + w.diurnal_amplitude * np.cos(2 * np.pi * (t - w.diurnal_peak_s) / w.diurnal_period_s)
    rate *= 1.0 + w.weekly_amplitude * np.cos(2 * np.pi * (t - w.weekly_peak_s) / (7 * 86_400.0))
    rate *= 1.0 + w.trend_per_hour * t / 3600.0
    spike_max = 1.0
    for spike in w.spikes:
        inside = (t >= spike.start_s) & (t < spike.start_s + spike.duration_s)
        rate[inside] *= spike.multiplier
        spike_max *= max(1.0, float(spike.multiplier))
    mean, peak = float(rate.mean()), float(rate.max())
    # The sampler's upper bound also covers the noise: about its 3-sigma factor.
    sigma = math.sqrt(math.log1p(w.noise_cv ** 2))
    noise_max = math.exp(3 * sigma - sigma ** 2 / 2)
    trend = max(1.0, 1.0 + w.trend_per_hour * duration_s / 3600.0)
    upper = w.base_rate_rps * (1 + w.diurnal_amplitude) * (1 + w.weekly_amplitude) * trend * spike_max * noise_max
    # The profile also holds one noise factor per window (and the sampler one rate per candidate).
    windows = duration_s / w.noise_window_s if w.noise_window_s > 0 else 0.0
    return Demand(mean * duration_s, upper * duration_s + windows, peak, mean,
                  f"scenario.workload.base_rate_rps = {w.base_rate_rps!r}, scenario.duration_s = {duration_s!r}")


def _trace(trace_cfg, duration_s: float) -> Demand:
    path = validated_trace_path(trace_cfg, "scenario.workload.trace")
    source = (f"scenario.workload.trace.rate_scale = {trace_cfg.rate_scale!r}, time_compression = "
              f"{trace_cfg.time_compression!r}, scenario.duration_s = {duration_s!r}")
    if trace_cfg.format == "timestamps":
        trace = load_request_trace(path, RequestColumns.of(trace_cfg))
        run_s = (trace.time_s[trace.time_s >= trace_cfg.start_s] - trace_cfg.start_s) / trace_cfg.time_compression
        run_s = run_s[run_s < duration_s]
        requests = len(run_s) * trace_cfg.rate_scale
        per_minute = np.bincount((run_s // 60.0).astype(int)) if len(run_s) else np.zeros(1)
        peak = float(per_minute.max()) / 60.0 * trace_cfg.rate_scale
        return Demand(requests, requests, peak, requests / duration_s, source, held=True)
    rate_trace = load_aggregate_rates(path, trace_cfg.format)
    window_s, rates = run_rate_windows(rate_trace, trace_cfg, duration_s, "scenario.workload.trace")
    covered = rates[:int(math.ceil(duration_s / window_s))]
    requests = float(covered.sum() * window_s)
    return Demand(requests, float(covered.max()) * duration_s, float(covered.max()), requests / duration_s, source)


def planned_demand(scenario) -> Demand:
    """The arrivals of ``scenario`` (a validated-range ``ScenarioConfig``), without sampling."""
    workload = scenario.workload
    if workload.trace.path is not None:
        return _trace(workload.trace, float(scenario.duration_s))
    return _synthetic(workload, float(scenario.duration_s))


def window_requests(demand: Demand, duration_s: float) -> float:
    """Requests of the busiest window: at most the peak rate for a window's length."""
    return min(demand.requests, demand.peak_rps * min(WINDOW_S, duration_s))


def memory_estimate_bytes(demand: Demand, duration_s: float, tick_s: float) -> float:
    """Peak bytes a run of ``demand`` over ``duration_s`` with ticks of ``tick_s`` holds; see the module docs."""
    held_candidates = min(demand.candidates * min(1.0, SLICE_S / duration_s), float(DRAW_CHUNK))
    ticks = duration_s / tick_s if tick_s > 0 else 0.0
    return (window_requests(demand, duration_s) * BYTES_PER_WINDOW_REQUEST
            + held_candidates * BYTES_PER_CANDIDATE + ticks * BYTES_PER_TICK
            + (demand.requests * BYTES_PER_HELD_REQUEST if demand.held else 0.0))


def default_memory_limit_gb() -> float:
    """80% of this machine's physical memory, in GB (10^9 bytes)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8e9
    return 0.8 * total / 1e9
