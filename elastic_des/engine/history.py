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
asked for. ``trace_warmup`` says what then:

* ``preceding``: only what precedes ``start_s``; the history is shorter
  (possibly empty), never invented.
* ``repeat``: the span the run replays (its per-tick rates, as above),
  repeated back from t = 0 over the ``days`` asked for, as if the same
  traffic had come each previous period. A forecaster trained on it has seen
  the very series it then forecasts: an optimistic warm-up, stated in the
  log line, to use when a short trace has nothing before it.
* ``auto`` (default): ``preceding`` when any of the trace precedes
  ``start_s``, else ``repeat``.

To warm up on the trace's own first part instead, set
``scenario.workload.trace.start_s``: what precedes it becomes the history.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from elastic_des import rng as rng_streams
from elastic_des.errors import require, require_non_negative, require_positive
from elastic_des.engine.traces import RequestColumns, load_aggregate_rates, load_request_trace
from elastic_des.engine.workload import (
    GRID_S,
    PiecewiseRateProfile,
    RateProfile,
    SyntheticRateProfile,
    scaled_rate_windows,
    validated_trace_path,
)

DAY_S = 86_400.0
TRACE_WARMUPS = ("auto", "preceding", "repeat")
# What a user can set when a learned forecaster gets too short a warm-up
# history: said alike by the validation pass and by the forecaster itself.
WARMUP_REMEDY = ("set controller.warmup_days (days of history before t = 0), controller.trace_warmup=repeat "
                 "(a trace with nothing before its start), scenario.workload.trace.start_s (learn from the "
                 "trace's first part), smaller forecaster.window_ticks / horizon_ticks, or forecaster.model_path")

log = logging.getLogger(__name__)


def warmup_history(scenario, tick_s: float, seed: int, days: float, trace_warmup: str = "auto") -> np.ndarray:
    """Observed rates (req/s) of the ticks in the ``days`` before ``scenario`` starts.

    Oldest first; the last value is the tick that ends at the run's t = 0.
    ``trace_warmup`` (``controller.trace_warmup``): see the module docstring.
    """
    require_positive("controller.tick_s", tick_s)
    require_non_negative("warm-up days", days)
    require(trace_warmup in TRACE_WARMUPS, "controller.trace_warmup", trace_warmup,
            f"must be one of {', '.join(TRACE_WARMUPS)}")
    ticks = int(math.floor(days * DAY_S / tick_s))
    if ticks == 0:
        return np.empty(0)
    workload = scenario.workload
    counts_rng = rng_streams.stream(seed, "forecaster_warmup/counts")
    if workload.trace.path is None:
        profile = _synthetic_past(workload, ticks * tick_s, seed)
        return _poisson_rates(profile, tick_s, ticks, counts_rng)
    trace_cfg = workload.trace
    path = validated_trace_path(trace_cfg, "scenario.workload.trace")
    history = np.empty(0)
    if trace_warmup != "repeat":
        if trace_cfg.format == "timestamps":
            history = _counted_past(trace_cfg, path, ticks, tick_s)
        else:
            history = _poisson_rates(_rate_trace_past(trace_cfg, path, ticks * tick_s), tick_s, ticks, counts_rng)
    if trace_warmup == "preceding" or len(history) > 0:
        return history
    span = _replayed_span(trace_cfg, path, float(scenario.duration_s), tick_s, counts_rng)
    if len(span) == 0:
        return span
    repeats = math.ceil(ticks / len(span))
    log.info("forecaster warm-up: nothing of the trace precedes start_s = %g s, so the history is the "
             "replayed %g s repeated %.3g times (controller.trace_warmup=repeat; =preceding starts blind, "
             "or set scenario.workload.trace.start_s to learn from the trace's first part)",
             trace_cfg.start_s, len(span) * tick_s, ticks / len(span))
    return np.tile(span, repeats)[-ticks:]


def _replayed_span(trace_cfg, path, duration_s: float, tick_s: float, rng: np.random.Generator) -> np.ndarray:
    """Observed rate per whole tick of the part of the trace the run replays."""
    if trace_cfg.format == "timestamps":
        trace = load_request_trace(path, RequestColumns.of(trace_cfg))
        run_s = (trace.time_s - trace_cfg.start_s) / trace_cfg.time_compression
        run_s = run_s[(run_s >= 0) & (run_s < duration_s)]
        span_s = min(duration_s, float(run_s.max()) if len(run_s) else 0.0)
        ticks = int(math.floor(span_s / tick_s))
        counts = np.bincount((run_s // tick_s).astype(int), minlength=ticks)[:ticks]
        return counts * trace_cfg.rate_scale / tick_s
    trace = load_aggregate_rates(path, trace_cfg.format)
    first = int(trace_cfg.start_s // trace.window_s)
    window_s, rates = scaled_rate_windows(trace, trace_cfg)
    windows = min(len(rates) - first, int(math.ceil(duration_s / window_s)))
    span_s = min(duration_s, windows * window_s)
    profile = PiecewiseRateProfile(window_s, rates[first:first + windows], span_s)
    return _poisson_rates(profile, tick_s, int(math.floor(span_s / tick_s)), rng)


class _Replaced:
    """``config`` read with some fields replaced. The profile only reads fields,
    and a config merge (OmegaConf's) would cost most of the warm-up."""

    def __init__(self, config, **fields):
        self._config = config
        self.__dict__.update(fields)

    def __getattr__(self, name):  # a field not replaced
        return getattr(self._config, name)


def _synthetic_past(workload, span_s: float, seed: int) -> SyntheticRateProfile:
    """The regular pattern over ``[-span_s, 0)`` of run time, on ``[0, span_s)``.

    History time ``u`` is run time ``u - span_s``: shifting each cycle's peak
    by ``span_s`` keeps the cycles in phase with the run.
    """
    past = _Replaced(workload, spikes=[], trend_per_hour=0.0, diurnal_peak_s=workload.diurnal_peak_s + span_s,
                     weekly_peak_s=workload.weekly_peak_s + span_s)
    noise = rng_streams.stream(seed, "forecaster_warmup/rate_noise")
    return SyntheticRateProfile(past, span_s, noise, field="scenario.workload")


def _rate_trace_past(trace_cfg, path, span_s: float) -> RateProfile:
    """The trace windows before the run's first one, at most ``span_s`` of run time.

    The run starts at the window that holds ``start_s`` (see
    :func:`elastic_des.engine.workload.build_workload`), so the history ends there.
    """
    trace = load_aggregate_rates(path, trace_cfg.format)
    first = min(int(trace_cfg.start_s // trace.window_s), len(trace.rate_rps))
    window_s, rates = scaled_rate_windows(trace, trace_cfg)
    available = min(first, int(math.ceil(span_s / window_s)))
    return PiecewiseRateProfile(window_s, rates[first - available:first], available * window_s)


def _counted_past(trace_cfg, path, ticks: int, tick_s: float) -> np.ndarray:
    """Requests of a timestamp trace before ``start_s``, per tick of run time."""
    trace = load_request_trace(path, RequestColumns.of(trace_cfg))
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
