"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every knob of a run lives in one of these dataclasses (the scenario's in
:mod:`elastic_des.scenario_config`, the worlds' in
:mod:`elastic_des.world_config`); the YAML files under
``conf/`` and ``scenarios/`` only set values. Because the schemas are
structured configs, a YAML key that is not a field here (a typo such as
``base_rte``) is rejected when the config is composed, naming the key.

Units are part of the field names (``_s`` seconds, ``_rps`` requests per
second, ``usd_`` US dollars) so that a YAML reader never has to guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from elastic_des.agent.distribution import ScenarioDistributionConfig
from elastic_des.agent.policy import QLearningConfig
from elastic_des.forecasters.schemas import LSTMConfig, TCNConfig
from elastic_des.forecasters.simple import EWMAConfig, SeasonalNaiveConfig, SMAConfig
from elastic_des.objective import ObjectiveConfig
from elastic_des.policies.hpa import HPAConfig
from elastic_des.policies.kpa import KPAConfig
from elastic_des.policies.oracle import OracleConfig
from elastic_des.policies.predictive import PredictiveConfig
from elastic_des.policies.static import StaticConfig
from elastic_des.policies.threshold import ThresholdConfig
from elastic_des.runfolder import run_dirname
from elastic_des.scenario_config import ScenarioConfig
from elastic_des.world_config import BaselineConfig, WorldConfig


@dataclass
class ControllerConfig:
    """The decision loop.

    tick_s: seconds between decisions.
    forecast_horizon_ticks: how many ticks ahead the forecaster predicts.
    warmup_days: days of monitoring history (the rate observed per tick
    before t = 0) the forecaster starts with; learned forecasters train on it
    unless they load ``forecaster.model_path``. 0: start blind.
    trace_warmup: where that history comes from when the scenario replays a
    trace: ``preceding`` (the trace before ``trace.start_s`` only; possibly
    none), ``repeat`` (the replayed span repeated back over
    ``warmup_days``: the forecaster has then seen the series it forecasts)
    or ``auto`` (``preceding`` if any of the trace precedes the start, else
    ``repeat``). See :mod:`elastic_des.engine.history`.
    """

    tick_s: float = 60.0
    forecast_horizon_ticks: int = 15
    warmup_days: float = 1.0
    trace_warmup: str = "auto"


@dataclass
class OutputConfig:
    """What a run writes besides ``summary.json``.

    requests: the per-request table (``requests.parquet``), written in row
    groups as the run goes; large for long runs. Either way a world holds
    only the requests in flight (see :mod:`elastic_des.engine.simulation`)
    and the run-level latency percentiles come from a histogram within 0.5%
    (relative) of the exact ones (:mod:`elastic_des.engine.histogram`).
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
    lagrange_quantile: the quantile of a round's episodes whose SLA the dual
    ascent steers to the target (0.75: λ rises while more than a quarter of
    the episodes miss it).
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
    lagrange_quantile: float = 0.75
    eval_every: int = 20
    eval_windows: int = 4
    model_dir: str = "outputs/models"
    model_name: Optional[str] = None
    distribution: ScenarioDistributionConfig = field(default_factory=ScenarioDistributionConfig)


@dataclass
class LimitsConfig:
    """What a run may ask of the machine, checked before it starts.

    max_memory_gb: refuse a run whose up-front memory estimate (the busiest
    window of requests, its thinning candidates, the ticks; a timestamps
    trace whole; see :mod:`elastic_des.planning`) exceeds this many GB;
    null: 80% of this machine's physical memory.
    """

    max_memory_gb: Optional[float] = None


@dataclass
class RunConfig:
    """How a run uses the machine (never what it computes).

    workers: processes for the worlds of a dual-world run: ``auto`` (two when
    two cores are free), ``1`` (one after another) or ``2`` (side by side);
    results are identical either way (see :mod:`elastic_des.worlds`).
    """

    workers: Any = "auto"


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
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    run: RunConfig = field(default_factory=RunConfig)


def task_outputs(task: str, world: str) -> str:
    """The folder holding a task's Hydra run folders
    (``${task_outputs:${task},${world.name}}`` in ``conf/config.yaml``):
    ``outputs/runs`` for ``task=simulate``, ``outputs/<task>/<world>`` for any
    other task, so that ``task=explain`` never writes its own ``.hydra/``
    record over the run folder it explains, and training one world never
    overwrites the training folder of another."""
    return "outputs/runs" if task == "simulate" else f"outputs/{task}/{world}"


def job_folder(task: str, name: str, run_dir: Optional[str], tick: Optional[int], forced_action: str) -> str:
    """The folder of one job under :func:`task_outputs` (``${job_folder:...}``
    in ``conf/config.yaml``): the run name ``name`` (scenario, policy, seed),
    except for ``task=explain``, whose outputs are named after the run
    explained and the replay: ``<run folder name>/tick<k>__<action>`` (or
    ``top__<action>`` for the top decisions), so explaining another run,
    tick or action never overwrites an earlier explanation."""
    if task != "explain" or run_dir is None:
        return name
    replay = f"tick{tick}" if tick is not None else "top"
    return f"{Path(str(run_dir)).name}/{replay}__{forced_action}"


# The schema of each option of the policy and forecaster groups; the YAML file
# ``conf/<group>/<name>.yaml`` extends it as ``/schema_<group>_<name>@_here_``.
# The schemas are stored at the root, outside the groups, so that they are
# not options (``--help`` does not list them and ``policy=schema_...`` is
# refused as an unknown option).
POLICY_SCHEMAS = {
    "static": StaticConfig,
    "threshold": ThresholdConfig,
    "hpa": HPAConfig,
    "kpa": KPAConfig,
    "predictive": PredictiveConfig,
    "q_learning": QLearningConfig,
    "oracle": OracleConfig,
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
    ``task_outputs``, ``run_dirname`` and ``job_folder`` resolvers used by
    ``hydra.run.dir``.

    Scenario and world files need no schema entry: ``Config`` types those
    nodes, so their keys are checked against ``ScenarioConfig`` and
    ``WorldConfig`` when they are merged."""
    OmegaConf.register_new_resolver("task_outputs", task_outputs, replace=True)
    OmegaConf.register_new_resolver("run_dirname", run_dirname, replace=True)
    OmegaConf.register_new_resolver("job_folder", job_folder, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schemas in (("policy", POLICY_SCHEMAS), ("forecaster", FORECASTER_SCHEMAS)):
        for name, schema in schemas.items():
            cs.store(name=f"schema_{group}_{name}", node=schema)


register_configs()
