"""One validation pass over a composed config, before anything runs.

:func:`validate` checks every group of a :class:`~elastic_des.config.Config`
(ranges of each schema, then the rules that tie fields together) and builds
what the run will build from it (the workload's rate profile and size
distributions, the trace file, the policy and the forecaster) so that their
own checks run too. It raises :class:`~elastic_des.errors.ConfigError`
naming the field and the value; when it returns, the run cannot fail on its
input half-way through. :func:`elastic_des.app.run` calls it first.

Before any range check, every key must be a field of its schema (a key
added with Hydra's ``+`` is refused with the message a typo gets) and every
number must be finite. Before anything is built, the planned demand
(:mod:`elastic_des.planning`) must fit ``limits.max_memory_gb``. Input that
runs but is likely a mistake gets a :class:`~elastic_des.errors.ConfigWarning`.

The engine's constructors keep cheap ``ValueError`` guards of their own,
for direct library use without a config.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from elastic_des import rng as rng_streams
from elastic_des.agent.training import validate_training
from elastic_des.analysis.forensics import check_explain
from elastic_des.objective import check_objective
from elastic_des.engine.distributions import make_distribution
from elastic_des.engine.history import TRACE_WARMUPS, WARMUP_REMEDY, warmup_history
from elastic_des.engine.service import SERVICE_MODELS, serving_plan
from elastic_des.engine.traces import load_client_trace
from elastic_des.engine.workload import SyntheticRateProfile, validate_arrivals, validated_trace_path
from elastic_des.errors import ConfigError, ConfigWarning, require, require_non_negative, require_positive
from elastic_des.factory import build
from elastic_des.worlds import check_workers
from elastic_des.planning import Demand, default_memory_limit_gb, memory_estimate_bytes, planned_demand, window_requests

def check_known_keys(node: Any, field: str = "") -> None:
    """Every key of a schema-typed node is a field of its schema.

    Hydra refuses a typo (``scenario.workload.base_rte=50``) while composing,
    but ``+scenario.workload.base_rte=50`` adds the key; this refuses it with
    the same message."""
    if isinstance(node, DictConfig):
        schema = OmegaConf.get_type(node)
        known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
        for key in node.keys():
            path = f"{field}.{key}" if field else str(key)
            if known is not None and key not in known:
                raise ConfigError(f"Could not override '{path}'.\nKey '{key}' not in '{schema.__name__}'\n"
                                  f"    full_key: {path}\n    object_type={schema.__name__}")
            check_known_keys(node._get_node(key), path)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            check_known_keys(node._get_node(i), f"{field}[{i}]")


def check_finite(value: Any, field: str = "") -> None:
    """Every number in ``value`` (a plain container, e.g. the resolved config) is finite."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_finite(item, f"{field}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{field} = {value!r}: must be a finite number")


def validate_model(model: Any, field: str) -> None:
    """A ``ModelConfig`` at config path ``field``."""
    require_positive(f"{field}.gpus_per_replica", model.gpus_per_replica)
    require_non_negative(f"{field}.usd_per_gpu_hour", model.usd_per_gpu_hour)
    require_non_negative(f"{field}.cold_start_s", model.cold_start_s)
    if model.service_model == "exponential":
        require_positive(f"{field}.slots_per_replica", model.slots_per_replica)
        require_positive(f"{field}.mean_service_s", model.mean_service_s)
    elif model.service_model == "tokens":
        require_positive(f"{field}.slots_per_replica", model.slots_per_replica)
        require(model.prefill_tokens_per_s is not None, f"{field}.prefill_tokens_per_s", None,
                "the tokens service model needs a prefill rate")
        require_positive(f"{field}.prefill_tokens_per_s", model.prefill_tokens_per_s)
        require_positive(f"{field}.decode_tokens_per_s", model.decode_tokens_per_s)
        require_non_negative(f"{field}.overhead_s", model.overhead_s)
    elif model.service_model == "batching":
        require_positive(f"{field}.step_base_s", model.step_base_s)
        require_non_negative(f"{field}.step_per_seq_s", model.step_per_seq_s)
        require(model.max_num_seqs >= 1, f"{field}.max_num_seqs", model.max_num_seqs, "must be >= 1")
        if model.prefill_tokens_per_s is not None:
            require_positive(f"{field}.prefill_tokens_per_s", model.prefill_tokens_per_s)
        if model.kv_budget_tokens is not None:
            require_positive(f"{field}.kv_budget_tokens", model.kv_budget_tokens)
    else:
        raise ConfigError(f"{field}.service_model = {model.service_model!r}: must be one of {', '.join(SERVICE_MODELS)}")


