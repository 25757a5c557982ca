"""One world: a served model on a fleet, under a policy, fed a workload.

:func:`simulate_world` wires the SimPy pieces together (replica pool,
dispatcher, controller), runs the scenario to its end and then lets the
requests already admitted finish, so every request has an outcome. Billing
stops at the end of the scenario: the drain tail is not a cost of the day.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd
import simpy

from elastic_des import rng as rng_streams
from elastic_des.engine.controller import TICK_COLUMNS, Controller
from elastic_des.engine.dispatcher import Dispatcher, events_scheduled
from elastic_des.errors import ConfigError
from elastic_des.engine.forecast import Forecaster
from elastic_des.engine.history import warmup_history
from elastic_des.engine.metrics import request_table, summarize
from elastic_des.engine.batching import BatchingPool
from elastic_des.engine.clairvoyant import oracle_plan
from elastic_des.engine.estimators import ServiceTimeEstimator
from elastic_des.engine.policy import FutureRequests, Policy, PolicyContext
from elastic_des.engine.replicas import ReplicaPool
from elastic_des.engine.service import (
    batch_work, first_token_offsets, planning_service_times, service_prior, serving_plan,
)
from elastic_des.engine.slo import SLO
from elastic_des.engine.workload import Workload


@dataclass
class WorldResult:
    """Everything one world produced."""

    name: str
    summary: dict
    requests: pd.DataFrame
    ticks: pd.DataFrame
    decisions: list[dict]
    wall_s: float = float("nan")  # wall-clock time of the simulation (not a result: timing.json)


def policy_context(world, scenario, controller, workload: Workload, seed: int, field: str = "world",
                   service_s: Optional[np.ndarray] = None, oracle: bool = True) -> PolicyContext:
    """What ``world``'s policy knows before the run. A batching replica is
    planned as in :func:`~elastic_des.engine.service.serving_plan`.
    ``service_s`` (each request's service time as the planners count it,
    :func:`~elastic_des.engine.service.planning_service_times`; computed if
    not given) lets a clairvoyant policy read ahead and gives a trace replay
    its prior from its own sizes. ``oracle``: compute the clairvoyant plan (if
    the workload can be read ahead)."""
    plan = serving_plan(world.model, scenario.workload, scenario.slo)
    if service_s is None:
        service_s = planning_service_times(world.model, workload, seed, plan)
    prior_mean_s, prior_scv = service_prior(world.model, scenario.workload, workload, service_s, plan)
    timeout = world.fleet.queue_timeout_s
    future = None
    if workload.read_ahead and oracle:
        timeout_s = math.inf if timeout is None else float(timeout)
        oracle_needs = oracle_plan(
            workload.arrival_s, service_s, tick_s=controller.tick_s, duration_s=scenario.duration_s,
            slots=plan.slots, slo_latency_s=plan.latency_s,
            slo_target=scenario.slo.target_compliance, queue_timeout_s=timeout_s,
            min_replicas=world.fleet.min_replicas, max_replicas=world.fleet.max_replicas,
            cold_start_s=world.model.cold_start_s,
        )
        future = FutureRequests(workload.arrival_s, service_s, timeout_s, oracle_needs)
    return PolicyContext(
        fleet_field=f"{field}.fleet",
        min_replicas=world.fleet.min_replicas,
        max_replicas=world.fleet.max_replicas,
        slots_per_replica=plan.slots,
        mean_service_s=prior_mean_s,
        cold_start_s=world.model.cold_start_s,
        tick_s=controller.tick_s,
        slo_latency_s=plan.latency_s,
        slo_target=scenario.slo.target_compliance,
        peak_rate_rps=workload.profile.peak_rps,
        mean_rate_rps=workload.profile.mean_rps,
        rng=rng_streams.stream(seed, f"policy/{world.name}"),
        service_scv=prior_scv,
        future=future,
    )


def oracle_summary(context: PolicyContext, usd_per_replica_s: float, cost_usd: float) -> dict:
    """The clairvoyant limit's cost for this world on these arrivals (the
    minimum-cost schedule for the per-tick needs, computed analytically, not
    simulated) and the world's cost as a multiple of it; NaN when the
    workload cannot be read ahead."""
    plan = context.future.plan if context.future is not None else None
    if plan is None:
        return {"cost/oracle_usd": math.nan, "cost/oracle_ratio": math.nan, "oracle/infeasible_ticks": 0}
    oracle_usd = plan.replica_s * usd_per_replica_s
    return {
        "cost/oracle_usd": oracle_usd,
        "cost/oracle_ratio": cost_usd / oracle_usd if oracle_usd > 0 else math.nan,
        "oracle/infeasible_ticks": int(plan.infeasible.sum()),
    }


def simulate_world(
    world,
    scenario,
    controller_cfg,
    policy: Policy,
    forecaster: Forecaster,
    workload: Workload,
    seed: int,
    on_tick: Optional[Callable[[float], None]] = None,
    field: str = "world",
    oracle_limit: bool = True,
) -> WorldResult:
    """Simulate ``world`` under ``policy`` on ``workload``; see module docs.

    ``oracle_limit``: compute the clairvoyant limit's cost (``cost/oracle_*``
    in the summary; a replay of all requests, about a third of the
    simulation's own time); ``False`` skips it unless the policy is
    clairvoyant (e.g. for training episodes that never read it).

    ``field`` is the config path of ``world``, for error messages. The
    config is expected to have passed :func:`elastic_des.validate.validate`
    (``elastic_des.run`` does that first); called directly, the engine's
    constructors still refuse impossible values with a ``ValueError``.
    """
    wall_start = time.perf_counter()
    model, fleet = world.model, world.fleet
    env = simpy.Environment()
    service = planning_service_times(model, workload, seed, serving_plan(model, scenario.workload, scenario.slo))
    pool, dispatcher, first_token_of = _fleet(env, model, fleet, workload, service)
    context = policy_context(world, scenario, controller_cfg, workload, seed, field, service,
                             oracle=oracle_limit or policy.clairvoyant)
    policy.reset(context)
    forecaster.reset(controller_cfg.tick_s)
    forecaster.warm_up(warmup_history(scenario, controller_cfg.tick_s, seed, controller_cfg.warmup_days,
                                      controller_cfg.trace_warmup))
    initial = fleet.initial_replicas if fleet.initial_replicas is not None else policy.initial_replicas()
    if not fleet.min_replicas <= initial <= fleet.max_replicas:
        raise ConfigError(
            f"policy initial replicas = {initial}: outside {field}.fleet [min_replicas, max_replicas] = "
            f"[{fleet.min_replicas}, {fleet.max_replicas}]"
        )
    pool.start(initial)
    usd_per_replica_s = model.gpus_per_replica * model.usd_per_gpu_hour / 3600.0
    controller = Controller(
        env, pool, dispatcher, policy, forecaster,
        tick_s=controller_cfg.tick_s, horizon_ticks=controller_cfg.forecast_horizon_ticks,
        duration_s=scenario.duration_s, slo=SLO.of(scenario.slo),
        usd_per_replica_s=usd_per_replica_s, min_replicas=fleet.min_replicas,
        max_replicas=fleet.max_replicas, on_tick=on_tick,
        service_estimator=ServiceTimeEstimator(context.mean_service_s, context.service_scv),
        service_s=service, first_token_of=first_token_of, output_tokens=workload.output_tokens,
    )
    env.process(controller.process())
    env.run(until=scenario.duration_s)
    billed_replica_s = pool.billed_replica_s()
    env.run()  # let admitted requests finish; nothing new arrives
    start_s, finish_s = np.asarray(dispatcher.start_s), np.asarray(dispatcher.finish_s)
    first_token_s = first_token_of(np.arange(len(workload))) if first_token_of is not None else None
    service = finish_s - start_s if isinstance(pool, BatchingPool) else np.asarray(dispatcher.service)
    requests = request_table(
        workload.arrival_s, start_s, finish_s, dispatcher.dropped,
        service, workload.prompt_tokens, workload.output_tokens, first_token_s,
    )
    ticks = pd.DataFrame.from_records(controller.ticks, columns=list(TICK_COLUMNS))
    # Billed during each tick's window (cold starts included): the cumulative
    # column's increments, so that summing a column never counts a cost twice.
    cumulative = ticks["cost_usd_cumulative"]
    ticks.insert(ticks.columns.get_loc("cost_usd_cumulative"), "cost_usd", cumulative.diff().fillna(cumulative))
    summary = summarize(
        requests, ticks, controller.decisions,
        slo=SLO.of(scenario.slo), slo_target=scenario.slo.target_compliance,
        cost_usd=billed_replica_s * usd_per_replica_s,
        gpu_hours=billed_replica_s * model.gpus_per_replica / 3600.0, duration_s=scenario.duration_s,
    )
    summary.update(oracle_summary(context, usd_per_replica_s, summary["cost/usd"]))
    summary["run/events_per_request"] = events_scheduled(env) / len(workload) if len(workload) else float("nan")
    return WorldResult(world.name, summary, requests, ticks, controller.decisions, time.perf_counter() - wall_start)


def _fleet(env: simpy.Environment, model, fleet, workload: Workload, service: np.ndarray):
    """The replica pool and dispatcher of ``model``'s service model, and how to
    read requests' first-token times (None: the model has no tokens).
    ``service``: each request's service time on a slots model."""
    if model.service_model != "batching":
        pool = ReplicaPool(env, model.slots_per_replica, model.cold_start_s)
        dispatcher = Dispatcher(env, pool, workload.arrival_s, service, fleet.queue_capacity, fleet.queue_timeout_s)
        if model.service_model == "exponential":
            return pool, dispatcher, None
        offsets, start_s = first_token_offsets(model, workload), dispatcher.start_s
        # Only the finished requests' entries: converting the whole list each tick would be quadratic.
        return pool, dispatcher, lambda done: np.array([start_s[i] for i in done], dtype=float) + offsets[done]
    work = batch_work(model, workload)
    pool = BatchingPool(
        env, max_num_seqs=model.max_num_seqs, cold_start_s=model.cold_start_s, step_base_s=model.step_base_s,
        step_per_seq_s=model.step_per_seq_s, kv_budget_tokens=model.kv_budget_tokens,
        prefill_s=work.prefill_s, decode_tokens=work.decode_tokens, kv_tokens=work.kv_tokens,
    )
    dispatcher = Dispatcher(env, pool, workload.arrival_s, np.zeros(len(workload)), fleet.queue_capacity,
                            fleet.queue_timeout_s, too_long=pool.too_long())
    pool.attach(dispatcher)
    first_token = pool.first_token_s
    return pool, dispatcher, lambda done: np.asarray([first_token[i] for i in done], dtype=float)
