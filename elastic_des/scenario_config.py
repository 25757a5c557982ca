"""Schemas of a scenario: its traffic (arrival process, request sizes, trace
replay), its length and its service-level objective. Part of the run config
(:mod:`elastic_des.config`); ``scenarios/*.yaml`` set their values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING


@dataclass
class DistributionConfig:
    """A non-negative random quantity, e.g. the prompt length of a request.

    kind: ``constant`` (always ``mean``), ``exponential`` (mean ``mean``),
    ``lognormal`` (mean ``mean``, coefficient of variation ``cv``) or
    ``uniform`` (between ``low`` and ``high``).
    """

    kind: str = "lognormal"
    mean: float = 1.0
    cv: float = 1.0
    low: float = 0.0
    high: float = 1.0


@dataclass
class SpikeConfig:
    """A flash crowd: the rate is multiplied by ``multiplier`` during
    ``[start_s, start_s + duration_s)``."""

    start_s: float = MISSING
    duration_s: float = MISSING
    multiplier: float = MISSING


@dataclass
class TraceConfig:
    """Replay of a real trace instead of the synthetic rate profile.

    format: ``timestamps`` (one row per request: its arrival time and its
    prompt and output token counts, in the columns set below; or its
    arrival time only, the sizes drawn), ``rates``
    (per-window aggregate rates, ServeGen columns
    ``window_start_s, total_rate_rps``; arrivals are sampled from them) or
    ``clients`` (ServeGen per-client rates, inter-arrival CVs and families,
    ``window_start_s, client, rate_rps, interarrival_cv, family``; replayed
    as a mixture of renewal processes).
    path: a CSV file (``.csv``, ``.csv.gz``); for ``timestamps`` also JSON
    Lines (``.jsonl``, ``.jsonl.gz``: one object per line, the column names
    below are its keys). A bare file name is looked up in the traces shipped
    with the package. null: no trace, the synthetic profile.
    time_compression: play the trace this many times faster (the same
    requests in 1/x of the time, so the rate rises x-fold).
    rate_scale: multiply the request rate (after compression) by this.
    start_s: skip this much trace time (before compression) at the start.

    Only for ``timestamps`` (other formats refuse them), the layout of the
    file; other columns are ignored:
    time_column, prompt_column, output_column: the columns (JSON keys)
    holding each request's arrival time, prompt tokens and output tokens,
    or ``auto`` (the default): the file's one column named as a known public
    LLM trace names it, ignoring case, spaces, underscores and hyphens
    (:data:`elastic_des.engine.request_columns.COLUMN_ALIASES`). Time: TIMESTAMP
    (Azure 2023 and 2024; BurstGPT's Timestamp, Mooncake's timestamp),
    arrival_time, arrival_timestamp, time, ts, created_at, start_time.
    Prompt: ContextTokens (Azure), Request tokens (BurstGPT), input_length
    (Mooncake), prompt_tokens, input_tokens, prompt_len, input_len,
    prompt_length, num_prompt_tokens. Output: GeneratedTokens, Response
    tokens, output_length, output_tokens, completion_tokens, output_len,
    num_output_tokens. No such column, or two, fail the run naming the
    columns found: then name the column. ``prompt_column`` or
    ``output_column`` null: the trace has no such counts; each request's
    size is drawn from ``scenario.workload.prompt_tokens`` /
    ``output_tokens`` (the arrivals still are the trace's). The time column
    cannot be null.
    time_unit: ``datetime`` (ISO-8601, e.g. ``2023-11-16 18:17:03.979``),
    ``s``, ``ms`` or ``us`` (numbers in seconds, milliseconds,
    microseconds: BurstGPT ``s``, Mooncake ``ms``), or ``auto``: datetimes
    if the first request's time is not a plain number; numbers in
    milliseconds for Mooncake's columns (``timestamp, input_length,
    output_length``), in milliseconds or microseconds for Unix times that
    large (from 1e11 and 1e14 on), else in seconds. run.log says which unit
    ``auto`` took. Only differences matter: the first request arrives at t = 0.
    """

    path: Optional[str] = None
    format: str = "timestamps"
    time_compression: float = 1.0
    rate_scale: float = 1.0
    start_s: float = 0.0
    time_column: Optional[str] = "auto"
    prompt_column: Optional[str] = "auto"
    output_column: Optional[str] = "auto"
    time_unit: str = "auto"


@dataclass
class ArrivalConfig:
    """How arrivals follow the rate profile (synthetic or a ``rates`` trace).

    process: ``poisson`` (an NHPP, the default); ``renewal`` (inter-arrival
    times of ``family`` ``gamma``, ``weibull`` or ``exponential`` with
    coefficient of variation ``cv``, time-changed to follow the rate);
    ``onoff`` (a Markov-modulated Poisson process: exponential ON and OFF
    periods of mean ``on_mean_s`` and ``off_mean_s``, the ON rate
    ``burst_ratio`` times the OFF rate, the mean rate unchanged).
    See :mod:`elastic_des.engine.arrivals`. A ``timestamps`` trace brings its
    own arrivals and a ``clients`` trace its own families: both need
    ``poisson`` here.
    """

    process: str = "poisson"
    family: str = "gamma"
    cv: float = 1.0
    on_mean_s: float = 60.0
    off_mean_s: float = 240.0
    burst_ratio: float = 5.0


@dataclass
class WorkloadConfig:
    """Arrivals: a non-homogeneous Poisson process with rate

    ``base_rate_rps * diurnal(t) * weekly(t) * trend(t) * spikes(t) * noise(t)``

    where diurnal and weekly are ``1 + amplitude * cos(2π (t - peak) / period)``,
    trend is ``1 + trend_per_hour * t / 3600``, and noise is a piecewise
    constant log-normal factor with mean 1 redrawn every ``noise_window_s``.
    If ``trace.path`` is set, the trace replaces the synthetic profile.
    ``arrivals`` makes them bursty (renewal or on/off; default Poisson).
    """

    base_rate_rps: float = 10.0
    diurnal_amplitude: float = 0.0
    diurnal_period_s: float = 86_400.0
    diurnal_peak_s: float = 50_400.0  # 14:00, the daily peak
    weekly_amplitude: float = 0.0
    weekly_peak_s: float = 259_200.0  # mid-week
    trend_per_hour: float = 0.0
    spikes: list[SpikeConfig] = field(default_factory=list)
    noise_cv: float = 0.0
    noise_window_s: float = 60.0
    prompt_tokens: DistributionConfig = field(
        default_factory=lambda: DistributionConfig(kind="lognormal", mean=1000.0, cv=1.0)
    )
    output_tokens: DistributionConfig = field(
        default_factory=lambda: DistributionConfig(kind="lognormal", mean=200.0, cv=1.0)
    )
    trace: TraceConfig = field(default_factory=TraceConfig)
    arrivals: ArrivalConfig = field(default_factory=ArrivalConfig)


@dataclass
class SLOConfig:
    """The service-level objective.

    A request meets the SLO if it meets every objective that is set (null:
    not an objective); dropped requests miss it.
    latency_s: end to end, from arrival to its last token (queue wait +
    service), in seconds.
    ttft_s: time to first token, from arrival to the end of its prefill
    (queue wait + prefill), in seconds. Needs a model with a prefill rate.
    tpot_s: time per output token after the first, ``(e2e - ttft) /
    (output_tokens - 1)``, in seconds (vLLM's TPOT); requests of one token
    meet it.
    target_compliance: the share of requests that must meet it (0.999 = 99.9%).
    """

    latency_s: Optional[float] = 30.0
    ttft_s: Optional[float] = None
    tpot_s: Optional[float] = None
    target_compliance: float = 0.999


@dataclass
class ScenarioConfig:
    """A user-editable scenario: how long, what traffic, what objective."""

    name: str = MISSING
    description: str = ""
    duration_s: float = 86_400.0
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    slo: SLOConfig = field(default_factory=SLOConfig)
