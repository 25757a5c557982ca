"""One world: a served model on a fleet, under a policy, fed a workload.

:func:`simulate_world` wires the SimPy pieces together (replica pool,
dispatcher, controller), runs the scenario to its end and then lets the
requests already admitted finish, so every request has an outcome. Billing
stops at the end of the scenario: the drain tail is not a cost of the day.

A world holds only the requests in flight and the next tick's arrivals
(:mod:`elastic_des.engine.records`): its workload, held whole
(:class:`~elastic_des.engine.workload.Workload`) or replayed window by
window (:class:`~elastic_des.engine.windows.RequestSource`, the same
requests), is loaded a tick ahead, and each request is reduced into the
run's figures (:class:`~elastic_des.engine.metrics.Outcomes`) once it and
every request before it have an outcome. The clairvoyant limit reads the
same windows as the world loads them (a clairvoyant policy's plan replays
them once more before the run). So memory is O(ticks + requests in
flight) unless the world keeps its request table (``record_requests``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Union

import numpy as np
import pandas as pd
import simpy

from elastic_des import rng as rng_streams
from elastic_des.engine.controller import TICK_COLUMNS, Controller
from elastic_des.engine.dispatcher import Dispatcher, events_scheduled
from elastic_des.errors import ConfigError
from elastic_des.engine.forecast import Forecaster
from elastic_des.engine.history import warmup_history
from elastic_des.engine.metrics import Outcomes, summarize
from elastic_des.engine.batching import BatchingPool
from elastic_des.engine.clairvoyant import ClairvoyantLimit, OraclePlan
from elastic_des.engine.estimators import ServiceTimeEstimator
from elastic_des.engine.policy import FutureRequests, Policy, PolicyContext
from elastic_des.engine.records import Gather, RequestStore
from elastic_des.engine.replicas import ReplicaPool
from elastic_des.engine.service import (
    ServingPlan, planning_service_times, request_columns, service_prior, service_stream, serving_plan,
)
from elastic_des.engine.slo import SLO
from elastic_des.engine.windows import RequestSource, two_readers
from elastic_des.engine.workload import Workload, whole_workload

Requests = Union[Workload, RequestSource]


@dataclass
class WorldResult:
    """Everything one world produced."""

    name: str
    summary: dict
    requests: Optional[pd.DataFrame]  # None unless the world kept its request table
    ticks: pd.DataFrame
    decisions: list[dict]
    wall_s: float = float("nan")  # wall-clock time of the simulation (not a result: timing.json)
    setup_s: float = float("nan")  # of which before the first event: planning, warm-up


def world_windows(model, plan: ServingPlan, workload: Requests, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """A fresh replay of ``workload``'s windows as the columns a world of
    ``model`` loads (:func:`~elastic_des.engine.service.request_columns`)."""
    rng = service_stream(seed)
    return (request_columns(model, batch, plan, rng) for batch in workload.batches())


def policy_context(world, scenario, controller, workload: Requests, seed: int, field: str = "world",
                   oracle: bool = True) -> PolicyContext:
    """What ``world``'s policy knows before the run. A batching replica is
    planned as in :func:`~elastic_des.engine.service.serving_plan`. A
    timestamps trace gives the prior its own sizes
    (:func:`~elastic_des.engine.service.service_prior`). ``oracle``: compute
    the clairvoyant plan (if the workload can be read ahead), a replay of
    every request's arrival and planning service time window by window."""
    model = world.model
    plan = serving_plan(model, scenario.workload, scenario.slo)
    trace_service = None
    if workload.sizes_from_trace:  # a timestamps trace: held whole, like the trace file
        requests = workload if isinstance(workload, Workload) else whole_workload(workload)
        trace_service = planning_service_times(model, requests, plan, service_stream(seed))
    prior_mean_s, prior_scv = service_prior(model, scenario.workload, workload, trace_service, plan)
    future = None
    if workload.read_ahead and oracle:
        limit = ClairvoyantLimit(limit_batches(world_windows(model, plan, workload, seed)),
                                 **limit_keywords(world, scenario, controller, plan))
        future = FutureRequests(queue_timeout(world), limit.plan())
    return PolicyContext(
        fleet_field=f"{field}.fleet",
        min_replicas=world.fleet.min_replicas,
        max_replicas=world.fleet.max_replicas,
        slots_per_replica=plan.slots,
        mean_service_s=prior_mean_s,
        cold_start_s=model.cold_start_s,
        tick_s=controller.tick_s,
        slo_latency_s=plan.latency_s,
        slo_target=scenario.slo.target_compliance,
        peak_rate_rps=workload.profile.peak_rps,
        mean_rate_rps=workload.profile.mean_rps,
        initial_rate_rps=workload.profile.peak_before(controller.tick_s + model.cold_start_s),
        rng=rng_streams.stream(seed, f"policy/{world.name}"),
        service_scv=prior_scv,
        future=future,
    )


