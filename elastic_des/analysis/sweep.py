"""Sweeps that aggregate themselves: a Hydra callback and the tables it writes.

``python run.py -m seed=0,1,2 policy=static,threshold`` runs one job per
combination, each writing its ``summary.json`` under the sweep folder. When
the last job has returned, :class:`SweepSummary` (registered under
``hydra.callbacks`` in ``conf/config.yaml``) gathers them into

* ``sweep_summary.csv``: one row per job, every summary key a column, plus
  ``sweep/job_dir``, ``sweep/overrides`` (the job's command-line overrides)
  and ``sweep/variant`` (the overrides that vary across the sweep, seed
  excepted: the jobs of one variant differ only in their seed);
* ``sweep_aggregate.csv``: one row per variant, with ``<metric>.mean`` and
  ``<metric>.ci95`` (half-width of the 95% Student-t confidence interval of
  the mean over seeds; empty for a single seed) of every numeric metric,
  and its bounds ``<metric>.ci95_low``/``.ci95_high``. For a proportion
  (:data:`PROPORTIONS`: SLA compliance, drop rate, P(wait), utilization) the
  bounds are clipped to [0, 1] and ``<metric>.ci95_clipped`` says where the
  t interval crossed them, so no interval claims a compliance above 100%;
* ``sweep_pareto.png`` (cost against SLA compliance, with the static
  baseline) and ``sweep_savings.png`` (cost saved against the baseline).

Only complete job folders (with the completion marker of
:mod:`elastic_des.runfolder`) are aggregated. A job that failed or did not
finish is listed in ``sweep_summary.csv`` with ``sweep/status`` (``failed``
or ``incomplete``) and ``sweep/error``, and the callback then exits non-zero
naming those jobs. ``python -m elastic_des.sweep DIR`` (re)aggregates any
sweep folder the same way, e.g. after an interrupted sweep.

The callback runs where the sweep was launched, after every job, whichever
launcher ran them (basic, joblib, Ray), reading the jobs' files: with a
remote launcher the sweep folder must be on storage both sides see.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from scipy import stats

from elastic_des.analysis import plots
from elastic_des.atomic import write_text
from elastic_des.runfolder import failure, incomplete_reason, is_run_folder

log = logging.getLogger(__name__)

GROUP = ["sweep/variant", "run/scenario", "run/policy", "run/world"]
# Metrics that are shares in [0, 1] (also under ``baseline/``): their CI bounds are clipped.
PROPORTIONS = ("sla/compliance", "drops/rate", "wait/p_wait", "utilization/mean")


def is_proportion(metric: str) -> bool:
    return metric.removeprefix("baseline/") in PROPORTIONS


def _overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def job_folders(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep: its run folders, hidden (partial) ones excepted."""
    return sorted(p for p in Path(sweep_dir).iterdir()
                  if p.is_dir() and not p.name.startswith(".") and is_run_folder(p))


def unfinished(sweep_dir: Path) -> list[tuple[str, str, str]]:
    """``(job folder, status, reason)`` of every job that is not complete:
    status ``failed`` (its ``failed.json``) or ``incomplete``."""
    found = []
    for job_dir in job_folders(sweep_dir):
        error, reason = failure(job_dir), incomplete_reason(job_dir)
        if error is not None:
            found.append((job_dir.name, "failed", error))
        elif reason is not None:
            found.append((job_dir.name, "incomplete", reason))
    return found


def collect(sweep_dir: Path) -> pd.DataFrame:
    """One row per complete job of the sweep (its ``summary.json``)."""
    sweep_dir = Path(sweep_dir)
    rows, skipped = [], []
    for job_dir in job_folders(sweep_dir):
        reason = incomplete_reason(job_dir)
        if reason is None and not (job_dir / "summary.json").is_file():
            reason = "no summary.json (not a simulate task)"
        if reason is not None:
            skipped.append(f"{job_dir.name} ({reason})")
            continue
        overrides = _overrides(job_dir)
        rows.append({**json.loads((job_dir / "summary.json").read_text()), "sweep/job_dir": job_dir.name,
                     "sweep/overrides": " ".join(overrides), "_overrides": overrides})
    if skipped:
        log.warning("jobs left out of the aggregate: %s", "; ".join(skipped))
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame.from_records(rows)
    frame["sweep/variant"] = _variants(frame)
    return frame.drop(columns="_overrides")


def _variants(frame: pd.DataFrame) -> list[str]:
    """Each job's overrides that vary across the sweep, seed excepted (the
    policy's world label if nothing else varies)."""
    parsed = [dict(o.split("=", 1) for o in overrides if "=" in o) for overrides in frame["_overrides"]]
    keys = list(dict.fromkeys(k for p in parsed for k in p if k != "seed"))
    varying = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    return [" ".join(f"{k}={p[k]}" for k in varying if k in p) or world
            for p, world in zip(parsed, frame["run/world"])]


