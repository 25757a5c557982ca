"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every knob of a run lives in one of these dataclasses; the YAML files under
``conf/`` and ``scenarios/`` only set values. Because the schemas are
structured configs, a YAML key that is not a field here (a typo such as
``base_rte``) is rejected when the config is composed, naming the key.

Units are part of the field names (``_s`` seconds, ``_rps`` requests per
second, ``usd_`` US dollars) so that a YAML reader never has to guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from elastic_des.agent.distribution import ScenarioDistributionConfig
from elastic_des.agent.policy import QLearningConfig
from elastic_des.forecasters.schemas import LSTMConfig, TCNConfig
from elastic_des.forecasters.simple import EWMAConfig, SeasonalNaiveConfig, SMAConfig
from elastic_des.policies.hpa import HPAConfig
from elastic_des.policies.kpa import KPAConfig
from elastic_des.policies.predictive import PredictiveConfig
from elastic_des.policies.static import StaticConfig
from elastic_des.policies.threshold import ThresholdConfig


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

    format: ``timestamps`` (one row per request, Azure LLM inference 2023
    columns ``TIMESTAMP, ContextTokens, GeneratedTokens``) or ``rates``
    (per-window aggregate rates, ServeGen columns
    ``window_start_s, total_rate_rps``; arrivals are sampled from them).
    path: a CSV file; a bare file name is looked up in the traces shipped
    with the package. null: no trace, the synthetic profile.
    time_compression: play the trace this many times faster (the same
    requests in 1/x of the time, so the rate rises x-fold).
    rate_scale: multiply the request rate (after compression) by this.
    start_s: skip this much trace time (before compression) at the start.
    """

    path: Optional[str] = None
    format: str = "timestamps"
    time_compression: float = 1.0
    rate_scale: float = 1.0
    start_s: float = 0.0


@dataclass
class WorkloadConfig:
    """Arrivals: a non-homogeneous Poisson process with rate

    ``base_rate_rps * diurnal(t) * weekly(t) * trend(t) * spikes(t) * noise(t)``

    where diurnal and weekly are ``1 + amplitude * cos(2π (t - peak) / period)``,
    trend is ``1 + trend_per_hour * t / 3600``, and noise is a piecewise
    constant log-normal factor with mean 1 redrawn every ``noise_window_s``.
    If ``trace.path`` is set, the trace replaces the synthetic profile.
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


@dataclass
class SLOConfig:
    """The service-level objective.

    latency_s: a request meets the SLO if it completes within this many
    seconds of arriving (queue wait + service). Dropped requests miss it.
    target_compliance: the share of requests that must meet it (0.99 = 99%).
    """

    latency_s: float = 30.0
    target_compliance: float = 0.99


@dataclass
class ScenarioConfig:
    """A user-editable scenario: how long, what traffic, what objective."""

    name: str = MISSING
    description: str = ""
    duration_s: float = 86_400.0
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    slo: SLOConfig = field(default_factory=SLOConfig)


@dataclass
class ModelConfig:
    """A served model and the replica that serves it.

    A replica holds ``slots_per_replica`` requests in service at once (the
    continuous-batching concurrency), each served independently.
    service_model ``tokens``: a request takes
    ``overhead_s + prompt/prefill_tokens_per_s + output/decode_tokens_per_s``.
    service_model ``exponential``: exponential with mean ``mean_service_s``
    (for M/M/c validation; token counts are ignored).
    Cost: ``gpus_per_replica * usd_per_gpu_hour``, billed per second from the
    start of provisioning to termination.
    """

    name: str = MISSING
    service_model: str = "tokens"
    prefill_tokens_per_s: float = 5000.0
    decode_tokens_per_s: float = 40.0
    overhead_s: float = 0.0
    mean_service_s: float = 1.0
    slots_per_replica: int = 8
    gpus_per_replica: int = 1
    usd_per_gpu_hour: float = 2.5
    cold_start_s: float = 120.0


