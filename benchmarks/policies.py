"""Every policy over a scenario suite and seeds, and the Q-agent's dominance check.

    python benchmarks/tune_baselines.py                     # once: the tuned baselines (benchmarks/tuned/)
    python benchmarks/policies.py                           # the suite below, 5 seeds, 2 processes
    python benchmarks/policies.py --seeds 3 --scenarios default flash_crowd
    python benchmarks/policies.py --trace /work/shared/traces/servegen_deepseek-r1_aggregate_rate.csv:rates
    python benchmarks/policies.py --csv outputs/policies.csv
    python benchmarks/policies.py --policies q_learning --include outputs/policies.csv   # rerun one policy
    python benchmarks/policies.py --policies q_learning --agent-overrides policy.burst_hold_s=900   # a variant

Each (scenario, policy, seed) is one ``elastic_des.run`` of the policy's world
(no static LLM baseline: it does not change the SLM world's result), with the
scenario's SLO target set to ``--slo-target`` (default 0.999, the agent's
training target). Policies: ``static`` (the SLM fleet sized for the planned
peak), the rules ``threshold``, ``hpa``, ``kpa`` and ``predictive`` tuned
for each scenario by ``benchmarks/tune_baselines.py`` (Optuna, on a seed
that is not an evaluation seed; ``benchmarks/tuned/policy/<rule>_tuned_<scenario>.yaml``,
reported as ``<rule>_tuned``; a rule without a tuned file for a scenario
runs with its defaults and is reported under its plain name, with a note),
``q_learning`` (one shipped model for every scenario) and ``oracle``.
``--untuned`` adds the rules with their defaults beside the tuned ones.

The table prints mean ± 95 % CI (Student t over seeds) of SLA compliance,
p99 latency, cost, cost / oracle, scaling actions, direction reversals and
flaps (reversals within 300 s of the previous move, ``scaling/flaps``).
The dominance check then asks, per scenario, whether q_learning

1. has an SLA at least the best non-clairvoyant policy's minus 0.05 points;
2. wherever any baseline's mean SLA reaches the target, reaches it too, at
   a cost no higher than every baseline that does;
3. costs at most 1.25 × the oracle;
4. flaps (reverses direction within 300 s, the agent's cooldown, of its
   previous move: the issue's "direction reversals within the cooldown")
   no more often than the median tuned baseline (the median baseline when
   none is tuned); the numbers also give all reversals, however far apart,

and prints PASS/FAIL with the numbers. A run whose configuration does not
fit its scenario (a ConfigError, such as a static fleet for the peak above
``world.fleet.max_replicas``) is listed with its message under the table,
its cells ``–``; the rest of the suite runs.

Scenarios: names from ``scenarios/`` (``SUITE`` by default: the standard
four, three bursty ones and two replays of trace files that training never
sees) and ``--trace path:format[:time_compression[:rate_scale]]`` replays of
trace files (``rates`` files are scaled to ``--trace-rate`` req/s mean unless
a scale is given; untuned rules there). A ``timestamps`` file given so is read
with the ``TraceConfig`` defaults: columns found by name and the time unit
inferred (``auto``: the Azure, BurstGPT and Mooncake layouts and other common
names); to benchmark a trace that needs more (columns of other names, no
token counts), write a scenario YAML that sets them (README, "Workloads") and
pass it to ``--scenarios``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from elastic_des.analysis.tuning import tuned_config_path  # noqa: E402
from elastic_des.app import CONF_DIR, run  # noqa: E402
from elastic_des.engine.traces import load_aggregate_rates, load_request_trace  # noqa: E402
from elastic_des.errors import ConfigError  # noqa: E402

BASELINES = ["static", "threshold", "hpa", "kpa", "predictive"]
TUNABLE = ["threshold", "hpa", "kpa", "predictive"]
AGENT = "q_learning"
ORACLE = "oracle"

TUNED_DIR = ROOT / "benchmarks" / "tuned"
# The standard scenarios, three bursty ones, and two replays of trace files
# the agent's training never sees (its replays are default and servegen_week).
SUITE = ["default", "flash_crowd", "azure_conv", "servegen_week", "bursty_gamma", "bursty_onoff",
         "bursty_weibull", "azure_code", "servegen_reason"]


def trace_scenario(spec: str, mean_rps: float) -> tuple[str, tuple[str, list[str]]]:
    """``path:format[:compression[:scale]]`` as a named suite entry (format
    ``timestamps``, ``rates`` or ``clients``, as ``scenario.workload.trace.format``)."""
    parts = spec.split(":")
    path, fmt = Path(parts[0]).resolve(), parts[1] if len(parts) > 1 else "timestamps"
    compression = float(parts[2]) if len(parts) > 2 else 1.0
    overrides = [f"scenario.workload.trace.path={path}", f"scenario.workload.trace.format={fmt}",
                 f"scenario.workload.trace.time_compression={compression}"]
    if fmt in ("rates", "clients"):
        rates = load_aggregate_rates(path, fmt)
        # Compression plays the same requests faster, so it multiplies the rate too.
        scale = float(parts[3]) if len(parts) > 3 else \
            mean_rps / (float(rates.rate_rps.mean()) * compression)
        span = float(rates.window_start_s[-1] + rates.window_s)
        overrides += [f"scenario.workload.trace.rate_scale={scale:.6g}",
                      f"scenario.duration_s={min(86_400.0, span / compression):g}"]
        base = "servegen_week"
    else:
        # The run lasts as long as the replayed trace: compression shortens it, a slowed trace lasts longer.
        span = float(load_request_trace(path).time_s[-1]) + 1.0
        overrides.append(f"scenario.duration_s={span / compression:g}")
        base = "azure_conv"
    # Compression in the name: two speeds of one file are two suite entries, not one.
    stem = path.name.removesuffix(".gz").removesuffix(".csv").removesuffix(".jsonl")
    name = stem.replace("_aggregate_rate", "") + ("" if compression == 1.0 else f"@{compression:g}x")
    return name, (base, overrides + [f"scenario.name={name}"])


def scenario_policies(scenario: str, untuned: bool, selected: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``(label, policy config)`` to run on ``scenario``: static, each rule
    tuned for it (its defaults, with a note when there is no tuned file and
    the rule is among the ``selected`` labels or none are given), the agent
    and the oracle."""
    runs = [("static", "static")]
    for rule in TUNABLE:
        tuned = tuned_config_path(TUNED_DIR, rule, scenario)
        if tuned.is_file():
            runs.append((f"{rule}_tuned", tuned.stem))
        elif not selected or rule in selected or f"{rule}_tuned" in selected:
            print(f"note: no {tuned.relative_to(ROOT)}; {rule} runs with its defaults on {scenario}")
        if untuned or not tuned.is_file():
            runs.append((rule, rule))
    return runs + [(AGENT, AGENT), (ORACLE, ORACLE)]