def validate_model_serves(model: Any, field: str, scenario: Any) -> None:
    """The scenario's requests and SLO make sense on the model at ``field``:
    a KV budget holds a mean request, and a TTFT or TPOT objective has tokens to time."""
    slo = scenario.slo
    if slo.ttft_s is not None:
        has_prefill = model.service_model != "exponential" and model.prefill_tokens_per_s is not None
        require(has_prefill, "scenario.slo.ttft_s", slo.ttft_s,
                f"needs a model with a prefill rate, but {field}.prefill_tokens_per_s is unset "
                f"(service_model {model.service_model!r})")
    if slo.tpot_s is not None:
        require(model.service_model != "exponential", "scenario.slo.tpot_s", slo.tpot_s,
                f"needs a model with tokens, but {field}.service_model is 'exponential'")
    if model.service_model == "batching" and model.kv_budget_tokens is not None:
        workload = scenario.workload
        prompt = make_distribution(workload.prompt_tokens, "scenario.workload.prompt_tokens").mean
        output = make_distribution(workload.output_tokens, "scenario.workload.output_tokens").mean
        require(model.kv_budget_tokens >= prompt + output, f"{field}.kv_budget_tokens", model.kv_budget_tokens,
                f"is smaller than one mean request's prompt + output ({prompt:g} + {output:g} tokens)")


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


def validate_scenario(scenario: Any, seed: int, limits: Any, tick_s: float) -> Demand:
    """Duration, SLO, request sizes and arrivals (the trace file, or the
    synthetic profile); the planned demand, checked against ``limits``
    (``tick_s``: the controller's tick, for the memory the ticks take)."""
    require_positive("scenario.duration_s", scenario.duration_s)
    slo = scenario.slo
    objectives = ("latency_s", "ttft_s", "tpot_s")
    require(any(getattr(slo, name) is not None for name in objectives), "scenario.slo", "no objective",
            "set at least one of latency_s, ttft_s, tpot_s")
    for name in objectives:
        if getattr(slo, name) is not None:
            require_positive(f"scenario.slo.{name}", getattr(slo, name))
    require(0 < slo.target_compliance < 1, "scenario.slo.target_compliance", slo.target_compliance, "must be in (0, 1)")
    workload = scenario.workload
    make_distribution(workload.prompt_tokens, "scenario.workload.prompt_tokens")
    make_distribution(workload.output_tokens, "scenario.workload.output_tokens")
    validate_arrivals(workload, "scenario.workload.arrivals")
    if workload.trace.path is not None:
        path = validated_trace_path(workload.trace, "scenario.workload.trace")
        if workload.trace.format == "clients":
            load_client_trace(path)  # a malformed file fails here, naming row and column
        return check_demand(scenario, limits, tick_s)
    for i, spike in enumerate(workload.spikes):
        if spike.start_s >= scenario.duration_s:
            warn(f"scenario.workload.spikes[{i}].start_s", spike.start_s,
                 f"at or after the end of the run (scenario.duration_s = {scenario.duration_s:g}): "
                 "the spike never happens")
    # The size of the run first: the profile allocates its noise windows.
    demand = check_demand(scenario, limits, tick_s)
    SyntheticRateProfile(workload, scenario.duration_s, rng_streams.stream(seed, "rate_noise"))
    return demand


def warn(field: str, value: Any, message: str) -> None:
    warnings.warn(f"{field} = {value!r}: {message}", ConfigWarning, stacklevel=2)


def check_demand(scenario: Any, limits: Any, tick_s: float) -> Demand:
    """The planned demand fits in memory; a trace has requests in the run's window."""
    if limits.max_memory_gb is not None:
        require_positive("limits.max_memory_gb", limits.max_memory_gb)
    demand = planned_demand(scenario)
    trace = scenario.workload.trace
    if trace.path is not None and demand.requests == 0:
        what = f"scenario.workload.trace.path = {trace.path!r}"
        if trace.format == "timestamps":
            raise ConfigError(f"{what}: no request of the trace arrives within the {scenario.duration_s:g} s run "
                              f"(start_s = {trace.start_s!r}, time_compression = {trace.time_compression!r})")
        warn("scenario.workload.trace.path", trace.path,
             f"the trace has no requests in the run's {scenario.duration_s:g} s (every rate is 0)")
    limit = limits.max_memory_gb
    limit_text = f"limits.max_memory_gb = {limit!r}"
    if limit is None:
        limit = default_memory_limit_gb()
        limit_text = f"limits.max_memory_gb = null ({limit:.3g} GB, 80% of this machine's memory)"
    duration_s = float(scenario.duration_s)
    estimate_gb = memory_estimate_bytes(demand, duration_s, tick_s) / 1e9
    if estimate_gb > limit:
        held = demand.requests if demand.held else window_requests(demand, duration_s)
        raise ConfigError(
            f"{demand.source}: the run would hold about {held:.3g} requests at once "
            f"({'the whole trace' if demand.held else 'a window of the run'}; {demand.requests:.3g} in all) "
            f"and {duration_s / tick_s if tick_s > 0 else 0:.3g} ticks, an estimated {estimate_gb:.3g} GB, "
            f"over {limit_text}: shorten the run or lower the rate, or raise the limit"
        )
    return demand