def ci95(values: Any) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean
    (NaN for fewer than two values)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def aggregate(jobs: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% CI half-width over seeds of every numeric metric, per
    variant (and its scenario, policy, world and baseline labels)."""
    metrics = [c for c in jobs.select_dtypes(include=["number", "bool"]).columns if c != "run/seed"]
    keys = GROUP + [c for c in ("run/baseline",) if c in jobs]
    rows = []
    for key, group in jobs.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key))
        row["n_seeds"] = len(group)
        row["seeds"] = " ".join(str(s) for s in sorted(group["run/seed"]))
        for metric in metrics:
            values = group[metric].astype(float)
            mean, half = values.mean(), ci95(values)
            row[f"{metric}.mean"], row[f"{metric}.ci95"] = mean, half
            low, high = mean - half, mean + half
            if is_proportion(metric):
                row[f"{metric}.ci95_clipped"] = bool(low < 0 or high > 1)
                low, high = max(low, 0.0), min(high, 1.0)
            row[f"{metric}.ci95_low"], row[f"{metric}.ci95_high"] = low, high
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_points(agg: pd.DataFrame) -> pd.DataFrame:
    """The policies' worlds and the distinct static baselines, as plotted."""
    def columns(prefix: str) -> dict:
        return {"cost_mean": agg[f"{prefix}cost/usd.mean"], "cost_ci95": agg[f"{prefix}cost/usd.ci95"],
                "sla_mean": agg[f"{prefix}sla/compliance.mean"], "sla_low": agg[f"{prefix}sla/compliance.ci95_low"],
                "sla_high": agg[f"{prefix}sla/compliance.ci95_high"]}

    points = pd.DataFrame({"variant": agg["sweep/variant"], "policy": agg["run/policy"], "reference": False,
                           **columns("")})
    if "baseline/cost/usd.mean" in agg:
        base = pd.DataFrame({"variant": "static baseline " + agg["run/baseline"], "policy": "static baseline",
                             "reference": True, **columns("baseline/")}).drop_duplicates(["cost_mean", "sla_mean"])
        if len(base) > 1:  # the sweep changed the baseline too (e.g. the scenario): say which is which
            base["variant"] += " of " + agg.loc[base.index, "sweep/variant"]
        points = pd.concat([points, base], ignore_index=True)
    return points


def savings_points(agg: pd.DataFrame) -> pd.DataFrame:
    """Each variant's cost saving against its baseline, as plotted."""
    return pd.DataFrame({"variant": agg["sweep/variant"], "policy": agg["run/policy"],
                         "saving_mean": agg["savings/cost_fraction.mean"],
                         "saving_ci95": agg["savings/cost_fraction.ci95"]})


def summarize_sweep(sweep_dir: Path) -> dict[str, Path]:
    """Write the sweep's tables and figures into ``sweep_dir``; return their paths."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir)
    if jobs.empty:
        log.warning("no complete job under %s: nothing to aggregate", sweep_dir)
        return {}
    agg = aggregate(jobs)
    paths = {"summary": sweep_dir / "sweep_summary.csv", "aggregate": sweep_dir / "sweep_aggregate.csv",
             "pareto": sweep_dir / "sweep_pareto.png"}
    failed = pd.DataFrame([{"sweep/job_dir": name, "sweep/status": status, "sweep/error": reason}
                           for name, status, reason in unfinished(sweep_dir)])
    table = pd.concat([jobs.assign(**{"sweep/status": "complete", "sweep/error": ""}), failed], ignore_index=True)
    write_text(paths["summary"], table.to_csv(index=False))
    write_text(paths["aggregate"], agg.to_csv(index=False))
    plots.save_png(plots.pareto(pareto_points(agg)), paths["pareto"])
    if "savings/cost_fraction.mean" in agg:
        paths["savings"] = sweep_dir / "sweep_savings.png"
        plots.save_png(plots.savings(savings_points(agg)), paths["savings"])
    return paths


class SweepSummary(Callback):
    """Aggregate a multirun into ``sweep_*.csv`` and ``sweep_*.png`` when it ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        paths = summarize_sweep(sweep_dir)
        for path in paths.values():
            log.info("sweep: wrote %s", path)
        message = unfinished_message(sweep_dir)
        if message:
            raise SystemExit(message)  # after the aggregate: the finished jobs are not lost


def unfinished_message(sweep_dir: Path) -> str:
    """``error: 1 of 3 jobs did not complete: ...`` (one line per job), or ``""``."""
    bad = unfinished(sweep_dir)
    if not bad:
        return ""
    total = len(job_folders(sweep_dir))
    lines = [f"  {name}: {status}: {reason}" for name, status, reason in bad]
    return "\n".join([f"error: {len(bad)} of {total} jobs of {sweep_dir} did not complete:", *lines])
