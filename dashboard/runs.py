"""Run and sweep folders, read and checked for the dashboard.

A *run folder* is what ``python run.py`` (task=simulate) writes:
``summary.json``, ``ticks.parquet`` (both worlds, long form),
``decisions.jsonl`` and Hydra's ``.hydra/config.yaml``. A *sweep folder* is
what ``python run.py -m ...`` writes: one run folder per job and, from the
sweep callback (:mod:`elastic_des.analysis.sweep`), ``sweep_summary.csv`` and
``sweep_aggregate.csv``.

:func:`load_run` and :func:`load_sweep` check a folder before anything is
drawn and raise :class:`~elastic_des.errors.ConfigError` naming the folder
and what is wrong with it, which the dashboard shows as a message instead of
a traceback. Nothing here draws or simulates: the tables derived for the
pages (:func:`cumulative`) are running sums of the per-tick columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from elastic_des.analysis import sweep
from elastic_des.engine.controller import TICK_COLUMNS
from elastic_des.errors import ConfigError, require
from elastic_des.factory import check_targets
from elastic_des.runfolder import MARKER, failure, incomplete_reason, is_run_folder
from elastic_des.analysis.forensics import RunRecords, load_records
from elastic_des.analysis.report import plot_ticks

RUN_FILES = ("summary.json", "ticks.parquet", "decisions.jsonl", ".hydra/config.yaml")
SUMMARY_KEYS = ("run/name", "run/world", "sla/compliance", "sla/target", "sla/latency_slo_s", "cost/usd",
                "cost/usd_per_1k_requests", "workload/mean_rate_rps")
SWEEP_FILES = ("sweep_summary.csv", "sweep_aggregate.csv")
RUN_HINT = "a run folder is what `python run.py` writes, e.g. outputs/runs/default__threshold__0"
SWEEP_HINT = "a sweep folder is what `python run.py -m ...` writes (e.g. outputs/sweeps/<date>)"


@dataclass
class Run:
    """One run folder, read."""

    path: Path
    cfg: DictConfig  # the composed config the run was made with, as written
    records: RunRecords  # summary, raw ticks (both worlds), the policy's decisions
    ticks: pd.DataFrame  # both worlds, with ``time_h``, ``capacity_rps`` and the running sums of :func:`cumulative`

    @property
    def summary(self) -> dict:
        return self.records.summary

    @property
    def decisions(self) -> list[dict]:
        return self.records.decisions

    @property
    def has_baseline(self) -> bool:
        return "run/baseline" in self.summary

    @property
    def tick_times(self) -> list[float]:
        """The controller's tick times (s), shared by both worlds."""
        return self.records.candidate_ticks["time_s"].tolist()


def _folder(path: Optional[str | Path], field: str, hint: str) -> Path:
    require(path is not None and str(path).strip() != "", field, path, f"no folder given; {hint}")
    folder = Path(str(path).strip()).expanduser()
    require(folder.exists(), field, str(folder), f"does not exist; {hint}")
    require(folder.is_dir(), field, str(folder), f"is a file, not a folder; {hint}")
    return folder


def _jobs(folder: Path) -> list[Path]:
    """The run folders directly below ``folder`` (the jobs of a sweep)."""
    return sorted(p.parent for p in folder.glob(f"*/{MARKER}"))


def _foreign_target(cfg: DictConfig) -> Optional[str]:
    try:
        check_targets(cfg, "")
    except ConfigError as exc:
        return str(exc)
    return None