def queue_timeout(world) -> float:
    """The queue's timeout of ``world``'s fleet in seconds, ``inf`` for none."""
    timeout = world.fleet.queue_timeout_s
    return math.inf if timeout is None else float(timeout)


def limit_keywords(world, scenario, controller, plan: ServingPlan) -> dict:
    """The clairvoyant limit's parameters for ``world`` (:class:`ClairvoyantLimit`)."""
    return dict(tick_s=controller.tick_s, duration_s=scenario.duration_s, slots=plan.slots,
                slo_latency_s=plan.latency_s, slo_target=scenario.slo.target_compliance,
                queue_timeout_s=queue_timeout(world), min_replicas=world.fleet.min_replicas,
                max_replicas=world.fleet.max_replicas, cold_start_s=world.model.cold_start_s)


def limit_batches(windows: Iterable[dict[str, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """What the limit reads of a world's windows: arrivals and planning service times."""
    return ((window["arrival"], window["planning"]) for window in windows)


def oracle_summary(plan: Optional[OraclePlan], usd_per_replica_s: float, cost_usd: float) -> dict:
    """The clairvoyant limit's cost for this world on these arrivals (the
    minimum-cost schedule for the per-tick needs, computed analytically, not
    simulated) and the world's cost as a multiple of it; NaN without a
    ``plan`` (a workload that cannot be read ahead)."""
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
    workload: Requests,
    seed: int,
    on_tick: Optional[Callable[[float], None]] = None,
    field: str = "world",
    oracle_limit: bool = True,
    record_requests: Union[bool, Callable[[dict[str, np.ndarray]], None]] = True,
) -> WorldResult:
    """Simulate ``world`` under ``policy`` on ``workload``; see module docs.

    ``oracle_limit``: compute the clairvoyant limit's cost (``cost/oracle_*``
    in the summary: a replay of every request through the slots of each
    tick's candidate fleets, some 5–10 % of the run's time, done tick by
    tick as the world loads the requests); ``False`` skips it unless the
    policy is clairvoyant, which reads the plan before the run (e.g. for
    training episodes that never read it).

    ``record_requests``: ``True`` keeps one row per request (the result's
    ``requests`` frame, memory O(requests)); ``False`` keeps none; a
    callable is handed the rows in chunks, in request order, as requests
    retire (arrays, :data:`~elastic_des.engine.metrics.ROW_COLUMNS`; e.g. a
    parquet writer). The summary is the same either way.

    ``field`` is the config path of ``world``, for error messages. The
    config is expected to have passed :func:`elastic_des.validate.validate`
    (``elastic_des.run`` does that first); called directly, the engine's
    constructors still refuse impossible values with a ``ValueError``.
    """
    wall_start = time.perf_counter()
    model, fleet = world.model, world.fleet
    env = simpy.Environment()
    plan = serving_plan(model, scenario.workload, scenario.slo)
    windows = world_windows(model, plan, workload, seed)
    limit = None
    if oracle_limit and not policy.clairvoyant and workload.read_ahead:
        # The limit reads the windows the world loads (held until both have read
        # them: a window at most), sizing each tick as it ends.
        windows, read_by_limit = two_readers(windows)
        limit = ClairvoyantLimit(limit_batches(read_by_limit), **limit_keywords(world, scenario, controller_cfg, plan))
    requests = RequestStore(windows, first_tokens=model.service_model == "batching")  # its pool records them
    pool, dispatcher, first_token_of = _fleet(env, model, fleet, requests)
    context = policy_context(world, scenario, controller_cfg, workload, seed, field, oracle=policy.clairvoyant)
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
    slo = SLO.of(scenario.slo)
    outcomes = Outcomes(slo, tables=record_requests is True,
                        on_rows=record_requests if callable(record_requests) else None)
    controller = Controller(
        env, pool, dispatcher, policy, forecaster,
        tick_s=controller_cfg.tick_s, horizon_ticks=controller_cfg.forecast_horizon_ticks,
        duration_s=scenario.duration_s, slo=slo,
        usd_per_replica_s=usd_per_replica_s, min_replicas=fleet.min_replicas,
        max_replicas=fleet.max_replicas, on_tick=_with_limit(limit, on_tick),
        service_estimator=ServiceTimeEstimator(context.mean_service_s, context.service_scv),
        recorder=outcomes, first_token_of=first_token_of,
    )
    env.process(controller.process())
    setup_s = time.perf_counter() - wall_start
    env.run(until=scenario.duration_s)
    billed_replica_s = pool.billed_replica_s()
    env.run()  # let admitted requests finish; nothing new arrives
    outcomes.add(requests.retire())
    ticks = pd.DataFrame.from_records(controller.ticks, columns=list(TICK_COLUMNS))
    # Billed during each tick's window (cold starts included): the cumulative
    # column's increments, so that summing a column never counts a cost twice.
    cumulative = ticks["cost_usd_cumulative"]
    ticks.insert(ticks.columns.get_loc("cost_usd_cumulative"), "cost_usd", cumulative.diff().fillna(cumulative))
    summary = summarize(
        outcomes, ticks, controller.decisions,
        slo=slo, slo_target=scenario.slo.target_compliance,
        cost_usd=billed_replica_s * usd_per_replica_s,
        gpu_hours=billed_replica_s * model.gpus_per_replica / 3600.0, duration_s=scenario.duration_s,
    )
    oracle = limit.plan() if limit is not None else context.future.plan if context.future is not None else None
    summary.update(oracle_summary(oracle, usd_per_replica_s, summary["cost/usd"]))
    total = outcomes.total
    summary["run/events_per_request"] = events_scheduled(env) / total if total else float("nan")
    return WorldResult(world.name, summary, outcomes.table(), ticks, controller.decisions,
                       time.perf_counter() - wall_start, setup_s)


def _with_limit(limit: Optional[ClairvoyantLimit],
                on_tick: Optional[Callable[[float], None]]) -> Optional[Callable[[float], None]]:
    """The controller's hook after each tick: the limit sizes the ticks ended, then ``on_tick``."""
    if limit is None:
        return on_tick

    def ticked(now: float) -> None:
        limit.advance_to(now)
        if on_tick is not None:
            on_tick(now)
    return ticked


def _fleet(env: simpy.Environment, model, fleet, requests: RequestStore):
    """The replica pool and dispatcher of ``model``'s service model, and how to
    read requests' first-token times by position in ``requests`` (from a
    :class:`~elastic_des.engine.records.Gather` of them; None: the model has
    no tokens)."""
    if model.service_model != "batching":
        pool = ReplicaPool(env, model.slots_per_replica, model.cold_start_s)
        dispatcher = Dispatcher(env, pool, requests, fleet.queue_capacity, fleet.queue_timeout_s)
        if model.service_model == "exponential":
            return pool, dispatcher, None
        offset, start_s = requests.offset, requests.start_s
        return pool, dispatcher, lambda completed: completed.take(start_s) + completed.take(offset)
    pool = BatchingPool(
        env, max_num_seqs=model.max_num_seqs, cold_start_s=model.cold_start_s, step_base_s=model.step_base_s,
        step_per_seq_s=model.step_per_seq_s, kv_budget_tokens=model.kv_budget_tokens,
    )
    dispatcher = Dispatcher(env, pool, requests, fleet.queue_capacity, fleet.queue_timeout_s)
    pool.attach(dispatcher)
    first_token = requests.first_token_s
    return pool, dispatcher, lambda completed: completed.take(first_token)
