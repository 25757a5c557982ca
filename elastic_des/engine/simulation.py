"""One world: a served model on a fleet, under a policy, fed a workload.

:func:`simulate_world` wires the SimPy pieces together (replica pool,
dispatcher, controller), runs the scenario to its end and then lets the
requests already admitted finish, so every request has an outcome. Billing
stops at the end of the scenario: the drain tail is not a cost of the day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd
import simpy

from elastic_des import rng as rng_streams
from elastic_des.engine.controller import TICK_COLUMNS, Controller
from elastic_des.engine.dispatcher import Dispatcher
from elastic_des.errors import ConfigError
from elastic_des.engine.forecast import Forecaster
from elastic_des.engine.history import warmup_history
from elastic_des.engine.metrics import request_table, summarize
from elastic_des.engine.policy import Policy, PolicyContext
from elastic_des.engine.replicas import ReplicaPool
from elastic_des.engine.service import mean_service_s, service_times
from elastic_des.engine.workload import Workload


@dataclass
class WorldResult:
    """Everything one world produced."""

    name: str
    summary: dict
    requests: pd.DataFrame
    ticks: pd.DataFrame
    decisions: list[dict]


def policy_context(world, scenario, controller, workload: Workload, seed: int, field: str = "world") -> PolicyContext:
    return PolicyContext(
        fleet_field=f"{field}.fleet",
        min_replicas=world.fleet.min_replicas,
        max_replicas=world.fleet.max_replicas,
        slots_per_replica=world.model.slots_per_replica,
        mean_service_s=mean_service_s(world.model, scenario.workload),
        cold_start_s=world.model.cold_start_s,
        tick_s=controller.tick_s,
        slo_latency_s=scenario.slo.latency_s,
        slo_target=scenario.slo.target_compliance,
        peak_rate_rps=workload.profile.peak_rps,
        mean_rate_rps=workload.profile.mean_rps,
        rng=rng_streams.stream(seed, f"policy/{world.name}"),
    )


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
) -> WorldResult:
    """Simulate ``world`` under ``policy`` on ``workload``; see module docs.

    ``field`` is the config path of ``world``, for error messages. The
    config is expected to have passed :func:`elastic_des.validate.validate`
    (``elastic_des.run`` does that first); called directly, the engine's
    constructors still refuse impossible values with a ``ValueError``.
    """
    wall_start = time.perf_counter()
    model, fleet = world.model, world.fleet
    env = simpy.Environment()
    pool = ReplicaPool(env, model.slots_per_replica, model.cold_start_s)
    service = service_times(model, workload, seed)
    dispatcher = Dispatcher(env, pool, workload.arrival_s, service, fleet.queue_capacity, fleet.queue_timeout_s)
    context = policy_context(world, scenario, controller_cfg, workload, seed, field)
    policy.reset(context)
    forecaster.reset(controller_cfg.tick_s)
    forecaster.warm_up(warmup_history(scenario, controller_cfg.tick_s, seed, controller_cfg.warmup_days))
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
        duration_s=scenario.duration_s, slo_latency_s=scenario.slo.latency_s,
        usd_per_replica_s=usd_per_replica_s, min_replicas=fleet.min_replicas,
        max_replicas=fleet.max_replicas, on_tick=on_tick, prior_service_s=context.mean_service_s,
    )
    env.process(controller.process())
    env.run(until=scenario.duration_s)
    billed_replica_s = pool.billed_replica_s()
    env.run()  # let admitted requests finish; nothing new arrives
    requests = request_table(
        workload.arrival_s, dispatcher.start_s, dispatcher.finish_s, dispatcher.dropped,
        service, workload.prompt_tokens, workload.output_tokens,
    )
    ticks = pd.DataFrame.from_records(controller.ticks, columns=list(TICK_COLUMNS))
    summary = summarize(
        requests, ticks, controller.decisions,
        slo_latency_s=scenario.slo.latency_s, slo_target=scenario.slo.target_compliance,
        cost_usd=billed_replica_s * usd_per_replica_s,
        gpu_hours=billed_replica_s * model.gpus_per_replica / 3600.0, duration_s=scenario.duration_s,
    )
    wall = time.perf_counter() - wall_start
    summary["run/wall_s"] = wall
    summary["run/requests_per_wall_s"] = len(workload) / wall if wall > 0 else float("nan")
    return WorldResult(world.name, summary, requests, ticks, controller.decisions)

