"""The scenarios the agent trains on: a distribution, and held-out validation.

A table trained on one scenario has seen one scale, one shape and one
forecast slope; elsewhere its states are unseen. Training therefore draws
every episode from a distribution (domain randomisation):

* with probability ``1 - replay_share`` a synthetic scenario: a base rate
  log-uniform in ``rate_rps`` (0.5–100 req/s), a diurnal cycle of random
  amplitude, period and phase, a trend, 0–2 flash crowds of random size and
  length, rate noise whose window can be as short as a few seconds (a
  doubly-stochastic Poisson process: per-second counts over-dispersed, i.e.
  bursty arrivals) and request sizes scaled by ``size_scale``;
* otherwise a window of one of the ``replays`` (scenarios shipped in
  ``scenarios/``, e.g. the replays of the shipped traces).

Every episode's SLO target is ``slo_target``. The ``validation`` scenarios
are run whole, greedily, before and after training, and never trained on;
no scenario and no trace file may be in both sets.

:func:`validate_distribution` checks all of this, naming the field; it is
called by the one validation pass (:mod:`elastic_des.validate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from elastic_des.errors import ConfigError, require

SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "scenarios"

RANGES = ("rate_rps", "diurnal_amplitude", "diurnal_period_s", "trend_per_hour", "spikes", "spike_multiplier",
          "spike_duration_s", "noise_cv", "noise_window_s", "size_scale", "arrival_cv")


@dataclass
class ScenarioDistributionConfig:
    """The training distribution (see :mod:`elastic_des.agent.distribution`).
    Each range is ``[low, high]`` (low <= high), drawn uniformly unless noted.

    rate_rps: base rate, log-uniform. diurnal_amplitude, diurnal_period_s:
    the cycle (its phase is uniform over the period). trend_per_hour: the
    trend. spikes: how many flash crowds (an integer range), each
    ``spike_multiplier`` × for ``spike_duration_s``. noise_cv,
    noise_window_s: rate noise (short windows make arrivals bursty).
    size_scale: prompt and output token means are multiplied by it,
    log-uniform. renewal_share: share of synthetic episodes whose arrivals
    are a Gamma renewal process (``workload.arrivals.process: renewal``)
    with inter-arrival CV drawn log-uniform from ``arrival_cv``, so the agent
    meets bursts that rate noise alone does not make (real request logs show
    CVs of 2–8, ServeGen's clients and the Azure code trace's 13); the others
    are Poisson. replay_share: share of episodes that replay a window of one
    of ``replays``. validation: held-out scenarios, each run
    ``validation_seeds`` times. slo_target: the SLO target of every episode.
    """

    rate_rps: list[float] = field(default_factory=lambda: [0.5, 100.0])
    diurnal_amplitude: list[float] = field(default_factory=lambda: [0.0, 0.7])
    diurnal_period_s: list[float] = field(default_factory=lambda: [14_400.0, 86_400.0])
    trend_per_hour: list[float] = field(default_factory=lambda: [-0.15, 0.3])
    spikes: list[int] = field(default_factory=lambda: [0, 2])
    spike_multiplier: list[float] = field(default_factory=lambda: [1.5, 4.0])
    spike_duration_s: list[float] = field(default_factory=lambda: [300.0, 1800.0])
    noise_cv: list[float] = field(default_factory=lambda: [0.0, 0.5])
    noise_window_s: list[float] = field(default_factory=lambda: [5.0, 60.0])
    size_scale: list[float] = field(default_factory=lambda: [0.5, 2.0])
    renewal_share: float = 0.4
    arrival_cv: list[float] = field(default_factory=lambda: [1.5, 6.0])
    replay_share: float = 0.25
    replays: list[str] = field(default_factory=lambda: ["default", "servegen_week"])
    validation: list[str] = field(default_factory=lambda: ["flash_crowd", "azure_conv"])
    validation_seeds: int = 2
    slo_target: float = 0.999


def load_scenario(name: str, like: Any, field_name: str) -> DictConfig:
    """The shipped scenario ``scenarios/<name>.yaml`` on the schema of ``like``
    (a composed scenario); ConfigError naming ``field_name`` if there is none."""
    path = SCENARIO_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
        raise ConfigError(f"{field_name}: unknown scenario {name!r}; known: {known}")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    data.pop("defaults", None)
    schema = OmegaConf.get_type(like)
    base = OmegaConf.structured(schema) if schema is not None and schema is not dict else OmegaConf.create({})
    return OmegaConf.merge(base, data)


def _range(d: Any, name: str) -> tuple[float, float]:
    values = list(d[name])
    where = f"train.distribution.{name}"
    if len(values) != 2:
        raise ConfigError(f"{where} = {values}: must be a range [low, high] (empty or malformed)")
    low, high = (float(v) for v in values)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{where} = {values}: bounds must be finite")
    if low > high:
        raise ConfigError(f"{where} = {values}: inverted range (low > high)")
    return low, high


def validate_distribution(t: Any, scenario: Any) -> dict[str, DictConfig]:
    """Check ``t.distribution`` (``t`` the train group); returns the replay
    and validation scenarios by name, loaded on the schema of ``scenario``."""
    d = t.distribution
    ranges = {name: _range(d, name) for name in RANGES}
    positive = ("rate_rps", "diurnal_period_s", "spike_multiplier", "spike_duration_s", "noise_window_s", "size_scale",
                "arrival_cv")
    for name in positive:
        require(ranges[name][0] > 0, f"train.distribution.{name}", list(d[name]), "must be > 0")
    require(0 <= ranges["diurnal_amplitude"][0] and ranges["diurnal_amplitude"][1] < 1,
            "train.distribution.diurnal_amplitude", list(d.diurnal_amplitude), "must lie in [0, 1)")
    require(ranges["noise_cv"][0] >= 0, "train.distribution.noise_cv", list(d.noise_cv), "must be >= 0")
    require(ranges["spikes"][0] >= 0 and all(float(v).is_integer() for v in d.spikes), "train.distribution.spikes",
            list(d.spikes), "must be integers >= 0")
    require(1 + ranges["trend_per_hour"][0] * t.episode_s / 3600 > 0, "train.distribution.trend_per_hour",
            list(d.trend_per_hour), f"its low end makes the rate negative within train.episode_s = {t.episode_s:g}")
    require(0 <= d.renewal_share <= 1, "train.distribution.renewal_share", d.renewal_share, "must be in [0, 1]")
    require(0 <= d.replay_share <= 1, "train.distribution.replay_share", d.replay_share, "must be in [0, 1]")
    require(d.replay_share == 0 or len(d.replays) > 0, "train.distribution.replays", list(d.replays),
            "must name a scenario when replay_share > 0")
    require(len(d.validation) > 0, "train.distribution.validation", list(d.validation),
            "must name at least one held-out scenario")
    require(d.validation_seeds >= 1, "train.distribution.validation_seeds", d.validation_seeds, "must be >= 1")
    require(0 < d.slo_target < 1, "train.distribution.slo_target", d.slo_target, "must be in (0, 1)")
    overlap = sorted(set(d.replays) & set(d.validation))
    if overlap:
        raise ConfigError(f"train.distribution.validation = {list(d.validation)}: {overlap} also in "
                          "train.distribution.replays; validation scenarios must be held out from training")
    loaded = {}
    for group in ("replays", "validation"):
        for i, name in enumerate(d[group]):
            loaded[name] = load_scenario(name, scenario, f"train.distribution.{group}[{i}]")
    traces = {name: loaded[name].workload.trace.path for name in loaded if loaded[name].workload.trace.path}
    for name in d.validation:
        shared = [r for r in d.replays if name in traces and traces.get(r) == traces[name]]
        if shared:
            raise ConfigError(f"train.distribution.validation: {name!r} replays trace {traces[name]!r}, as "
                              f"training replay {shared[0]!r} does; validation must be unseen in training")
    return loaded


def draw_synthetic(d: Any, like: Any, duration_s: float, rng: np.random.Generator, name: str) -> dict:
    """One synthetic scenario of the distribution, as plain data on ``like``'s keys."""
    def uniform(key: str) -> float:
        low, high = (float(v) for v in d[key])
        return float(rng.uniform(low, high)) if high > low else low

    def log_uniform(key: str) -> float:
        low, high = (float(v) for v in d[key])
        return float(np.exp(rng.uniform(np.log(low), np.log(high)))) if high > low else low

    data = OmegaConf.to_container(like, resolve=True)
    data.update(name=name, description="drawn from train.distribution", duration_s=float(duration_s))
    period = uniform("diurnal_period_s")
    scale = log_uniform("size_scale")
    n_spikes = int(rng.integers(int(d.spikes[0]), int(d.spikes[1]) + 1))
    spikes = []
    for _ in range(n_spikes):
        length = min(uniform("spike_duration_s"), duration_s)
        spikes.append({"start_s": float(rng.uniform(0, duration_s - length)), "duration_s": length,
                       "multiplier": uniform("spike_multiplier")})
    w = data["workload"]
    w.update(base_rate_rps=log_uniform("rate_rps"), diurnal_amplitude=uniform("diurnal_amplitude"),
             diurnal_period_s=period, diurnal_peak_s=float(rng.uniform(0, period)), weekly_amplitude=0.0,
             trend_per_hour=uniform("trend_per_hour"), spikes=spikes, noise_cv=uniform("noise_cv"),
             noise_window_s=uniform("noise_window_s"))
    w["trace"]["path"] = None
    if rng.random() < float(d.renewal_share):
        w["arrivals"] = {**w["arrivals"], "process": "renewal", "family": "gamma", "cv": log_uniform("arrival_cv")}
    else:
        w["arrivals"] = {**w["arrivals"], "process": "poisson"}
    for key in ("prompt_tokens", "output_tokens"):
        w[key] = {**w[key], "mean": w[key]["mean"] * scale, "low": w[key]["low"] * scale,
                  "high": w[key]["high"] * scale}
    data["slo"]["target_compliance"] = float(d.slo_target)
    return data
