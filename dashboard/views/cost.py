"""Cost analysis: what each world billed over the run, what the policy saved,
and the cost of serving a thousand requests."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.common import current_run, headline, usd
from dashboard.runs import hourly_cost, savings_over_time
from elastic_des.analysis.plots import cumulative_cost

TIME = alt.X("time_h:Q", title="simulated time (h)")

st.title("Cost analysis")
run = current_run()
headline(run)
s = run.summary

worlds = [("", s["run/world"])] + ([("baseline/", s["run/baseline"])] if run.has_baseline else [])
table = pd.DataFrame({
    label: [usd(s[f"{p}cost/usd"]), f"{s[f'{p}cost/gpu_hours']:,.1f}", f"${s[f'{p}cost/usd_per_1k_requests']:.4f}",
            f"{s[f'{p}replicas/mean']:.2f}", f"{s[f'{p}requests/total']:,}"]
    for p, label in worlds
}, index=["cost", "GPU hours", "cost per 1k requests", "mean replicas", "requests"])
st.table(table)

st.pyplot(cumulative_cost(run.ticks), width="stretch")

if run.has_baseline:
    st.subheader("Saving over time")
    saved = savings_over_time(run.ticks).assign(saving_pct=lambda f: 100 * f["saving_fraction"])
    tooltip = [alt.Tooltip("time_h:Q", title="time (h)", format=".2f"),
               alt.Tooltip("saving_usd:Q", title="saved (USD)", format=",.2f"),
               alt.Tooltip("saving_pct:Q", title="saved (%)", format=".1f")]
    left, right = st.columns(2)
    left.markdown("**Saved so far (USD)**: the baseline's cost so far minus the policy world's")
    left.altair_chart(alt.Chart(saved).mark_area(line=True, opacity=0.3).encode(
        x=TIME, y=alt.Y("saving_usd:Q", title="USD"), tooltip=tooltip).properties(height=260), width="stretch")
    right.markdown("**Saved so far (%)**: the same, as a share of the baseline's cost so far")
    right.altair_chart(alt.Chart(saved).mark_line().encode(
        x=TIME, y=alt.Y("saving_pct:Q", title="% of the baseline's cost"),
        tooltip=tooltip).properties(height=260), width="stretch")

st.subheader("Cost per 1k requests, hour by hour")
st.caption("Cost billed in each hour of simulated time divided by the requests that arrived in it; the table above "
           "has the figure for the whole run.")
hourly = hourly_cost(run.ticks)
st.altair_chart(alt.Chart(hourly).mark_line(point=True).encode(
    x=alt.X("hour:Q", title="hour of simulated time"),
    # A log scale: the two worlds' costs per request can differ tenfold.
    y=alt.Y("usd_per_1k:Q", title="USD per 1k requests (log scale)", scale=alt.Scale(type="log")),
    # The worlds in the order and colors of the cumulative-cost figure (seaborn's first two).
    color=alt.Color("world:N", legend=alt.Legend(orient="top"),
                    scale=alt.Scale(domain=list(dict.fromkeys(run.ticks["world"])), range=["#1f77b4", "#ff7f0e"])),
    tooltip=["world", "hour", alt.Tooltip("cost_usd:Q", title="cost (USD)", format=",.2f"),
             alt.Tooltip("arrivals:Q", format=","), alt.Tooltip("usd_per_1k:Q", title="USD per 1k", format=".4f")],
).properties(height=320), width="stretch")
