"""Throughput of the elastic_des engine against idiomatic SimPy and Ciw.

Every engine simulates the same M/M/c queue (``c`` servers, load ``rho``,
exponential service of mean 1 s, unbounded FIFO queue) and replays the very
same requests: arrival and service times are sampled once, before any
timing, by elastic_des's own workload and service code (seeded named
streams), and handed to every engine as arrays.

* ``elastic_des``: the engine alone, wired as
  :func:`~elastic_des.engine.simulation.simulate_world` wires it: a SimPy
  environment, a :class:`~elastic_des.engine.replicas.ReplicaPool` of ``c``
  one-slot replicas, the :class:`~elastic_des.engine.dispatcher.Dispatcher` (a SimPy
  process per request) and the :class:`~elastic_des.engine.controller.Controller`
  observing and deciding every 60 s with the static policy, run until every
  request is served.
* ``elastic_des_world``: :func:`~elastic_des.engine.simulation.simulate_world` end
  to end: the same engine plus the per-request table, the tick table and the
  summary (not the workload sampling, not the files ``run.py`` writes).
* ``simpy``: the textbook SimPy model: a source process that sleeps until
  each arrival and starts a customer process, which requests a slot of a
  ``simpy.Resource`` and holds it for its service time.
* ``simpy_callbacks``: SimPy with callbacks alone and no process (see
  :func:`run_simpy_callbacks`): the reference ceiling; the engine's ratio to
  it is its share of what SimPy's event loop allows.
* ``ciw``: Ciw's documented API (``create_network``,
  ``simulate_until_max_customers``). Ciw samples its own times and cannot
  take arrays of them, so the inter-arrival and service times are replayed
  through ``ciw.dists.Sequential`` (sampling ``Exponential`` costs about the
  same).

Each engine is timed from being handed the arrays to having the mean wait,
which is printed so that an engine cannot be fast by being wrong: on the same
requests all five agree (to rounding). Repetitions are interleaved, one of
each engine per round, and medians are compared, because the machine may be
shared; CPU time is reported beside wall time for the same reason.
Before each timed run the heap is collected (untimed), so no engine pays for
a full collection of the garbage the engines before it left.

Usage: ``python benchmarks/engine.py [--requests 200000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import ciw
import numpy as np
import simpy

from elastic_des.config import ControllerConfig
from elastic_des.scenario_config import ScenarioConfig, WorkloadConfig
from elastic_des.world_config import FleetConfig, ModelConfig, WorldConfig
from elastic_des.engine.estimators import ServiceTimeEstimator
from elastic_des.engine.controller import Controller
from elastic_des.engine.dispatcher import NOT_DROPPED, Dispatcher
from elastic_des.engine.metrics import Outcomes
from elastic_des.engine.records import RequestStore
from elastic_des.forecasters.simple import EWMAForecaster
from elastic_des.policies.static import StaticPolicy
from elastic_des.engine.replicas import ReplicaPool
from elastic_des.engine.service import service_stream, service_times
from elastic_des.engine.slo import SLO
from elastic_des.engine.simulation import policy_context, simulate_world
from elastic_des.engine.workload import Workload, build_workload


@dataclass(frozen=True)
class Case:
    """An M/M/c workload sampled by elastic_des, with the configs that made it."""

    servers: int
    seed: int
    world: WorldConfig
    scenario: ScenarioConfig
    controller: ControllerConfig
    workload: Workload
    service_s: np.ndarray

    @property
    def arrival_s(self) -> np.ndarray:
        return self.workload.arrival_s

    def __len__(self) -> int:
        return len(self.workload)


def mmc_case(requests: int, servers: int = 8, rho: float = 0.9, seed: int = 0) -> Case:
    """An M/M/c queue at load ``rho`` with at least ``requests`` arrivals.

    Arrivals are a Poisson process over a horizon four standard deviations
    longer than ``requests / rate``, so their count reaches ``requests``.
    """
    if requests < 1:
        raise ValueError(f"requests = {requests}: must be >= 1")
    if servers < 1:
        raise ValueError(f"servers = {servers}: must be >= 1")
    if not 0 < rho < 1:
        raise ValueError(f"rho = {rho}: must be in (0, 1)")
    rate = rho * servers  # the mean service time is 1 s
    duration = math.ceil((requests + 4 * math.sqrt(requests)) / rate)
    scenario = ScenarioConfig(
        name="mmc_benchmark", duration_s=float(duration), workload=WorkloadConfig(base_rate_rps=rate)
    )
    world = WorldConfig(
        name="mmc",
        model=ModelConfig(name="exponential_1s", service_model="exponential", mean_service_s=1.0,
                          slots_per_replica=1, cold_start_s=0.0),
        fleet=FleetConfig(min_replicas=1, max_replicas=servers, initial_replicas=servers,
                          queue_capacity=None, queue_timeout_s=None),
    )
    workload = build_workload(scenario, seed)
    service = service_times(world.model, workload, service_stream(seed))
    return Case(servers, seed, world, scenario, ControllerConfig(), workload, service)


@dataclass(frozen=True)
class Result:
    """One timed run: the mean wait it computed and how long it took."""

    requests: int
    mean_wait_s: float
    wall_s: float
    cpu_s: float


class _Stopwatch:
    """Wall and CPU time since construction."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def result(self, requests: int, mean_wait_s: float) -> Result:
        return Result(requests, mean_wait_s, time.perf_counter() - self.wall, time.process_time() - self.cpu)