def warn_unbounded_overload(cfg: Any, demand: Demand) -> None:
    """An unbounded queue that the planned peak overloads grows without bound: say so."""
    worlds = [("world", cfg.world, cfg.world.fleet.max_replicas)]
    if cfg.baseline.enabled:
        replicas = cfg.baseline.replicas if cfg.baseline.replicas is not None else cfg.baseline.world.fleet.max_replicas
        worlds.append(("baseline.world", cfg.baseline.world, replicas))
    for field, world, replicas in worlds:
        if world.fleet.queue_capacity is not None:
            continue
        capacity = replicas * serving_plan(world.model, cfg.scenario.workload, cfg.scenario.slo).capacity_rps
        if demand.peak_rps > capacity:
            timeout = world.fleet.queue_timeout_s
            tail = (f"; requests still time out after {field}.fleet.queue_timeout_s = {timeout:g} s" if timeout
                    else ", and latency with it (queue_timeout_s is null too)")
            warn(f"{field}.fleet.queue_capacity", None,
                 f"an unbounded queue, and the planned peak of {demand.peak_rps:.4g} req/s exceeds the capacity of "
                 f"{replicas} replicas ({capacity:.4g} req/s): the queue grows through the overload{tail}")


def check_forecaster(cfg: Any, forecaster: Any) -> None:
    """A loaded model fits the controller's ticks; a forecaster that trains on
    the warm-up history gets enough of it."""
    forecaster.reset(cfg.controller.tick_s)
    needs = getattr(forecaster, "window_ticks", None), getattr(forecaster, "horizon_ticks", None)
    if None in needs or getattr(forecaster, "model_path", None) is not None:
        return
    span = needs[0] + needs[1]
    c = cfg.controller
    history = warmup_history(cfg.scenario, c.tick_s, cfg.seed, c.warmup_days, c.trace_warmup)
    require(len(history) > span, "controller.warmup_days", c.warmup_days,
            f"gives {len(history)} ticks of warm-up history (controller.tick_s = {c.tick_s:g}); forecaster "
            f"{forecaster.name} trains on it and needs more than window_ticks + horizon_ticks = {span}: "
            f"{WARMUP_REMEDY}")
    require(float(history.sum()) > 0, "controller.warmup_days", c.warmup_days,
            f"gives a warm-up history with no requests: forecaster {forecaster.name} has nothing to train on")


def validate_controller(controller: Any) -> None:
    require_positive("controller.tick_s", controller.tick_s)
    require(controller.forecast_horizon_ticks >= 1, "controller.forecast_horizon_ticks",
            controller.forecast_horizon_ticks, "must be >= 1")
    require_non_negative("controller.warmup_days", controller.warmup_days)
    require(controller.trace_warmup in TRACE_WARMUPS, "controller.trace_warmup", controller.trace_warmup,
            f"must be one of {', '.join(TRACE_WARMUPS)}")


def validate(cfg: Any, tasks: tuple[str, ...]) -> None:
    """Check the whole of ``cfg`` for ``cfg.task`` (one of ``tasks``); see the module docs."""
    check_known_keys(cfg)
    check_finite(OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else {})
    require(cfg.task in tasks, "task", cfg.task, f"must be one of {', '.join(tasks)}")
    require(isinstance(cfg.seed, int) and cfg.seed >= 0, "seed", cfg.seed, "must be an integer >= 0")
    check_objective(cfg.objective)
    check_workers(cfg.run.workers)
    if cfg.task == "explain":
        check_explain(cfg.explain)  # the run it explains carries its own, recorded config
        return
    demand = validate_scenario(cfg.scenario, cfg.seed, cfg.limits, cfg.controller.tick_s)
    validate_world(cfg.world, "world")
    validate_model_serves(cfg.world.model, "world.model", cfg.scenario)
    if cfg.baseline.enabled:
        validate_world(cfg.baseline.world, "baseline.world")
        validate_model_serves(cfg.baseline.world.model, "baseline.world.model", cfg.scenario)
        if cfg.baseline.replicas is not None:
            require(cfg.baseline.replicas >= 1, "baseline.replicas", cfg.baseline.replicas, "must be >= 1 or null")
    validate_controller(cfg.controller)
    warn_unbounded_overload(cfg, demand)
    check_explain(cfg.explain)  # the report's decision table
    policy = cfg.policy
    if cfg.task == "train":
        validate_training(cfg)
        policy = OmegaConf.merge(policy, {"untrained": True})  # training starts from an empty table
    build(policy, "policy")
    check_forecaster(cfg, build(cfg.forecaster, "forecaster"))