def load_run(path: Optional[str | Path]) -> Run:
    """Read and check the run folder ``path`` (``dashboard.run_dir``)."""
    field = "dashboard.run_dir"
    folder = _folder(path, field, RUN_HINT)
    if not is_run_folder(folder):
        jobs = _jobs(folder)
        if jobs:
            raise ConfigError(f"{field} = {str(folder)!r}: holds {len(jobs)} run folders (a sweep?) but is not one "
                              f"itself: open it in the Sweep page, or pick one of them, e.g. {jobs[0]}")
    error = failure(folder)
    require(error is None, field, str(folder), f"the run failed, there is nothing to show: {error}")
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{field} = {str(folder)!r}: not a run folder, it has no {', '.join(missing)}; {RUN_HINT}")
    reason = incomplete_reason(folder)  # written whole, with the config it was made with
    require(reason is None, field, str(folder), f"{reason}; {RUN_HINT}")
    try:
        records = load_records(folder)
    except (OSError, ValueError) as exc:  # unreadable JSON, JSON lines or parquet
        raise ConfigError(f"{field} = {str(folder)!r}: its files cannot be read ({exc}); {RUN_HINT}") from None
    absent = [key for key in SUMMARY_KEYS if key not in records.summary]
    require(not absent, field, str(folder), f"its summary.json lacks {', '.join(absent)}: not a simulate run")
    columns = [c for c in (*TICK_COLUMNS, "cost_usd", "role", "world") if c not in records.ticks]
    require(not columns, field, str(folder), f"its ticks.parquet lacks the columns {', '.join(columns)}")
    roles = set(records.ticks["role"])
    require("candidate" in roles, field, str(folder), "its ticks.parquet has no row of the policy's (candidate) world")
    require(("baseline" in roles) == ("run/baseline" in records.summary), field, str(folder),
            "its ticks.parquet and summary.json disagree on the baseline world")
    # The config as written, not merged with today's schemas: a run made
    # before a config field was added or renamed can still be shown (only a
    # counterfactual replay needs the strict :func:`load_run_config`).
    try:
        cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")
        # A shared folder is data, not code: the counterfactual button builds
        # its policy, so refuse any class that is not the project's own now.
        refused = _foreign_target(cfg)
        require(refused is None, field, str(folder), f"its .hydra/config.yaml is refused: {refused}")
        require(cfg.get("task", "simulate") == "simulate", field, str(folder),
                f"holds a task={cfg.get('task')} run, not a simulate run")
        ticks = plot_ticks(records.ticks, cfg)
    except (OmegaConfBaseException, yaml.YAMLError, AttributeError, KeyError) as exc:
        raise ConfigError(f"{field} = {str(folder)!r}: its .hydra/config.yaml lacks what the pages need "
                          f"({exc})") from None
    return Run(folder, cfg, records, cumulative(ticks))


def cumulative(ticks: pd.DataFrame) -> pd.DataFrame:
    """``ticks`` with running sums per world, from the start to each tick:
    ``finished_so_far`` (requests completed or dropped), ``met_so_far`` and
    ``sla_so_far`` (the share of those that met the SLO; NaN before the first)."""
    finished = ticks["completions"] + ticks["drops"]
    met = (ticks["sla_compliance"] * finished).fillna(0.0)  # a tick with nothing finished has no compliance
    frame = ticks.assign(finished_so_far=finished.groupby(ticks["role"], sort=False).cumsum(),
                         met_so_far=met.groupby(ticks["role"], sort=False).cumsum())
    frame["sla_so_far"] = frame["met_so_far"] / frame["finished_so_far"].where(frame["finished_so_far"] > 0)
    return frame


def hourly_cost(ticks: pd.DataFrame) -> pd.DataFrame:
    """Per world and hour of simulated time: ``cost_usd`` billed in the hour,
    ``arrivals`` and ``usd_per_1k`` (cost per 1000 requests arriving in the
    hour, as ``cost/usd_per_1k_requests`` is for the whole run)."""
    # A tick closes the window before it: a tick at 3600 s counts in hour 0.
    hour = (np.ceil(ticks["time_s"] / 3600.0) - 1).clip(lower=0).astype(int)
    hourly = (ticks.assign(hour=hour).groupby(["role", "world", "hour"], sort=False, as_index=False)
              .agg(arrivals=("arrivals", "sum"), cost_usd=("cost_usd", "sum")))
    hourly["usd_per_1k"] = 1000 * hourly["cost_usd"] / hourly["arrivals"].where(hourly["arrivals"] > 0)
    return hourly