def run_elastic_des(case: Case) -> Result:
    """The engine alone, wired as ``simulate_world`` wires it."""
    policy, forecaster = StaticPolicy(case.servers), EWMAForecaster()
    # A static policy reads no clairvoyant plan: none is computed.
    context = policy_context(case.world, case.scenario, case.controller, case.workload, case.seed, oracle=False)
    policy.reset(context)
    forecaster.reset(case.controller.tick_s)
    watch = _Stopwatch()
    env = simpy.Environment()
    pool = ReplicaPool(env, case.world.model.slots_per_replica, case.world.model.cold_start_s)
    requests = RequestStore.of(arrival=case.arrival_s, service=case.service_s, planning=case.service_s,
                               prompt=case.workload.prompt_tokens, output=case.workload.output_tokens)
    dispatcher = Dispatcher(env, pool, requests, None, None)
    outcomes = Outcomes(SLO.of(case.scenario.slo))
    pool.start(case.servers)
    controller = Controller(
        env, pool, dispatcher, policy, forecaster, tick_s=case.controller.tick_s,
        horizon_ticks=case.controller.forecast_horizon_ticks, duration_s=case.scenario.duration_s,
        slo=SLO.of(case.scenario.slo), usd_per_replica_s=1.0,
        min_replicas=case.world.fleet.min_replicas, max_replicas=case.world.fleet.max_replicas,
        service_estimator=ServiceTimeEstimator(context.mean_service_s, context.service_scv),
        recorder=outcomes,
    )
    env.process(controller.process())
    env.run(until=case.scenario.duration_s)
    env.run()
    outcomes.add(requests.retire())
    mean_wait = outcomes.wait_sum / outcomes.counts[NOT_DROPPED]
    return watch.result(len(case), mean_wait)


def run_elastic_des_world(case: Case) -> Result:
    """``simulate_world`` end to end: engine, request and tick tables, summary."""
    policy, forecaster = StaticPolicy(case.servers), EWMAForecaster()
    watch = _Stopwatch()
    result = simulate_world(case.world, case.scenario, case.controller, policy, forecaster, case.workload, case.seed)
    return watch.result(len(case), float(result.requests["wait_s"].mean()))


def _simpy_source(env: simpy.Environment, server: simpy.Resource, arrival: list, service: list, wait: list):
    for i, (arrives, serves) in enumerate(zip(arrival, service)):
        yield env.timeout(arrives - env.now)
        env.process(_simpy_customer(env, server, i, serves, wait))


def _simpy_customer(env: simpy.Environment, server: simpy.Resource, i: int, serves: float, wait: list):
    arrived = env.now
    with server.request() as request:
        yield request
        wait[i] = env.now - arrived
        yield env.timeout(serves)


def run_simpy(case: Case) -> Result:
    """Idiomatic SimPy: a source process, and a process and a Request per customer."""
    watch = _Stopwatch()
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=case.servers)
    wait = [0.0] * len(case)
    env.process(_simpy_source(env, server, case.arrival_s.tolist(), case.service_s.tolist(), wait))
    env.run()
    return watch.result(len(case), statistics.fmean(wait))


def run_simpy_callbacks(case: Case) -> Result:
    """SimPy driven by callbacks alone, no process: the ceiling of a SimPy engine.

    Each arrival is a timeout whose callback schedules the next arrival and
    either starts a service (a timeout whose callback frees the server and
    starts the oldest waiting customer) or queues the customer. Nothing is
    resumed, so this is what SimPy's event loop costs by itself; the
    elastic_des engine pays for a process per request on top.
    """
    watch = _Stopwatch()
    env = simpy.Environment()
    arrival, service = case.arrival_s.tolist(), case.service_s.tolist()
    n = len(arrival)
    wait = [0.0] * n
    waiting: deque = deque()
    free = [case.servers]

    def start(i: int) -> None:
        wait[i] = env.now - arrival[i]
        env.timeout(service[i]).callbacks.append(finish)

    def finish(_event) -> None:
        if waiting:
            start(waiting.popleft())
        else:
            free[0] += 1

    def arrive(event) -> None:
        i = event.value
        if i + 1 < n:
            env.timeout(arrival[i + 1] - env.now, i + 1).callbacks.append(arrive)
        if free[0]:
            free[0] -= 1
            start(i)
        else:
            waiting.append(i)

    if n:
        env.timeout(arrival[0], 0).callbacks.append(arrive)
    env.run()
    return watch.result(len(case), statistics.fmean(wait))


