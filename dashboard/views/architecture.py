"""Architecture: the decision loop of the run, both worlds, and its headline numbers."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common import current_run, headline
from elastic_des.analysis.report import HEADLINE, architecture

st.title("Architecture")
run = current_run()
headline(run)
s, cfg = run.summary, run.cfg

st.pyplot(architecture(cfg, s), width="stretch")
baseline = (f"The **static baseline** world (**{s['run/baseline']}**) receives exactly the same requests "
            f"(common random numbers) on a fixed fleet of {s['baseline/replicas/max']} "
            f"{cfg.baseline.world.model.name} replicas sized for the planned peak, and never scales."
            if run.has_baseline else "This run has no baseline world (`baseline.enabled=false`).")
st.markdown(
    f"""
Every {cfg.controller.tick_s:g} s of simulated time the controller of the **policy world** (**{s['run/world']}**)
measures the window just ended (arrival rate, slot utilization, queue, latency percentiles), feeds the arrival
rate to the **forecaster**, and asks the **policy** (the agent) for a target replica count given the
observation and the forecast for the next {cfg.controller.forecast_horizon_ticks} ticks. The **action**
(scale up, hold, scale down) resizes the **cluster**: new replicas are billed from the start of their
{cfg.world.model.cold_start_s:g} s cold start; removed ones drain their requests first.

{baseline}
"""
)

st.subheader("Headline numbers")
worlds = {s["run/world"]: ""}
if run.has_baseline:
    worlds[s["run/baseline"]] = "baseline/"


def shown(fmt: str, value) -> str:
    return "n/a" if value is None else fmt.format(value)


table = pd.DataFrame({label: [shown(fmt, s.get(prefix + key)) for key, _, fmt in HEADLINE]
                      for label, prefix in worlds.items()},
                     index=[label for _, label, _ in HEADLINE])
st.table(table)
