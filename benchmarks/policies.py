"""Every policy over a scenario suite and seeds, and the Q-agent's dominance check.

    python benchmarks/policies.py                           # the suite below, 5 seeds, 2 processes
    python benchmarks/policies.py --seeds 3 --scenarios default flash_crowd
    python benchmarks/policies.py --trace /work/shared/traces/servegen_deepseek-r1_aggregate_rate.csv:rates
    python benchmarks/policies.py --csv outputs/policies.csv
    python benchmarks/policies.py --policies q_learning --include outputs/policies.csv   # add one policy

Each (scenario, policy, seed) is one ``elastic_des.run`` of the policy's world
(no static LLM baseline: it does not change the SLM world's result), with the
scenario's SLO target set to ``--slo-target`` (default 0.999, the agent's
training target). Policies: static, threshold, hpa, kpa, predictive,
q_learning; a tuned baseline ``conf/policy/<name>_tuned.yaml`` is added when
it exists, and ``oracle`` when ``conf/policy/oracle.yaml`` exists (either is
skipped with a message otherwise).

The table prints mean ± 95 % CI (Student t over seeds) of SLA compliance,
p99 latency, cost, cost / oracle, scaling actions and direction reversals.
The dominance check then asks, per scenario, whether q_learning

1. has an SLA at least the best non-clairvoyant policy's minus 0.05 points;
2. wherever any baseline's mean SLA reaches the target, reaches it too, at
   a cost no higher than every baseline that does;
3. costs at most 1.25 × the oracle (needs the oracle);
4. reverses direction no more often than the median tuned baseline (the
   median baseline when none is tuned),

and prints PASS/FAIL with the numbers.

Scenarios: names from ``scenarios/``, built-in variants (``SUITE``) and
``--trace path:format[:time_compression[:rate_scale]]`` replays of trace
files (``rates`` files are scaled to ``--trace-rate`` req/s mean unless a
scale is given).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from elastic_des.app import CONF_DIR, run  # noqa: E402

BASELINES = ["static", "threshold", "hpa", "kpa", "predictive"]
TUNABLE = ["threshold", "hpa", "kpa", "predictive"]
AGENT = "q_learning"
ORACLE = "oracle"

# name -> (base scenario, overrides). Bursty variants: rate noise redrawn every
# few seconds (a doubly-stochastic Poisson process, per-second counts
# over-dispersed), on top of the standard shapes.
SUITE = {
    "default": ("default", []),
    "flash_crowd": ("flash_crowd", []),
    "azure_conv": ("azure_conv", []),
    "servegen_week": ("servegen_week", []),
    "bursty_default": ("default", ["scenario.workload.noise_cv=0.6", "scenario.workload.noise_window_s=5",
                                   "scenario.duration_s=21600", "scenario.workload.diurnal_peak_s=18000"]),
    "bursty_flash": ("flash_crowd", ["scenario.workload.noise_cv=0.8", "scenario.workload.noise_window_s=10"]),
    "bursty_high_rate": ("flash_crowd", ["scenario.workload.base_rate_rps=40", "scenario.workload.noise_cv=0.6",
                                         "scenario.workload.noise_window_s=5", "scenario.duration_s=10800"]),
    "azure_code": ("azure_conv", ["scenario.workload.trace.path=AzureLLMInferenceTrace_code.csv"]),
}


def trace_scenario(spec: str, mean_rps: float) -> tuple[str, tuple[str, list[str]]]:
    """``path:format[:compression[:scale]]`` as a named suite entry."""
    parts = spec.split(":")
    path, fmt = Path(parts[0]).resolve(), parts[1] if len(parts) > 1 else "timestamps"
    compression = float(parts[2]) if len(parts) > 2 else 1.0
    overrides = [f"scenario.workload.trace.path={path}", f"scenario.workload.trace.format={fmt}",
                 f"scenario.workload.trace.time_compression={compression}"]
    if fmt == "rates":
        rates = pd.read_csv(path)
        scale = float(parts[3]) if len(parts) > 3 else mean_rps / float(rates["total_rate_rps"].mean())
        span = float(rates["window_start_s"].iloc[-1] + (rates["window_start_s"].diff().median() or 0.0))
        overrides += [f"scenario.workload.trace.rate_scale={scale:.6g}",
                      f"scenario.duration_s={min(86_400.0, span / compression):g}"]
        base = "servegen_week"
    else:
        base = "azure_conv"
    name = path.stem.replace("_aggregate_rate", "")
    return name, (base, overrides + [f"scenario.name={name}"])


def policy_options() -> tuple[list[str], list[str], bool]:
    """The policies to run, the tuned baselines among them, and whether the oracle exists."""
    policy_dir = CONF_DIR / "policy"
    tuned = [f"{b}_tuned" for b in TUNABLE if (policy_dir / f"{b}_tuned.yaml").is_file()]
    for b in TUNABLE:
        if f"{b}_tuned" not in tuned:
            print(f"note: no tuned config conf/policy/{b}_tuned.yaml; {b} runs with its defaults only")
    oracle = (policy_dir / f"{ORACLE}.yaml").is_file()
    if not oracle:
        print("note: no conf/policy/oracle.yaml (policy=oracle, issue 14) in this checkout: the oracle and the "
              "cost/oracle checks are skipped")
    return BASELINES + tuned + [AGENT] + ([ORACLE] if oracle else []), tuned, oracle


def one_run(scenario: str, base: str, overrides: list[str], policy: str, seed: int, slo_target: float) -> dict:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"scenario={base}", *overrides, f"policy={policy}", f"seed={seed}", "baseline.enabled=false",
            f"scenario.slo.target_compliance={slo_target}", "output.progress=false", "output.report=false",
            "output.requests=false"])
    start = time.perf_counter()
    summary = run(cfg)
    return {"scenario": scenario, "policy": policy, "seed": seed, "sla": summary["sla/compliance"],
            "p99_s": summary["latency/p99_s"], "cost_usd": summary["cost/usd"],
            "oracle_ratio": summary.get("cost/oracle_ratio", math.nan), "actions": summary["scaling/actions"],
            "reversals": summary["scaling/direction_changes"], "wall_s": time.perf_counter() - start}


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
        for column in ("sla", "p99_s", "cost_usd", "oracle_ratio", "actions", "reversals"):
            row[column], row[f"{column}_ci"] = mean_ci(group[column])
        rows.append(row)
    return pd.DataFrame(rows)


def fmt(value: float, ci: float, digits: int) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.{digits}f}" + ("" if math.isnan(ci) else f" ± {ci:.{digits}f}")


def print_table(table: pd.DataFrame) -> None:
    print("| scenario | policy | SLA | p99 (s) | cost (USD) | cost/oracle | actions | reversals |")
    print("|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.scenario} | {r.policy} | {fmt(r.sla, r.sla_ci, 4)} | {fmt(r.p99_s, r.p99_s_ci, 1)} | "
              f"{fmt(r.cost_usd, r.cost_usd_ci, 1)} | {fmt(r.oracle_ratio, r.oracle_ratio_ci, 2)} | "
              f"{fmt(r.actions, r.actions_ci, 0)} | {fmt(r.reversals, r.reversals_ci, 0)} |")


def dominance(table: pd.DataFrame, tuned: list[str], slo_target: float) -> pd.DataFrame:
    """The four checks of the module docs, per scenario."""
    rows = []
    for scenario, group in table.groupby("scenario", sort=False):
        by = group.set_index("policy")
        if AGENT not in by.index:
            continue
        q = by.loc[AGENT]
        others = by.drop(index=[AGENT] + ([ORACLE] if ORACLE in by.index else []))
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
        median = float(np.median(by.loc[pool, "reversals"]))
        checks["stable"] = (q.reversals <= median, f"{q.reversals:.0f} vs median {median:.0f} of {pool}")
        for name, (ok, text) in checks.items():
            rows.append({"scenario": scenario, "check": name, "passed": bool(ok), "numbers": text})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="*", default=list(SUITE))
    parser.add_argument("--trace", nargs="*", default=[], help="path:format[:time_compression[:rate_scale]]")
    parser.add_argument("--trace-rate", type=float, default=10.0, help="mean req/s a rates trace is scaled to")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--policies", nargs="*", default=None)
    parser.add_argument("--slo-target", type=float, default=0.999)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--csv", type=Path, default=None, help="write the per-run rows here")
    parser.add_argument("--include", nargs="*", type=Path, default=[],
                        help="per-run CSVs of earlier runs (--csv) to add to this one's rows")
    args = parser.parse_args(argv)
    suite = {}
    for name in args.scenarios:
        suite[name] = SUITE.get(name, (name, []))
    suite.update(trace_scenario(spec, args.trace_rate) for spec in args.trace)
    policies, tuned, _ = policy_options()
    if args.policies:
        policies = [p for p in policies if p in args.policies]
    jobs = [(name, base, overrides, policy, seed) for name, (base, overrides) in suite.items()
            for policy in policies for seed in range(args.seeds)]
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    rows = Parallel(n_jobs=args.jobs)(delayed(one_run)(*job, args.slo_target) for job in jobs)
    runs = pd.concat([pd.DataFrame(rows)] + [pd.read_csv(p) for p in args.include], ignore_index=True)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        runs.to_csv(args.csv, index=False)
    table = aggregate(runs)
    print(f"\n{len(jobs)} runs, {args.seeds} seeds, SLO target {args.slo_target}, "
          f"{time.perf_counter() - start_wall:.0f} s wall, {runs['wall_s'].sum():.0f} s of runs\n")
    print_table(table)
    checks = dominance(table, tuned, args.slo_target)
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