def merged_runs(new: pd.DataFrame, included: list[pd.DataFrame]) -> pd.DataFrame:
    """The per-run rows of ``new`` and of the ``included`` earlier runs; a row
    of ``new`` (or of a later included frame) replaces an earlier one of the
    same scenario, policy and seed, so rerunning a policy does not average
    its new runs with its old ones."""
    runs = pd.concat([*included, new], ignore_index=True)
    return runs.drop_duplicates(["scenario", "policy", "seed"], keep="last").reset_index(drop=True)


METRICS = ("sla", "p99_s", "cost_usd", "oracle_ratio", "actions", "reversals", "flaps")


def one_run(scenario: str, base: str, overrides: list[str], policy: str, config: str, seed: int,
            slo_target: float, agent_overrides: tuple[str, ...] = ()) -> dict:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"hydra.searchpath=[file://{TUNED_DIR}]", f"scenario={base}", *overrides, f"policy={config}",
            f"seed={seed}", "baseline.enabled=false",
            f"scenario.slo.target_compliance={slo_target}", "output.progress=false", "output.report=false",
            "output.requests=false", *(agent_overrides if policy == AGENT else ())])
    start = time.perf_counter()
    try:
        summary = run(cfg)
    except ConfigError as exc:  # this policy does not fit this scenario: say why, run the rest of the suite
        return {"scenario": scenario, "policy": policy, "seed": seed, **{column: math.nan for column in METRICS},
                "wall_s": time.perf_counter() - start, "error": str(exc)}
    return {"scenario": scenario, "policy": policy, "seed": seed, "sla": summary["sla/compliance"],
            "p99_s": summary["latency/p99_s"], "cost_usd": summary["cost/usd"],
            "oracle_ratio": summary.get("cost/oracle_ratio", math.nan), "actions": summary["scaling/actions"],
            "reversals": summary["scaling/direction_changes"], "flaps": summary["scaling/flaps"], "wall_s": time.perf_counter() - start}


