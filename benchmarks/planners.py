"""The planners against the clairvoyant limit: a results table over seeds.

For each scenario and policy, ``--seeds`` runs of the SLM world (no baseline
world, no per-request table, no report), then mean ± 95 % Student-t
half-width of SLA compliance, p99 latency, cost, ``cost/oracle_ratio``,
scaling actions and reversals (direction changes). Runs go to ``--jobs``
worker processes; each run derives all its randomness from its seed, so the
table does not depend on ``--jobs``. Writes ``--out`` (CSV, one row per run)
and prints a Markdown table. ``--max-duration-s`` cuts longer scenarios
to their first hours (the one-day ones take 20–40 s a run on a loaded
2-core machine).

    python benchmarks/planners.py --seeds 5 --jobs 2 --out outputs/planners.csv
"""

from __future__ import annotations

import argparse
import math
import sys
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from scipy import stats

SCENARIOS = ("default", "flash_crowd", "azure_conv", "servegen_week", "bursty_gamma", "bursty_onoff",
             "bursty_weibull", "servegen_reason", "servegen_image")
POLICIES = ("static", "threshold", "hpa", "kpa", "predictive", "oracle")
METRICS = {
    "sla/compliance": ("SLA", "{:.4f}", "{:.4f}"),
    "latency/p99_s": ("p99 (s)", "{:.1f}", "{:.1f}"),
    "cost/usd": ("cost (USD)", "{:.1f}", "{:.1f}"),
    "cost/oracle_ratio": ("cost / oracle", "{:.2f}", "{:.2f}"),
    "scaling/actions": ("actions", "{:.0f}", "{:.0f}"),
    "scaling/direction_changes": ("reversals", "{:.0f}", "{:.0f}"),
}


def one_run(job: tuple[str, str, int, float]) -> dict:
    scenario, policy, seed, max_duration_s = job
    from hydra import compose, initialize_config_dir

    from elastic_des.app import CONF_DIR, run

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"scenario={scenario}", f"policy={policy}", f"seed={seed}", "baseline.enabled=false",
            "output.requests=false", "output.report=false", "output.progress=false",
        ])
        if cfg.scenario.duration_s > max_duration_s:
            cfg.scenario.duration_s = max_duration_s
    with tempfile.TemporaryDirectory() as folder:
        summary = run(cfg, Path(folder))
        wall_s = json.loads((Path(folder) / "timing.json").read_text())["candidate"]["wall_s"]
    return {"scenario": scenario, "policy": policy, "seed": seed, "sla/target": summary["sla/target"],
            **{k: summary[k] for k in METRICS}, "run/wall_s": wall_s}


def ci95(values: pd.Series) -> float:
    n = values.count()
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def markdown(frame: pd.DataFrame) -> str:
    header = "| scenario (target) | policy | " + " | ".join(label for label, _, _ in METRICS.values()) + " |"
    lines = [header, "|" + "---|" * (2 + len(METRICS))]
    for (scenario, policy), group in frame.groupby(["scenario", "policy"], sort=False):
        cells = []
        for key, (_, fmt, fmt_ci) in METRICS.items():
            cells.append(f"{fmt.format(group[key].mean())} ± {fmt_ci.format(ci95(group[key]))}")
        lines.append(f"| {scenario} ({group['sla/target'].iloc[0]:g}) | {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--policies", nargs="*", default=list(POLICIES))
    parser.add_argument("--out", default="outputs/planners.csv")
    parser.add_argument("--max-duration-s", type=float, default=float("inf"),
                        help="cut longer scenarios to their first this many seconds")
    args = parser.parse_args(argv)
    jobs = [(s, p, seed, args.max_duration_s) for s in args.scenarios for p in args.policies
            for seed in range(args.seeds)]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = []
        for i, row in enumerate(pool.map(one_run, jobs), 1):
            rows.append(row)
            print(f"[{i}/{len(jobs)}] {row['scenario']} {row['policy']} {row['seed']}: "
                  f"SLA {row['sla/compliance']:.4f} ratio {row['cost/oracle_ratio']:.2f} ({row['run/wall_s']:.1f} s)",
                  file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(markdown(frame))


if __name__ == "__main__":
    main()