def at_time(ticks: pd.DataFrame, time_s: float) -> dict[str, pd.Series]:
    """Each world's tick row at ``time_s`` (a tick time), by role."""
    rows = ticks[ticks["time_s"] == time_s]
    require(not rows.empty, "dashboard.cursor_s", time_s, "is not a tick time of this run")
    return {row["role"]: row for _, row in rows.iterrows()}


def savings_over_time(ticks: pd.DataFrame) -> pd.DataFrame:
    """Cost saved against the baseline so far, per tick: ``time_h``,
    ``saving_usd`` and ``saving_fraction`` (of the baseline's cost so far)."""
    wide = ticks.pivot(index="time_s", columns="role", values="cost_usd_cumulative")
    saving = wide["baseline"] - wide["candidate"]
    return pd.DataFrame({"time_h": wide.index / 3600.0, "saving_usd": saving.to_numpy(),
                         "saving_fraction": (saving / wide["baseline"].where(wide["baseline"] > 0)).to_numpy()})


def latest(root: str | Path, marker: str) -> Optional[Path]:
    """The most recently written folder below ``root`` holding ``marker``
    (``complete.json``, the completion marker, for runs; ``multirun.yaml`` for sweeps), if any."""
    root = Path(root)
    if not root.is_dir():
        return None
    found = [p.parent for p in root.glob(f"*/{marker}")]
    return max(found, key=lambda p: (p / marker).stat().st_mtime) if found else None


@dataclass
class Sweep:
    """One sweep folder, read."""

    path: Path
    jobs: pd.DataFrame  # one row per job (``sweep_summary.csv``)
    aggregate: pd.DataFrame  # one row per variant, mean and 95% CI over seeds (``sweep_aggregate.csv``)
    from_csv: bool  # False: the CSVs were missing and the tables were gathered from the jobs' summary.json

    @property
    def pareto_points(self) -> pd.DataFrame:
        return sweep.pareto_points(self.aggregate)


def load_sweep(path: Optional[str | Path]) -> Sweep:
    """Read and check the sweep folder ``path`` (``dashboard.sweep_dir``):
    its CSVs if the sweep callback wrote them, else its jobs' summaries."""
    field = "dashboard.sweep_dir"
    folder = _folder(path, field, SWEEP_HINT)
    if all((folder / name).is_file() for name in SWEEP_FILES):
        try:
            jobs, agg = (pd.read_csv(folder / name) for name in SWEEP_FILES)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{field} = {str(folder)!r}: its CSVs cannot be read ({exc})") from None
        from_csv = True
    else:
        if (folder / "summary.json").is_file():
            raise ConfigError(f"{field} = {str(folder)!r}: is a single run, not a sweep: open it as the run folder; "
                              f"{SWEEP_HINT}")
        # Hydra writes multirun.yaml into every sweep folder; without it a
        # search for summaries could walk a whole disk.
        require((folder / "multirun.yaml").is_file() and bool(_jobs(folder)), field, str(folder),
                f"not a sweep folder, it has neither {' nor '.join(SWEEP_FILES)} nor multirun.yaml and job folders "
                f"with a summary.json; {SWEEP_HINT}")
        try:
            jobs = sweep.collect(folder)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{field} = {str(folder)!r}: a job's summary.json cannot be read ({exc})") from None
        agg, from_csv = sweep.aggregate(jobs), False
    needed = ["sweep/variant", "run/policy", "cost/usd.mean", "cost/usd.ci95", "sla/compliance.mean",
              "sla/compliance.ci95_low", "sla/compliance.ci95_high"]
    absent = [c for c in needed if c not in agg]
    require(not absent, field, str(folder), f"its aggregate table lacks {', '.join(absent)}")
    return Sweep(folder, jobs, agg, from_csv)