@dataclass
class FleetConfig:
    """Bounds and queueing of a fleet of replicas.

    initial_replicas: ready at t=0 (null: the policy's initial target).
    queue_capacity: requests that may wait; a request that finds the queue
    full is dropped (null: unbounded).
    queue_timeout_s: a request that waits longer is dropped (null: never).
    """

    min_replicas: int = 1
    max_replicas: int = 64
    initial_replicas: Optional[int] = None
    queue_capacity: Optional[int] = 1000
    queue_timeout_s: Optional[float] = 60.0


@dataclass
class WorldConfig:
    """A served model on a fleet: the thing a policy sizes."""

    name: str = MISSING
    model: ModelConfig = MISSING
    fleet: FleetConfig = field(default_factory=FleetConfig)


@dataclass
class BaselineConfig:
    """The reference world of a dual-world run: a static fleet sized for peak.

    enabled: simulate it on the same arrivals as the policy's world (common
    random numbers), and report savings against it.
    world: its model and fleet (the ``world`` group, default ``llm``).
    replicas: its fixed size; null sizes it by Erlang C for the scenario's peak.
    """

    enabled: bool = True
    world: WorldConfig = MISSING
    replicas: Optional[int] = None


@dataclass
class ControllerConfig:
    """The decision loop.

    tick_s: seconds between decisions.
    forecast_horizon_ticks: how many ticks ahead the forecaster predicts.
    warmup_days: days of monitoring history (the rate observed per tick
    before t = 0) the forecaster starts with; learned forecasters train on it
    unless they load ``forecaster.model_path``. 0: start blind.
    """

    tick_s: float = 60.0
    forecast_horizon_ticks: int = 15
    warmup_days: float = 1.0


@dataclass
class OutputConfig:
    """What a run writes besides ``summary.json``.

    requests: the per-request table (parquet); large for long runs.
    progress: show a progress bar over simulated time (never under CI or
    when stderr is not a terminal).
    report: write ``report.html`` (figures, architecture, top decisions
    explained; see :mod:`elastic_des.analysis.report`) into the run folder.
    """

    requests: bool = True
    progress: bool = True
    report: bool = True


@dataclass
class ExplainConfig:
    """Decision forensics: ``task=explain`` and the report's decision table.

    run_dir: the run folder to explain (it holds ``.hydra/config.yaml``,
    ``ticks.parquet`` and ``decisions.jsonl``); required by ``task=explain``.
    tick: the decision to explain and replay; null: the ``top_k`` most
    consequential scaling actions, each replayed, rewritten into the run's
    ``report.html``.
    forced_action: what the counterfactual replay does instead at ``tick``:
    ``hold`` (keep the replicas before the decision), ``up``/``down`` (one
    more/fewer than before) or a replica count such as ``7``.
    window_ticks: the consequence window: requests arriving within this many
    ticks after the decision are compared between the two histories.
    top_k: scaling actions in the report's decision table (0: none). The
    report written at the end of a run ranks them by a cheap proxy; with
    ``task=explain`` and no ``tick`` each is replayed and ranked by the
    requests its counterfactual changes.
    """

    run_dir: Optional[str] = None
    tick: Optional[int] = None
    forced_action: str = "hold"
    window_ticks: int = 10
    top_k: int = 5


