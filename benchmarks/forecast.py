"""How well does each forecaster predict the request rate?

Every forecaster of ``conf/forecaster`` (as configured there) is scored on
MAE and MAPE at horizons of 1, 5 and 15 ticks, next to seasonal naive, on:

* each scenario of ``scenarios/``: trained/warmed up on the scenario's
  warm-up history (``--warmup-days`` before t = 0, see
  ``elastic_des.engine.history``; a trace scenario with nothing before its
  start warms up on repeats of the replayed span, ``controller.trace_warmup
  =auto``, so its learned forecasters have seen the series they are tested
  on: an optimistic score), tested on the rates the controller observes in
  the run (arrivals per 60 s tick of the sampled workload);
* the ServeGen trace (10-minute windows over 14 days): warmed up on the
  first ``--train-days`` days, tested on the rest.

A forecast made after tick ``t`` for ``h`` ticks ahead is compared with the
rate observed in tick ``t + h``. MAPE skips ticks whose observed rate is 0.
A forecaster that cannot be used on a series is listed with the reason.
It prints a table; it asserts nothing. Usage::

    python benchmarks/forecast.py [--warmup-days 1] [--train-days 10] [--seed 0] [--save-dir DIR]

``--save-dir`` keeps the trained networks (``DIR/<series>__<kind>.pt`` and
``.pt.json``), for runs that load them with ``forecaster.model_path``
instead of training at every run's start.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from elastic_des.app import CONF_DIR
from elastic_des.errors import ConfigError
from elastic_des.engine.history import warmup_history
from elastic_des.engine.traces import load_rate_trace, resolve_trace_path
from elastic_des.engine.workload import build_workload

HORIZONS = (1, 5, 15)
FORECASTERS = ("seasonal_naive", "sma", "ewma", "lstm", "tcn")
SERVEGEN = "servegen_m-large_aggregate_rate.csv"


@dataclass
class Series:
    """A forecasting task: history before, rates to predict after."""

    name: str
    tick_s: float
    history: np.ndarray
    test: np.ndarray


def compose_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def scenario_series(scenario_name: str, seed: int, warmup_days: float) -> Series:
    cfg = compose_config(f"scenario={scenario_name}", f"seed={seed}")
    tick_s = float(cfg.controller.tick_s)
    workload = build_workload(cfg.scenario, seed)
    ticks = int(np.ceil(cfg.scenario.duration_s / tick_s))
    counts = np.bincount((workload.arrival_s // tick_s).astype(int), minlength=ticks)[:ticks]
    history = warmup_history(cfg.scenario, tick_s, seed, warmup_days, cfg.controller.trace_warmup)
    return Series(f"scenario {scenario_name}", tick_s, history, counts / tick_s)


def servegen_series(train_days: float) -> Series:
    trace = load_rate_trace(resolve_trace_path(SERVEGEN))
    split = int(round(train_days * 86_400 / trace.window_s))
    return Series("servegen m-large", trace.window_s, trace.rate_rps[:split], trace.rate_rps[split:])


def score(forecaster, series: Series) -> tuple[dict, float, float]:
    """{h: (MAE, MAPE)} of ``forecaster`` on ``series``, warm-up and per-tick seconds."""
    deepest = max(HORIZONS)
    start = time.perf_counter()
    forecaster.reset(series.tick_s)
    forecaster.warm_up(series.history)
    warm_s = time.perf_counter() - start
    predictions = np.empty((len(series.test), deepest))
    start = time.perf_counter()
    for t, rate in enumerate(series.test):
        forecaster.update(rate)
        predictions[t] = forecaster.predict(deepest)
    tick_s = (time.perf_counter() - start) / len(series.test)
    scores = {}
    for h in HORIZONS:
        predicted, actual = predictions[:-h, h - 1], series.test[h:]
        error = np.abs(predicted - actual)
        positive = actual > 0
        scores[h] = (float(error.mean()), float((error[positive] / actual[positive]).mean() * 100))
    return scores, warm_s, tick_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup-days", type=float, default=1.0, help="history before each scenario")
    parser.add_argument("--train-days", type=float, default=10.0, help="ServeGen days to warm up on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-dir", type=Path, default=None, help="keep the trained networks here")
    args = parser.parse_args()

    scenarios = sorted(p.stem for p in (CONF_DIR / "scenario").glob("*.yaml"))
    tasks = [scenario_series(name, args.seed, args.warmup_days) for name in scenarios]
    tasks.append(servegen_series(args.train_days))
    header = f"{'series':<20} {'forecaster':<15} {'warm-up s':>9} {'ms/tick':>7}" + "".join(
        f" {'MAE@' + str(h):>8} {'MAPE%@' + str(h):>8} {'vs SN@' + str(h):>8}" for h in HORIZONS
    )
    print(header)
    print("-" * len(header))
    for series in tasks:
        print(f"# {series.name}: tick {series.tick_s:g} s, {len(series.history)} history ticks, "
              f"{len(series.test)} test ticks, mean rate {series.test.mean():.2f} req/s")
        reference = None
        for name in FORECASTERS:
            forecaster = instantiate(compose_config(f"forecaster={name}").forecaster)
            try:
                scores, warm_s, tick_s = score(forecaster, series)
            except ConfigError as exc:  # e.g. a trace scenario with no history to train on
                print(f"{series.name:<20} {name:<15} n/a: {exc}")
                continue
            reference = reference or scores
            row = f"{series.name:<20} {name:<15} {warm_s:>9.2f} {tick_s * 1e3:>7.3f}"
            for h in HORIZONS:
                mae, mape = scores[h]
                row += f" {mae:>8.3f} {mape:>8.2f} {mae / reference[h][0]:>8.3f}"
            print(row, flush=True)
            if args.save_dir is not None and hasattr(forecaster, "save"):
                forecaster.save(args.save_dir / f"{series.name.replace(' ', '_')}__{name}.pt")
    print("vs SN@h: MAE relative to seasonal naive (< 1 is better).")


if __name__ == "__main__":
    main()
