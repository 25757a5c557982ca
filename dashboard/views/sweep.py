"""Sweep: the variants of a multirun against each other (cost against SLA
compliance, cost saved), mean ± 95% CI over seeds, and every job's numbers.

The tables are the sweep callback's ``sweep_aggregate.csv`` and
``sweep_summary.csv`` (:mod:`elastic_des.analysis.sweep`); the figures are
:func:`elastic_des.analysis.plots.pareto` and :func:`elastic_des.analysis.plots.savings`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common import current_sweep
from elastic_des.analysis.plots import pareto, savings
from elastic_des.analysis.sweep import savings_points


def mean_ci(agg: pd.DataFrame, metric: str, fmt: str, scale: float = 1.0) -> pd.Series:
    """``mean ± ci95`` of ``metric`` per variant (the mean alone for one seed)."""
    mean, ci = scale * agg[f"{metric}.mean"], scale * agg[f"{metric}.ci95"]
    return pd.Series([fmt.format(m) + ("" if pd.isna(c) else f" ± {fmt.format(c)}") for m, c in zip(mean, ci)],
                     index=agg.index)


def mean_interval(agg: pd.DataFrame, metric: str, fmt: str, scale: float = 1.0) -> pd.Series:
    """``mean (low–high)`` of a proportion per variant: its 95% CI bounds,
    clipped to [0, 1] by the aggregation (the mean alone for one seed)."""
    mean, low, high = (scale * agg[f"{metric}.{k}"] for k in ("mean", "ci95_low", "ci95_high"))
    return pd.Series([fmt.format(m) + ("" if pd.isna(lo) or lo == hi else f" ({fmt.format(lo)}–{fmt.format(hi)})")
                      for m, lo, hi in zip(mean, low, high)], index=agg.index)


def open_job(job_dir: str) -> None:
    st.session_state["run_dir"] = job_dir


st.title("Sweep")
sweep = current_sweep()
agg, jobs = sweep.aggregate, sweep.jobs
source = ("the sweep callback's sweep_summary.csv and sweep_aggregate.csv" if sweep.from_csv else
          "the jobs' summary.json (the sweep has no sweep_*.csv: it ran without the sweep callback)")
st.caption(f"`{sweep.path}` · {len(jobs)} jobs in {len(agg)} variants · read from {source}")

st.subheader("Variants (mean ± 95% CI over seeds; SLA: mean and its CI, within 0–100%)")
table = pd.DataFrame({"variant": agg["sweep/variant"], "policy": agg["run/policy"], "seeds": agg["n_seeds"],
                      "SLA compliance": mean_interval(agg, "sla/compliance", "{:.3f}%", 100),
                      "cost (USD)": mean_ci(agg, "cost/usd", "{:,.2f}"),
                      "latency p99 (s)": mean_ci(agg, "latency/p99_s", "{:.2f}")})
if "savings/cost_fraction.mean" in agg:
    table["saving vs baseline"] = mean_ci(agg, "savings/cost_fraction", "{:.1f}%", 100)
    table["baseline"] = agg["run/baseline"]
st.dataframe(table, hide_index=True)

st.pyplot(pareto(sweep.pareto_points), width="stretch")
if "savings/cost_fraction.mean" in agg:
    st.columns([3, 2])[0].pyplot(savings(savings_points(agg)), width="stretch")

st.subheader("Jobs")
columns = {"sweep/job_dir": "job", "sweep/variant": "variant", "run/seed": "seed", "sla/compliance": "SLA",
           "cost/usd": "cost (USD)", "savings/cost_fraction": "saving", "latency/p99_s": "latency p99 (s)",
           "scaling/actions": "scaling actions"}
shown = jobs[[c for c in columns if c in jobs]].rename(columns=columns)
for share in ("SLA", "saving"):
    if share in shown:
        shown[share] = 100 * shown[share]
st.dataframe(shown, hide_index=True, column_config={
    "SLA": st.column_config.NumberColumn(format="%.3f%%"),
    "saving": st.column_config.NumberColumn(format="%.1f%%"),
    "cost (USD)": st.column_config.NumberColumn(format="dollar"),
    "latency p99 (s)": st.column_config.NumberColumn(format="%.2f"),
})
# The job chosen is in the address (``/sweep?job=<job folder>``): a reload or a shared link keeps it.
job_dirs = list(jobs["sweep/job_dir"])
asked = st.query_params.get("job")
job = st.selectbox("job", job_dirs, index=job_dirs.index(asked) if asked in job_dirs else 0)
st.query_params["job"] = job
if st.button("Open this job as the run", on_click=open_job, args=(str(sweep.path / job),),
             icon=":material/open_in_new:"):
    st.switch_page("views/playback.py", query_params={"run": str(sweep.path / job)})