def run_ciw(case: Case) -> Result:
    """Ciw replaying the same inter-arrival and service times."""
    watch = _Stopwatch()
    gaps = np.diff(case.arrival_s, prepend=0.0).tolist()
    gaps.append(1e18)  # after the last request, an arrival that never comes
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Sequential(gaps)],
        service_distributions=[ciw.dists.Sequential(case.service_s.tolist())],
        number_of_servers=[case.servers],
    )
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_customers(len(case), method="Complete")
    mean_wait = statistics.fmean(record.waiting_time for record in simulation.get_all_records())
    return watch.result(len(case), mean_wait)


Engine = Callable[[Case], Result]

ENGINES: dict[str, Engine] = {
    "elastic_des": run_elastic_des,
    "elastic_des_world": run_elastic_des_world,
    "simpy": run_simpy,
    "simpy_callbacks": run_simpy_callbacks,
    "ciw": run_ciw,
}


def benchmark(case: Case, repeat: int, engines: dict[str, Engine] = ENGINES) -> dict[str, list[Result]]:
    """``repeat`` interleaved rounds of every engine on ``case``."""
    if repeat < 1:
        raise ValueError(f"repeat = {repeat}: must be >= 1")
    results: dict[str, list[Result]] = {name: [] for name in engines}
    for _ in range(repeat):
        for name, engine in engines.items():
            # Untimed: each engine starts from a collected heap, so none pays for a
            # full collection of the garbage the engines before it left.
            gc.collect()
            results[name].append(engine(case))
    return results


def median_rates(results: dict[str, list[Result]]) -> dict[str, tuple[float, float]]:
    """Median requests per second of wall time and of CPU time, by engine."""
    return {
        name: (
            statistics.median(r.requests / r.wall_s for r in runs),
            statistics.median(r.requests / r.cpu_s for r in runs),
        )
        for name, runs in results.items()
    }


def report(case: Case, results: dict[str, list[Result]]) -> str:
    """The table of requests/s and mean waits, and the ratios of medians."""
    rates = median_rates(results)
    rounds = len(next(iter(results.values())))
    lines = [
        f"M/M/{case.servers}, rho {len(case) / case.scenario.duration_s / case.servers:.3f} (realised), "
        f"{len(case):,} requests, seed {case.seed}, {rounds} interleaved round(s)",
        f"{'engine':<18} {'req/s (wall)':>13} {'req/s (CPU)':>12}  {'wall req/s of each round':<26} mean wait (s)",
    ]
    for name, runs in results.items():
        each = " ".join(f"{r.requests / r.wall_s:,.0f}" for r in runs)
        waits = sorted({f"{r.mean_wait_s:.9f}" for r in runs})
        lines.append(f"{name:<18} {rates[name][0]:>13,.0f} {rates[name][1]:>12,.0f}  {each:<26} {' '.join(waits)}")
    lines.append("ratios of medians, wall (CPU); spread = min-max of the per-round wall ratios:")
    for name in ("elastic_des", "elastic_des_world"):
        for other in ("simpy", "simpy_callbacks", "ciw"):
            if name in rates and other in rates:
                wall, cpu = (rates[name][k] / rates[other][k] for k in (0, 1))
                each = [b.wall_s / a.wall_s for a, b in zip(results[name], results[other])]
                share = f" ({name}'s share of the callbacks-only ceiling)" if other == "simpy_callbacks" else ""
                lines.append(f"  {name} / {other}: {wall:.2f}x ({cpu:.2f}x), per round "
                             f"{min(each):.2f}-{max(each):.2f}{share}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="at least this many requests (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of every engine (default 3)")
    parser.add_argument("--servers", type=int, default=8, help="c, the number of servers (default 8)")
    parser.add_argument("--rho", type=float, default=0.9, help="load per server (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled requests (default 0)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {', '.join(ENGINES)}")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat = {args.repeat}: must be >= 1")
    names = args.engines.split(",")
    unknown = [name for name in names if name not in ENGINES]
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    try:
        case = mmc_case(args.requests, args.servers, args.rho, args.seed)
        results = benchmark(case, args.repeat, {name: ENGINES[name] for name in names})
    except ValueError as exc:
        parser.error(str(exc))
    print(report(case, results))


if __name__ == "__main__":
    main()