def mean_ci(values: pd.Series) -> tuple[float, float]:
    x = values.dropna().to_numpy(dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    oracle_cost = runs[runs["policy"] == ORACLE].set_index(["scenario", "seed"])["cost_usd"]
    if len(oracle_cost):  # the ratio per seed, when the summary does not carry it
        key = list(zip(runs["scenario"], runs["seed"]))
        ratio = runs["cost_usd"].to_numpy() / oracle_cost.reindex(key).to_numpy()
        runs = runs.assign(oracle_ratio=runs["oracle_ratio"].fillna(pd.Series(ratio, index=runs.index)))
    rows = []
    for (scenario, policy), group in runs.groupby(["scenario", "policy"], sort=False):
        row = {"scenario": scenario, "policy": policy, "seeds": len(group)}
        for column in METRICS:
            row[column], row[f"{column}_ci"] = mean_ci(group[column])
        rows.append(row)
    return pd.DataFrame(rows)


def fmt(value: float, ci: float, digits: int) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.{digits}f}" + ("" if math.isnan(ci) else f" ± {ci:.{digits}f}")


def print_table(table: pd.DataFrame) -> None:
    print("| scenario | policy | SLA | p99 (s) | cost (USD) | cost/oracle | actions | reversals | flaps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.scenario} | {r.policy} | {fmt(r.sla, r.sla_ci, 4)} | {fmt(r.p99_s, r.p99_s_ci, 1)} | "
              f"{fmt(r.cost_usd, r.cost_usd_ci, 1)} | {fmt(r.oracle_ratio, r.oracle_ratio_ci, 2)} | "
              f"{fmt(r.actions, r.actions_ci, 0)} | {fmt(r.reversals, r.reversals_ci, 0)} | "
              f"{fmt(r.flaps, r.flaps_ci, 0)} |")


