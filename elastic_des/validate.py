"""One validation pass over a composed config, before anything runs.

:func:`validate` checks every group of a :class:`~elastic_des.config.Config`
(ranges of each schema, then the rules that tie fields together) and builds
what the run will build from it (the workload's rate profile and size
distributions, the trace file, the policy and the forecaster) so that their
own checks run too. It raises :class:`~elastic_des.errors.ConfigError`
naming the field and the value; when it returns, the run cannot fail on its
input half-way through. :func:`elastic_des.app.run` calls it first.

The engine's constructors keep cheap ``ValueError`` guards of their own,
for direct library use without a config.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from elastic_des import rng as rng_streams
from elastic_des.agent.training import validate_training
from elastic_des.analysis.forensics import check_explain
from elastic_des.objective import check_objective
from elastic_des.engine.distributions import make_distribution
from elastic_des.engine.history import TRACE_WARMUPS
from elastic_des.engine.workload import SyntheticRateProfile, validated_trace_path
from elastic_des.errors import ConfigError, require, require_non_negative, require_positive
from elastic_des.factory import build

SERVICE_MODELS = ("tokens", "exponential")


def validate_model(model: Any, field: str) -> None:
    """A ``ModelConfig`` at config path ``field``."""
    require_positive(f"{field}.slots_per_replica", model.slots_per_replica)
    require_positive(f"{field}.gpus_per_replica", model.gpus_per_replica)
    require_non_negative(f"{field}.usd_per_gpu_hour", model.usd_per_gpu_hour)
    require_non_negative(f"{field}.cold_start_s", model.cold_start_s)
    if model.service_model == "exponential":
        require_positive(f"{field}.mean_service_s", model.mean_service_s)
    elif model.service_model == "tokens":
        require_positive(f"{field}.prefill_tokens_per_s", model.prefill_tokens_per_s)
        require_positive(f"{field}.decode_tokens_per_s", model.decode_tokens_per_s)
        require_non_negative(f"{field}.overhead_s", model.overhead_s)
    else:
        raise ConfigError(f"{field}.service_model = {model.service_model!r}: must be one of {', '.join(SERVICE_MODELS)}")


def validate_fleet(fleet: Any, field: str) -> None:
    """A ``FleetConfig`` at config path ``field``."""
    require(fleet.min_replicas >= 0, f"{field}.min_replicas", fleet.min_replicas, "must be >= 0")
    require(
        fleet.max_replicas >= max(fleet.min_replicas, 1),
        f"{field}.max_replicas",
        fleet.max_replicas,
        f"must be >= min_replicas ({fleet.min_replicas}) and >= 1",
    )
    if fleet.initial_replicas is not None:
        require(
            fleet.min_replicas <= fleet.initial_replicas <= fleet.max_replicas,
            f"{field}.initial_replicas", fleet.initial_replicas,
            f"must be within [min_replicas, max_replicas] = [{fleet.min_replicas}, {fleet.max_replicas}]",
        )
    if fleet.queue_capacity is not None:
        require(fleet.queue_capacity >= 0, f"{field}.queue_capacity", fleet.queue_capacity, "must be >= 0 or null")
    if fleet.queue_timeout_s is not None:
        require_positive(f"{field}.queue_timeout_s", fleet.queue_timeout_s)


def validate_world(world: Any, field: str) -> None:
    validate_model(world.model, f"{field}.model")
    validate_fleet(world.fleet, f"{field}.fleet")


def validate_scenario(scenario: Any, seed: int) -> None:
    """Duration, SLO, request sizes and arrivals (the trace file, or the synthetic profile)."""
    require_positive("scenario.duration_s", scenario.duration_s)
    slo = scenario.slo
    require_positive("scenario.slo.latency_s", slo.latency_s)
    require(0 < slo.target_compliance < 1, "scenario.slo.target_compliance", slo.target_compliance, "must be in (0, 1)")
    workload = scenario.workload
    make_distribution(workload.prompt_tokens, "scenario.workload.prompt_tokens")
    make_distribution(workload.output_tokens, "scenario.workload.output_tokens")
    if workload.trace.path is not None:
        validated_trace_path(workload.trace, "scenario.workload.trace")
    else:
        SyntheticRateProfile(workload, scenario.duration_s, rng_streams.stream(seed, "rate_noise"))


def validate_controller(controller: Any) -> None:
    require_positive("controller.tick_s", controller.tick_s)
    require(controller.forecast_horizon_ticks >= 1, "controller.forecast_horizon_ticks",
            controller.forecast_horizon_ticks, "must be >= 1")
    require_non_negative("controller.warmup_days", controller.warmup_days)
    require(controller.trace_warmup in TRACE_WARMUPS, "controller.trace_warmup", controller.trace_warmup,
            f"must be one of {', '.join(TRACE_WARMUPS)}")


def validate(cfg: Any, tasks: tuple[str, ...]) -> None:
    """Check the whole of ``cfg`` for ``cfg.task`` (one of ``tasks``); see the module docs."""
    require(cfg.task in tasks, "task", cfg.task, f"must be one of {', '.join(tasks)}")
    require(isinstance(cfg.seed, int) and cfg.seed >= 0, "seed", cfg.seed, "must be an integer >= 0")
    check_objective(cfg.objective)
    if cfg.task == "explain":
        check_explain(cfg.explain)  # the run it explains carries its own, recorded config
        return
    validate_scenario(cfg.scenario, cfg.seed)
    validate_world(cfg.world, "world")
    if cfg.baseline.enabled:
        validate_world(cfg.baseline.world, "baseline.world")
        if cfg.baseline.replicas is not None:
            require(cfg.baseline.replicas >= 1, "baseline.replicas", cfg.baseline.replicas, "must be >= 1 or null")
    validate_controller(cfg.controller)
    check_explain(cfg.explain)  # the report's decision table
    policy = cfg.policy
    if cfg.task == "train":
        validate_training(cfg)
        policy = OmegaConf.merge(policy, {"untrained": True})  # training starts from an empty table
    build(policy, "policy")
    build(cfg.forecaster, "forecaster")
