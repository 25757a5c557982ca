"""Request arrivals and sizes: synthetic rate profiles and trace replay.

Arrivals are a non-homogeneous Poisson process (NHPP) sampled by exact
thinning (Lewis & Shedler 1979): candidates from a homogeneous process at a
rate ``upper`` that bounds the profile everywhere, each kept with
probability ``rate(t) / upper``; or one of the bursty processes of
:mod:`elastic_des.engine.arrivals`. :func:`request_source` gives a run's
requests as a replay from the seeded streams, a window of simulated time at
a time (:mod:`elastic_des.engine.windows`), which is what lets both worlds of
a dual-world run replay the very same requests without holding them all;
:func:`build_workload` holds them whole, as the concatenation of the same
windows.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from elastic_des import rng as rng_streams
from elastic_des.engine.arrivals import OnOffRateProfile, client_mixture_chunks, renewal_chunks
from elastic_des.engine.distributions import INTERARRIVAL_FAMILIES, WEIBULL_MIN_CV, LogNormal, make_distribution
from elastic_des.errors import ConfigError, require, require_non_negative, require_positive
from elastic_des.engine.windows import (
    RequestBatch, RequestSizes, RequestSource, SizedRequests, ThinnedArrivals, concatenate, fixed_windows, sliced,
)
from elastic_des.engine.traces import (
    RateTrace,
    RequestColumns,
    load_client_trace,
    load_rate_trace,
    load_request_trace,
    resolve_trace_path,
)

log = logging.getLogger(__name__)

TRACE_FORMATS = ("timestamps", "rates", "clients")
ARRIVAL_PROCESSES = ("poisson", "renewal", "onoff")

GRID_S = 10.0  # resolution at which profiles report their peak and mean


class RateProfile:
    """A request rate ``rate(t)`` in req/s over ``[0, duration_s)``."""

    duration_s: float

    def rate(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def upper_bound(self) -> float:
        """A rate that ``rate(t)`` never exceeds (needed for exact thinning)."""
        raise NotImplementedError

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(0.0, self.duration_s, GRID_S)
        return t, self.rate(t)

    @property
    def peak_rps(self) -> float:
        return float(self.grid()[1].max())

    @property
    def mean_rps(self) -> float:
        return float(self.grid()[1].mean())

    def peak_before(self, end_s: float) -> float:
        """The highest rate on the grid before ``end_s`` (the rate at t = 0 at least)."""
        t, rates = self.grid()
        return float(rates[: max(1, int(np.searchsorted(t, end_s)))].max())


class SyntheticRateProfile(RateProfile):
    """Base rate × diurnal × weekly × trend × spikes × noise (see WorkloadConfig)."""

    def __init__(self, cfg, duration_s: float, rng: np.random.Generator, field: str = "scenario.workload"):
        require_positive(f"{field}.base_rate_rps", cfg.base_rate_rps)
        for name in ("diurnal_amplitude", "weekly_amplitude"):
            value = getattr(cfg, name)
            require(0 <= value < 1, f"{field}.{name}", value, "must be in [0, 1) so the rate stays positive")
        require_positive(f"{field}.diurnal_period_s", cfg.diurnal_period_s)
        require_non_negative(f"{field}.noise_cv", cfg.noise_cv)
        require_positive(f"{field}.noise_window_s", cfg.noise_window_s)
        end_trend = 1.0 + cfg.trend_per_hour * duration_s / 3600.0
        require(
            end_trend > 0,
            f"{field}.trend_per_hour",
            cfg.trend_per_hour,
            f"makes the rate negative before the end of the scenario ({duration_s:g} s)",
        )
        spikes = []
        for i, spike in enumerate(cfg.spikes):
            require_non_negative(f"{field}.spikes[{i}].start_s", spike.start_s)
            require_positive(f"{field}.spikes[{i}].duration_s", spike.duration_s)
            require_positive(f"{field}.spikes[{i}].multiplier", spike.multiplier)
            spikes.append((float(spike.start_s), float(spike.start_s + spike.duration_s), float(spike.multiplier)))
        self.cfg = cfg
        self.duration_s = float(duration_s)
        self.spikes = spikes
        windows = int(math.ceil(duration_s / cfg.noise_window_s)) + 1
        if cfg.noise_cv > 0:
            self.noise = LogNormal(1.0, cfg.noise_cv).sample(rng, windows)
        else:
            self.noise = np.ones(windows)

    def _spike_factor(self, t: np.ndarray) -> np.ndarray:
        factor = np.ones_like(t)
        for start, end, multiplier in self.spikes:
            factor[(t >= start) & (t < end)] *= multiplier
        return factor

    def rate(self, t: np.ndarray) -> np.ndarray:
        c = self.cfg
        t = np.asarray(t, dtype=float)
        value = np.full_like(t, c.base_rate_rps)
        value *= 1.0 + c.diurnal_amplitude * np.cos(2 * np.pi * (t - c.diurnal_peak_s) / c.diurnal_period_s)
        value *= 1.0 + c.weekly_amplitude * np.cos(2 * np.pi * (t - c.weekly_peak_s) / (7 * 86_400.0))
        value *= 1.0 + c.trend_per_hour * t / 3600.0
        value *= self._spike_factor(t)
        value *= self.noise[(t // c.noise_window_s).astype(int)]
        return value

    def upper_bound(self) -> float:
        c = self.cfg
        trend = max(1.0, 1.0 + c.trend_per_hour * self.duration_s / 3600.0)
        # The spike factor is piecewise constant: its maximum is reached at a spike start.
        starts = np.array([s for s, _, _ in self.spikes] or [0.0])
        spike = float(self._spike_factor(starts).max()) if self.spikes else 1.0
        return c.base_rate_rps * (1 + c.diurnal_amplitude) * (1 + c.weekly_amplitude) * trend * max(spike, 1.0) * float(self.noise.max())


class PiecewiseRateProfile(RateProfile):
    """Rates constant over equal windows, e.g. a ServeGen trace."""

    def __init__(self, window_s: float, rates_rps: np.ndarray, duration_s: float):
        self.window_s = float(window_s)
        self.rates_rps = np.asarray(rates_rps, dtype=float)
        self.duration_s = float(duration_s)

    def rate(self, t: np.ndarray) -> np.ndarray:
        index = np.minimum((np.asarray(t) // self.window_s).astype(int), len(self.rates_rps) - 1)
        return self.rates_rps[index]

    def upper_bound(self) -> float:
        return float(self.rates_rps.max())


@dataclass(frozen=True)
class Workload:
    """Every request of a run, as arrays sorted by arrival time.

    ``profile`` is the rate the arrivals were drawn from (for a timestamp
    trace, the empirical rate per minute); controllers never see it, only
    sizing helpers and plots do. ``sizes_from_trace``: the request sizes
    are (at least in part: the prompt or the output tokens) a trace's own,
    so the configured distributions do not describe them and the planners'
    prior comes from the requests themselves
    (:func:`~elastic_des.engine.service.service_prior`).
    ``read_ahead``: every request is known before the run (all workloads
    built here); a workload generated while the run goes (``False``) cannot
    feed a clairvoyant planner.
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    profile: RateProfile
    duration_s: float
    sizes_from_trace: bool = False
    read_ahead: bool = True

    def __len__(self) -> int:
        return len(self.arrival_s)

    def batches(self) -> Iterator[RequestBatch]:
        """The requests in the windows of :mod:`elastic_des.engine.windows`."""
        return sliced(RequestBatch(self.arrival_s, self.prompt_tokens, self.output_tokens), self.duration_s)