def dominance(table: pd.DataFrame, tuned: list[str], slo_target: float) -> pd.DataFrame:
    """The four checks of the module docs, per scenario."""
    rows = []
    for scenario, group in table.groupby("scenario", sort=False):
        by = group.set_index("policy")
        if AGENT not in by.index:
            continue
        q = by.loc[AGENT]
        others = by.drop(index=[AGENT] + ([ORACLE] if ORACLE in by.index else []))
        if others.empty:  # the agent alone (--policies q_learning): nothing to compare with
            continue
        best = others["sla"].max()
        checks = {"sla_close": (q.sla >= best - 0.0005, f"{q.sla:.4f} vs best {best:.4f} ({others['sla'].idxmax()})")}
        meeting = others[others["sla"] >= slo_target]
        if len(meeting):
            ok = q.sla >= slo_target and q.cost_usd <= meeting["cost_usd"].min()
            checks["target_cheapest"] = (ok, f"SLA {q.sla:.4f}, cost {q.cost_usd:.1f} vs cheapest meeting target "
                                             f"{meeting['cost_usd'].min():.1f} ({meeting['cost_usd'].idxmin()})")
        else:
            checks["target_cheapest"] = (True, "no baseline meets the target")
        if ORACLE in by.index:
            ratio = q.cost_usd / by.loc[ORACLE].cost_usd
            checks["oracle_1.25"] = (ratio <= 1.25, f"{ratio:.2f} × oracle")
        pool = [p for p in tuned if p in by.index] or [p for p in BASELINES if p in by.index]
        median = float(np.median(by.loc[pool, "flaps"]))
        checks["stable"] = (q.flaps <= median, f"{q.flaps:.1f} flaps vs median {median:.1f} of {pool} "
                                               f"(reversals {q.reversals:.0f} vs median "
                                               f"{float(np.median(by.loc[pool, 'reversals'])):.0f})")
        for name, (ok, text) in checks.items():
            rows.append({"scenario": scenario, "check": name, "passed": bool(ok), "numbers": text})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="*", default=list(SUITE))
    parser.add_argument("--trace", nargs="*", default=[], help="path:format[:time_compression[:rate_scale]]")
    parser.add_argument("--trace-rate", type=float, default=10.0, help="mean req/s a rates trace is scaled to")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--policies", nargs="*", default=None, help="labels to run (e.g. q_learning hpa_tuned)")
    parser.add_argument("--untuned", action="store_true", help="also run the rules with their defaults")
    parser.add_argument("--slo-target", type=float, default=0.999)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--agent-overrides", nargs="*", default=[],
                        help="Hydra overrides for the q_learning runs only (e.g. policy.burst_hold_s=900)")
    parser.add_argument("--csv", type=Path, default=None, help="write the per-run rows here")
    parser.add_argument("--include", nargs="*", type=Path, default=[],
                        help="per-run CSVs of earlier runs (--csv) to add to this one's rows "
                             "(a run made now replaces an included one of the same scenario, policy and seed)")
    args = parser.parse_args(argv)
    suite = {name: (name, []) for name in args.scenarios}
    suite.update(trace_scenario(spec, args.trace_rate) for spec in args.trace)
    jobs = [(name, base, overrides, label, config, seed) for name, (base, overrides) in suite.items()
            for label, config in scenario_policies(name, args.untuned, args.policies or ())
            if not args.policies or label in args.policies for seed in range(args.seeds)]
    jobs_order = {(name, label, seed): i for i, (name, _, _, label, _, seed) in enumerate(jobs)}
    start_wall = time.perf_counter()
    rows = []
    for row in Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
            delayed(one_run)(*job, args.slo_target, tuple(args.agent_overrides)) for job in jobs):
        rows.append(row)  # progress on stderr, so the table on stdout stays clean
        outcome = f"ERROR {row['error']}" if "error" in row else f"SLA {row['sla']:.4f}, {row['cost_usd']:.1f} USD"
        print(f"[{len(rows)}/{len(jobs)}] {row['scenario']} {row['policy']} seed {row['seed']}: "
              f"{outcome} ({row['wall_s']:.0f} s; {time.perf_counter() - start_wall:.0f} s so far)",
              file=sys.stderr, flush=True)
    rows.sort(key=lambda r: jobs_order[(r["scenario"], r["policy"], r["seed"])])  # the table's order
    runs = merged_runs(pd.DataFrame(rows), [pd.read_csv(p) for p in args.include])
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        runs.to_csv(args.csv, index=False)
    table = aggregate(runs)
    print(f"\n{len(jobs)} runs, {args.seeds} seeds, SLO target {args.slo_target}, "
          f"{time.perf_counter() - start_wall:.0f} s wall, {runs['wall_s'].sum():.0f} s of runs\n")
    print_table(table)
    if "error" in runs:
        failed = runs.dropna(subset=["error"]).drop_duplicates(["scenario", "policy", "error"])
        print(f"\nfailed runs: {runs['error'].notna().sum()} (– in the table)")
        for r in failed.itertuples():
            print(f"- {r.scenario} {r.policy}: {r.error}")
    checks = dominance(table, [f"{rule}_tuned" for rule in TUNABLE], args.slo_target)
    print("\n## q_learning dominance check\n")
    print("| scenario | check | result | numbers |")
    print("|---|---|---|---|")
    for r in checks.itertuples():
        print(f"| {r.scenario} | {r.check} | {'PASS' if r.passed else 'FAIL'} | {r.numbers} |")
    passed = int(checks["passed"].sum()) if len(checks) else 0
    print(f"\n{passed} of {len(checks)} checks pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
