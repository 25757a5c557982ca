"""The monitoring history a forecaster has before a run starts.

An operator's autoscaler does not start blind: its metrics store holds the
request rate of the previous days. :func:`warmup_history` makes that history
for a scenario, as the observed rate of each tick (arrivals counted over the
tick, divided by its length) over the ``days`` that end at the run's t = 0.

* Synthetic profile: the scenario's regular pattern (base rate, diurnal and
  weekly cycles in phase with the run, rate noise of the same ``noise_cv``)
  but not its events: flash crowds are not foreseeable and the trend starts
  at t = 0, so the days before are flat at the run's starting level. The
  noise and the arrival counts come from RNG streams of their own
  (``forecaster_warmup/...``), so the history never replays the run's draws.
* ``rates`` trace (or a ``clients`` trace, by its total rate): the trace
  windows that precede ``start_s``, compressed and scaled as in the run, with
  Poisson counts per tick.
* ``timestamps`` trace: the requests of the trace that precede ``start_s``,
  counted per tick (real observations: no sampling).

A trace that starts the run near its own beginning has less history than
asked for; the history is then shorter (possibly empty), never invented.
"""

from __future__ import annotations

import math

import numpy as np
from omegaconf import OmegaConf

from elastic_des import rng as rng_streams
from elastic_des.errors import require_non_negative, require_positive
from elastic_des.engine.traces import load_client_trace, load_rate_trace, load_request_trace
from elastic_des.engine.workload import (
    GRID_S,
    PiecewiseRateProfile,
    RateProfile,
    SyntheticRateProfile,
    scaled_rate_windows,
    validated_trace_path,
)

DAY_S = 86_400.0


def warmup_history(scenario, tick_s: float, seed: int, days: float) -> np.ndarray:
    """Observed rates (req/s) of the ticks in the ``days`` before ``scenario`` starts.

    Oldest first; the last value is the tick that ends at the run's t = 0.
    """
    require_positive("controller.tick_s", tick_s)
    require_non_negative("warm-up days", days)
    ticks = int(math.floor(days * DAY_S / tick_s))
    if ticks == 0:
        return np.empty(0)
    workload = scenario.workload
    if workload.trace.path is None:
        profile = _synthetic_past(workload, ticks * tick_s, seed)
        return _poisson_rates(profile, tick_s, ticks, rng_streams.stream(seed, "forecaster_warmup/counts"))
    trace_cfg = workload.trace
    path = validated_trace_path(trace_cfg, "scenario.workload.trace")
    if trace_cfg.format == "timestamps":
        return _counted_past(trace_cfg, path, ticks, tick_s)
    profile = _rate_trace_past(trace_cfg, path, ticks * tick_s)
    return _poisson_rates(profile, tick_s, ticks, rng_streams.stream(seed, "forecaster_warmup/counts"))


def _synthetic_past(workload, span_s: float, seed: int) -> SyntheticRateProfile:
    """The regular pattern over ``[-span_s, 0)`` of run time, on ``[0, span_s)``.

    History time ``u`` is run time ``u - span_s``: shifting each cycle's peak
    by ``span_s`` keeps the cycles in phase with the run.
    """
    past = OmegaConf.merge(workload, {
        "spikes": [],
        "trend_per_hour": 0.0,
        "diurnal_peak_s": workload.diurnal_peak_s + span_s,
        "weekly_peak_s": workload.weekly_peak_s + span_s,
    })
    noise = rng_streams.stream(seed, "forecaster_warmup/rate_noise")
    return SyntheticRateProfile(past, span_s, noise, field="scenario.workload")


def _rate_trace_past(trace_cfg, path, span_s: float) -> RateProfile:
    """The trace windows before the run's first one, at most ``span_s`` of run time.

    The run starts at the window that holds ``start_s`` (see
    :func:`elastic_des.engine.workload.build_workload`), so the history ends there.
    """
    trace = load_rate_trace(path) if trace_cfg.format == "rates" else load_client_trace(path).aggregate()
    first = min(int(trace_cfg.start_s // trace.window_s), len(trace.rate_rps))
    window_s, rates = scaled_rate_windows(trace, trace_cfg)
    available = min(first, int(math.ceil(span_s / window_s)))
    return PiecewiseRateProfile(window_s, rates[first - available:first], available * window_s)


def _counted_past(trace_cfg, path, ticks: int, tick_s: float) -> np.ndarray:
    """Requests of a timestamp trace before ``start_s``, per tick of run time."""
    trace = load_request_trace(path)
    # Run time of each request: negative before the run starts.
    run_s = (trace.time_s - trace_cfg.start_s) / trace_cfg.time_compression
    available = min(ticks, int(math.floor(trace_cfg.start_s / trace_cfg.time_compression / tick_s)))
    if available == 0:
        return np.empty(0)
    edges = -tick_s * np.arange(available, -1, -1, dtype=float)
    counts, _ = np.histogram(run_s, bins=edges)
    # rate_scale multiplies the request rate in the run (by replicating requests).
    return counts * trace_cfg.rate_scale / tick_s


def _poisson_rates(profile: RateProfile, tick_s: float, ticks: int, rng: np.random.Generator) -> np.ndarray:
    """Observed rate per tick of an NHPP with ``profile.rate``: Poisson counts / tick_s.

    The ticks are laid back from the profile's end (the run's t = 0): at most
    ``ticks``, as many whole ones as fit. The count of a tick is Poisson with mean the integral
    of the rate over the tick, by the midpoint rule on a grid of at most ``GRID_S``.
    """
    ticks = min(ticks, int(math.floor(profile.duration_s / tick_s + 1e-9)))
    if ticks == 0:
        return np.empty(0)
    steps = max(1, int(math.ceil(tick_s / GRID_S)))
    starts = profile.duration_s - tick_s * np.arange(ticks, 0, -1, dtype=float)[:, None]
    t = starts + (np.arange(steps) + 0.5)[None, :] * (tick_s / steps)
    mean_rate = profile.rate(t.ravel()).reshape(ticks, steps).mean(axis=1)
    return rng.poisson(mean_rate * tick_s) / tick_s