@dataclass
class TrainConfig:
    """Training of the q_learning policy (``task=train``; see
    :mod:`elastic_des.agent.training`).

    episodes: training episodes; each is a scenario drawn from
    ``distribution`` (synthetic, or a window of a replay), with its own
    workload seed.
    episode_s: the length of an episode.
    episodes_per_round: episodes run from the same table before their
    transitions are applied to it, in episode order. Part of the result.
    jobs: worker processes running a round's episodes (1: this process).
    Not part of the result: any value gives the same model.
    gamma: discount per decision tick.
    alpha_power, alpha_min: learning rate of a (state, action) pair's n-th
    update, ``max(alpha_min, n ** -alpha_power)`` (1 for the first).
    epsilon_start, epsilon_end: exploration rate, decayed geometrically from
    the first episode to the last.
    lagrange_rate: step of the dual ascent on the SLA constraint's multiplier
    after each round (0: keep ``policy.reward.sla``).
    lagrange_max: the multiplier's ceiling (see :mod:`elastic_des.agent.training`).
    eval_every: evaluate the greedy policy every this many rounds, and before
    and after training, on ``eval_windows`` fixed draws of the distribution
    (and, before and after, on the held-out validation scenarios).
    distribution: the training scenarios and the held-out validation ones
    (:class:`~elastic_des.agent.distribution.ScenarioDistributionConfig`).
    model_dir, model_name: the trained model is written to
    ``<model_dir>/<model_name>.npz`` (metadata in ``.json`` alongside) when
    the run has an output folder; model_name null:
    ``<scenario>__<world>__<seed>``.
    """

    episodes: int = 240
    episode_s: float = 7_200.0
    episodes_per_round: int = 4
    jobs: int = 2
    gamma: float = 0.9
    alpha_power: float = 0.8
    alpha_min: float = 0.05
    epsilon_start: float = 0.3
    epsilon_end: float = 0.02
    lagrange_rate: float = 0.2
    lagrange_max: float = 10.0
    eval_every: int = 20
    eval_windows: int = 4
    model_dir: str = "outputs/models"
    model_name: Optional[str] = None
    distribution: ScenarioDistributionConfig = field(default_factory=ScenarioDistributionConfig)


@dataclass
class Config:
    """The whole run. ``policy`` and ``forecaster`` are ``_target_`` nodes
    from their config groups; see ``conf/policy`` and ``conf/forecaster``."""

    seed: int = 0
    task: str = "simulate"
    scenario: ScenarioConfig = MISSING
    world: WorldConfig = MISSING
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    policy: Any = MISSING
    forecaster: Any = MISSING
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def task_outputs(task: str, world: str) -> str:
    """The folder holding a task's Hydra run folders
    (``${task_outputs:${task},${world.name}}`` in ``conf/config.yaml``):
    ``outputs/runs`` for ``task=simulate``, ``outputs/<task>/<world>`` for any
    other task, so that ``task=explain`` never writes its own ``.hydra/``
    record over the run folder it explains, and training one world never
    overwrites the training folder of another."""
    return "outputs/runs" if task == "simulate" else f"outputs/{task}/{world}"


# The schema of each option of the policy and forecaster groups; the YAML file
# ``conf/<group>/<name>.yaml`` extends ``base_<name>``.
POLICY_SCHEMAS = {
    "static": StaticConfig,
    "threshold": ThresholdConfig,
    "hpa": HPAConfig,
    "kpa": KPAConfig,
    "predictive": PredictiveConfig,
    "q_learning": QLearningConfig,
}
FORECASTER_SCHEMAS = {
    "sma": SMAConfig,
    "ewma": EWMAConfig,
    "seasonal_naive": SeasonalNaiveConfig,
    "lstm": LSTMConfig,
    "tcn": TCNConfig,
}


def register_configs() -> None:
    """Register the schemas so YAML files can extend them by name, and the
    ``task_outputs`` resolver used by ``hydra.run.dir``."""
    OmegaConf.register_new_resolver("task_outputs", task_outputs, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="scenario", name="base_scenario", node=ScenarioConfig)
    cs.store(group="world", name="base_world", node=WorldConfig)
    for name, schema in POLICY_SCHEMAS.items():
        cs.store(group="policy", name=f"base_{name}", node=schema)
    for name, schema in FORECASTER_SCHEMAS.items():
        cs.store(group="forecaster", name=f"base_{name}", node=schema)


register_configs()
