"""What every page of the dashboard shares: the folders it reads, cached,
the headline numbers of the run, and how numbers are printed.

The run and sweep folders are chosen in the sidebar (their first values come
from the ``run``/``sweep`` query parameters, then ``--run-dir``/``--sweep-dir``
on the command line, then the newest folder under ``outputs/``). A folder
that is not a run or a sweep stops the page with a message saying what is
wrong, never with a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import streamlit as st

from dashboard.runs import MARKER, Run, Sweep, latest, load_run, load_sweep
from elastic_des.errors import ConfigError

RUNS_ROOT, SWEEPS_ROOT = Path("outputs/runs"), Path("outputs/sweeps")
MAKE_RUN = "python run.py scenario.duration_s=21600 hydra.run.dir=outputs/runs/demo"
MAKE_SWEEP = "python run.py -m policy=static,threshold,hpa seed=0,1,2 scenario.duration_s=21600"


def folder_inputs(run_dir: Optional[str], sweep_dir: Optional[str]) -> None:
    """The sidebar's folder fields; ``run_dir``/``sweep_dir``: the command line's."""
    query = st.query_params
    defaults = {
        "run_dir": query.get("run") or run_dir or str(latest(RUNS_ROOT, MARKER) or ""),
        "sweep_dir": query.get("sweep") or sweep_dir or str(latest(SWEEPS_ROOT, "multirun.yaml") or ""),
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    st.sidebar.text_input("Run folder", key="run_dir", help="A folder written by `python run.py`.")
    st.sidebar.text_input("Sweep folder", key="sweep_dir", help="A folder written by `python run.py -m ...`.")


def _stamp(folder: str, names: tuple[str, ...]) -> tuple:
    """The files' modification times: a folder rewritten by a new run is read again."""
    paths = [Path(folder.strip()) / name for name in names]
    return tuple(p.stat().st_mtime_ns if p.is_file() else None for p in paths)


@st.cache_data(show_spinner="Reading the run folder...", max_entries=8)
def _run(folder: str, stamp: tuple) -> Run:
    return load_run(folder)


@st.cache_data(show_spinner="Reading the sweep folder...", max_entries=8)
def _sweep(folder: str, stamp: tuple) -> Sweep:
    return load_sweep(folder)


def current_run() -> Run:
    """The run of the sidebar's folder, or a message and the end of the page."""
    folder = st.session_state.get("run_dir", "")
    try:
        return _run(folder, _stamp(folder, ("summary.json", "ticks.parquet", "decisions.jsonl")))
    except ConfigError as exc:
        st.error(f"Cannot show this run. {exc}")
        st.info(f"Enter a run folder in the sidebar, or make one with `{MAKE_RUN}`.")
        st.stop()


def current_sweep() -> Sweep:
    """The sweep of the sidebar's folder, or a message and the end of the page."""
    folder = st.session_state.get("sweep_dir", "")
    try:
        return _sweep(folder, _stamp(folder, ("sweep_summary.csv", "sweep_aggregate.csv", "multirun.yaml")))
    except ConfigError as exc:
        st.error(f"Cannot show this sweep. {exc}")
        st.info(f"Enter a sweep folder in the sidebar, or make one with `{MAKE_SWEEP}`.")
        st.stop()


# ---------------------------------------------------------------- numbers


def pct(value: Optional[float], digits: int = 3) -> str:
    """A share as a percentage: ``pct(0.99343) == '99.343%'``."""
    return "n/a" if value is None or value != value else f"{value:.{digits}%}"


def usd(value: Optional[float]) -> str:
    """Dollars with cents: ``usd(1234.5) == '$1,234.50'``."""
    return "n/a" if value is None or value != value else f"${value:,.2f}"


def headline(run: Run) -> None:
    """The run's name and its numbers from ``summary.json``: SLA compliance
    and cost of each world, and what the policy saved."""
    s = run.summary
    versus = f" vs the static baseline **{s['run/baseline']}**" if run.has_baseline else " (no baseline world)"
    st.caption(f"Run **{s['run/name']}** · policy world **{s['run/world']}**{versus} · "
               f"SLO {s['sla/latency_slo_s']:g} s for {pct(s['sla/target'], 1)} of requests · `{run.path}`")
    columns = st.columns(5 if run.has_baseline else 2)
    columns[0].metric(f"SLA, {s['run/world']}", pct(s["sla/compliance"]),
                      help="Share of all requests that met the latency SLO (summary.json: sla/compliance).")
    columns[1].metric(f"cost, {s['run/world']}", usd(s["cost/usd"]), help="summary.json: cost/usd")
    if run.has_baseline:
        columns[2].metric(f"SLA, {s['run/baseline']}", pct(s["baseline/sla/compliance"]),
                          help="summary.json: baseline/sla/compliance")
        columns[3].metric(f"cost, {s['run/baseline']}", usd(s["baseline/cost/usd"]),
                          help="summary.json: baseline/cost/usd")
        columns[4].metric("saving vs baseline", usd(s["savings/cost_usd"]),
                          f"{pct(s['savings/cost_fraction'], 1)} of the baseline's cost", delta_arrow="off",
                          help="summary.json: savings/cost_usd and savings/cost_fraction")