def _token_counts(values: np.ndarray) -> np.ndarray:
    # Token counts are whole and a request has at least one token.
    return np.maximum(1.0, np.rint(values))


def _replay_timestamps(trace_cfg, path, duration_s: float, rng: np.random.Generator, field: str):
    """The replayed arrivals, their sizes from the trace (None for a size
    whose column is null) and the empirical rate profile. Logs the columns
    ``auto`` picked, so the run's log says what was read."""
    columns = RequestColumns.of(trace_cfg)
    trace = load_request_trace(path, columns, field)
    picks = columns.picks(trace.columns)
    if picks:
        # The span too: a time unit misread shows as a trace hours (or weeks) off its length.
        span = float(trace.time_s[-1]) if len(trace.time_s) else 0.0
        log.info("%s.path = %r: 'auto' reads %s; %d requests over %.6g s", field, trace_cfg.path,
                 ", ".join(f"{name} = {value!r}" for name, value in picks.items()), len(trace.time_s), span)
    keep = trace.time_s >= trace_cfg.start_s
    time_s = (trace.time_s[keep] - trace_cfg.start_s) / trace_cfg.time_compression
    scale = trace_cfg.rate_scale
    # rate_scale = k + f: every request k times, plus once more with probability f;
    # copies are spread uniformly over the gap to the next request so they do not
    # arrive as an artificial batch.
    copies = np.floor(scale).astype(int) + (rng.uniform(size=len(time_s)) < scale - np.floor(scale))
    index = np.repeat(np.arange(len(time_s)), copies)
    gaps = np.diff(time_s, append=time_s[-1] if len(time_s) else 0.0)
    first = np.r_[True, index[1:] != index[:-1]] if len(index) else np.empty(0, bool)
    offsets = np.where(first, 0.0, rng.uniform(size=len(index)) * gaps[index])
    arrival = time_s[index] + offsets
    order = np.argsort(arrival, kind="stable")
    arrival, index = arrival[order], index[order]
    inside = arrival < duration_s
    arrival, index = arrival[inside], index[inside]
    if len(arrival) == 0:
        raise ConfigError(
            f"{field}: no request of trace {path} arrives within the {duration_s:g} s scenario "
            f"(start_s = {trace_cfg.start_s!r}, time_compression = {trace_cfg.time_compression!r}, "
            f"rate_scale = {scale!r})"
        )
    counts = np.bincount((arrival // 60.0).astype(int), minlength=int(math.ceil(duration_s / 60.0)))
    profile = PiecewiseRateProfile(60.0, counts / 60.0, duration_s)
    prompt, output = (None if sizes is None else _token_counts(sizes[keep][index])
                      for sizes in (trace.prompt_tokens, trace.output_tokens))
    return arrival, prompt, output, profile


def validated_trace_path(trace_cfg, field: str) -> Path:
    """Check a ``TraceConfig`` at config path ``field``; return its file."""
    require_positive(f"{field}.time_compression", trace_cfg.time_compression)
    require_positive(f"{field}.rate_scale", trace_cfg.rate_scale)
    require_non_negative(f"{field}.start_s", trace_cfg.start_s)
    require(trace_cfg.format in TRACE_FORMATS, f"{field}.format", trace_cfg.format,
            f"must be one of {', '.join(TRACE_FORMATS)}")
    RequestColumns.of(trace_cfg).check(trace_cfg.format, field)
    return resolve_trace_path(trace_cfg.path, f"{field}.path")


def validate_arrivals(workload_cfg, field: str) -> None:
    """Check an ``ArrivalConfig`` (``field`` is its config path) against the workload it shapes."""
    cfg = workload_cfg.arrivals
    require(cfg.process in ARRIVAL_PROCESSES, f"{field}.process", cfg.process,
            f"must be one of {', '.join(ARRIVAL_PROCESSES)}")
    if cfg.process == "renewal":
        require(str(cfg.family).lower() in INTERARRIVAL_FAMILIES, f"{field}.family", cfg.family,
                f"must be one of {', '.join(INTERARRIVAL_FAMILIES)}")
        require(cfg.cv is not None and math.isfinite(cfg.cv) and cfg.cv > 0, f"{field}.cv", cfg.cv,
                "must be a finite number > 0")
        if str(cfg.family).lower() == "weibull":
            require(cfg.cv >= WEIBULL_MIN_CV, f"{field}.cv", cfg.cv, f"must be >= {WEIBULL_MIN_CV} for weibull")
    if cfg.process == "onoff":
        require_positive(f"{field}.on_mean_s", cfg.on_mean_s)
        require_positive(f"{field}.off_mean_s", cfg.off_mean_s)
        require(cfg.burst_ratio is not None and math.isfinite(cfg.burst_ratio) and cfg.burst_ratio >= 1,
                f"{field}.burst_ratio", cfg.burst_ratio, "must be a finite number >= 1 (ON rate / OFF rate)")
    trace_format = workload_cfg.trace.format if workload_cfg.trace.path is not None else None
    if trace_format in ("timestamps", "clients"):
        require(cfg.process == "poisson", f"{field}.process", cfg.process,
                f"a {trace_format} trace brings its own arrival process; set 'poisson' (the default)")


def arrival_windows(cfg, profile: RateProfile, seed: int, field: str) -> tuple[Callable[[], Iterator[np.ndarray]], RateProfile]:
    """Arrivals following ``profile`` by ``cfg.process`` (a fresh replay of the
    windows per call), and the profile they follow (for on/off, the modulated one)."""
    if cfg.process == "renewal":
        def renewal():
            chunks = renewal_chunks(profile, cfg.family, cfg.cv, rng_streams.stream(seed, "arrivals"), f"{field}.family")
            return fixed_windows(chunks, profile.duration_s)
        return renewal, profile
    if cfg.process == "onoff":
        profile = OnOffRateProfile(profile, cfg.on_mean_s, cfg.off_mean_s, cfg.burst_ratio,
                                   rng_streams.stream(seed, "arrival_modulation"))
    return ThinnedArrivals(profile, lambda: rng_streams.stream(seed, "arrivals")), profile


def _trace_windows(trace_cfg, trace_windows: int, window_s: float, duration_s: float, field: str) -> int:
    """The first trace window of the run; checks the trace covers the scenario."""
    first = int(trace_cfg.start_s // window_s)
    require(first < trace_windows, f"{field}.start_s", trace_cfg.start_s,
            f"must be within the trace ({trace_windows * window_s:g} s)")
    run_window = window_s / trace_cfg.time_compression
    covered = (trace_windows - first) * run_window
    require(covered >= duration_s, f"{field}.time_compression", trace_cfg.time_compression,
            f"the trace covers {covered:g} s of the {duration_s:g} s scenario; compress more or shorten it")
    return first


def scaled_rate_windows(trace: RateTrace, trace_cfg) -> tuple[float, np.ndarray]:
    """A rate trace's window length and rates in run time: compressed, then scaled."""
    compression = trace_cfg.time_compression
    return trace.window_s / compression, trace.rate_rps * compression * trace_cfg.rate_scale


def run_rate_windows(trace: RateTrace, trace_cfg, duration_s: float, field: str) -> tuple[float, np.ndarray]:
    """The window length and rates of a rate trace from ``start_s`` on, in run
    time; the trace must cover the run (``field`` is the trace's config path)."""
    first = _trace_windows(trace_cfg, len(trace.rate_rps), trace.window_s, duration_s, field)
    window, all_rates = scaled_rate_windows(trace, trace_cfg)
    return window, all_rates[first:]


def request_source(scenario, seed: int) -> RequestSource:
    """Every request of ``scenario`` for run seed ``seed``, replayed window by
    window (:mod:`elastic_des.engine.windows`); checks the workload config."""
    field = "scenario.workload"
    cfg = scenario.workload
    duration_s = scenario.duration_s
    require_positive("scenario.duration_s", duration_s)
    prompt_dist = make_distribution(cfg.prompt_tokens, f"{field}.prompt_tokens")
    output_dist = make_distribution(cfg.output_tokens, f"{field}.output_tokens")

    def prompts(rng: np.random.Generator, n: int) -> np.ndarray:
        return _token_counts(prompt_dist.sample(rng, n))

    def outputs(rng: np.random.Generator, n: int) -> np.ndarray:
        return _token_counts(output_dist.sample(rng, n))

    def sized(arrival_windows: Callable[[], Iterator[np.ndarray]]) -> SizedRequests:
        return SizedRequests(arrival_windows, prompts, outputs, lambda: rng_streams.stream(seed, "request_sizes"))

    if cfg.trace.path is not None:
        trace_cfg = cfg.trace
        tfield = f"{field}.trace"
        path = validated_trace_path(trace_cfg, tfield)
        if trace_cfg.format == "timestamps":
            arrival, prompt, output, profile = _replay_timestamps(
                trace_cfg, path, duration_s, rng_streams.stream(seed, "trace_scaling"), tfield
            )
            # The trace's own sizes, held whole like the trace itself; a size
            # whose column is null is drawn for every replayed request, as
            # for synthetic arrivals.
            from_trace = prompt is not None or output is not None
            if prompt is None or output is None:
                drawn = RequestSizes(prompts, outputs, rng_streams.stream(seed, "request_sizes")).take(len(arrival))
                prompt = drawn[0] if prompt is None else prompt
                output = drawn[1] if output is None else output
            whole = Workload(arrival, prompt, output, profile, float(duration_s), sizes_from_trace=from_trace)
            return RequestSource(whole.batches, profile, duration_s, sizes_from_trace=from_trace)
        if trace_cfg.format == "clients":
            clients = load_client_trace(path)
            first = _trace_windows(trace_cfg, clients.windows, clients.window_s, duration_s, tfield)
            window, all_rates = scaled_rate_windows(clients.aggregate(), trace_cfg)
            profile: RateProfile = PiecewiseRateProfile(window, all_rates[first:], duration_s)

            def mixture() -> Iterator[np.ndarray]:
                chunks = client_mixture_chunks(clients, first, window, trace_cfg.rate_scale, duration_s,
                                               rng_streams.stream(seed, "arrivals"), tfield)
                return fixed_windows(chunks, duration_s)
            return RequestSource(sized(mixture), profile, duration_s)
        window, rates = run_rate_windows(load_rate_trace(path), trace_cfg, duration_s, tfield)
        profile = PiecewiseRateProfile(window, rates, duration_s)
    else:
        profile = SyntheticRateProfile(cfg, duration_s, rng_streams.stream(seed, "rate_noise"), field)
    windows, profile = arrival_windows(cfg.arrivals, profile, seed, f"{field}.arrivals")
    return RequestSource(sized(windows), profile, duration_s)


def whole_workload(source: RequestSource) -> Workload:
    """Every request of ``source`` held as arrays: the concatenation of its windows."""
    parts = list(source.batches())
    columns = [concatenate(getattr(b, name) for b in parts) for name in ("arrival_s", "prompt_tokens", "output_tokens")]
    return Workload(*columns, source.profile, source.duration_s, sizes_from_trace=source.sizes_from_trace)


def build_workload(scenario, seed: int) -> Workload:
    """Sample (or replay) every request of ``scenario`` for run seed ``seed``, held whole."""
    return whole_workload(request_source(scenario, seed))
