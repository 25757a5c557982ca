"""Dual-world playback: demand against the capacity of both worlds, tick by
tick, with a time cursor, a play control and the running numbers at the cursor.

Playing advances the cursor every half second by a fixed number of ticks
(a run plays in about :data:`FRAMES` steps); only the cursor's part of the
page (a fragment) is redrawn.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.common import current_run, headline, pct, usd
from dashboard.runs import Run, at_time
from elastic_des.analysis.forensics import clock

FRAMES = 80
FRAME_S = 0.5
PANEL_WIDTH = 820  # px: a concatenated chart cannot take the container's width
SERIES = {"arrival_rate_rps": "demand (observed)", "capacity_rps": "serving capacity",
          "forecast_rps": "forecast (next tick)"}
COLORS = {"demand (observed)": "#8c8c8c", "serving capacity": "#1f77b4", "forecast (next tick)": "#ff7f0e"}


def toggle_play(times: list[float]) -> None:
    playing = not st.session_state.get("playing", False)
    if playing and st.session_state.get("cursor_s") == times[-1]:
        st.session_state["cursor_s"] = times[0]  # play again from the start
    st.session_state["playing"] = playing


def first_cursor(times: list[float], query: str | None) -> float:
    """The cursor of a first visit: the tick closing the window that holds
    second ``query`` (the ``t`` query parameter, ``/playback?t=36000``), or
    the end of the run."""
    try:
        at_s = float(query) if query else times[-1]
    except ValueError:
        st.warning(f"The query parameter t = {query!r} is not a number of seconds; showing the end of the run.")
        at_s = times[-1]
    return next((t for t in times if t >= at_s), times[-1])


def charts(run: Run, cursor_s: float, rows: dict[str, pd.Series]) -> list[tuple[str, alt.LayerChart]]:
    """Each world's demand and capacity up to the cursor, on the run's full
    time axis and a shared scale of requests/s: one chart per world, with a
    line saying the world's state at the cursor."""
    shown = run.ticks[run.ticks["time_s"] <= cursor_s]
    long = shown.melt(id_vars=["time_h", "world", "role"], value_vars=list(SERIES), var_name="series",
                      value_name="rps")
    # Only the policy's world acts on a forecast; the static baseline's is not shown.
    long = long[(long["role"] == "candidate") | (long["series"] != "forecast_rps")]
    long["series"] = long["series"].map(SERIES)
    x = alt.X("time_h:Q", title="simulated time (h)", scale=alt.Scale(domain=[0, run.ticks["time_h"].max()]))
    top = float(run.ticks[["arrival_rate_rps", "capacity_rps"]].max().max()) * 1.05
    y = alt.Y("rps:Q", title="requests/s", scale=alt.Scale(domain=[0, top]))
    panels = []
    for i, (role, world) in enumerate(dict.fromkeys(zip(run.ticks["role"], run.ticks["world"]))):
        color = alt.Color("series:N", scale=alt.Scale(domain=list(COLORS), range=list(COLORS.values())),
                          legend=alt.Legend(orient="top", title=None) if i == 0 else None)
        label = "policy world" if role == "candidate" else "static baseline"
        lines = alt.Chart(long[long["world"] == world]).mark_line(strokeWidth=1.4, interpolate="step-before").encode(
            x=x, y=y, color=color,
            tooltip=[alt.Tooltip("time_h:Q", title="time (h)", format=".2f"), "series:N",
                     alt.Tooltip("rps:Q", format=".2f")])
        rule = alt.Chart(pd.DataFrame({"time_h": [cursor_s / 3600]})).mark_rule(color="#d62728").encode(x="time_h:Q")
        row = rows[role]
        state = (f"**{label}: {world}** · at {clock(cursor_s)}: {row['replicas_ready']} replicas ready, "
                 f"{row['replicas_provisioning']} starting; demand {row['arrival_rate_rps']:.1f} req/s, "
                 f"capacity {row['capacity_rps']:.1f} req/s")
        panels.append((state, (lines + rule).properties(height=260 if i == 0 else 230)))
    return panels


def counters(run: Run, cursor_s: float) -> dict[str, pd.Series]:
    """Running cost and SLA of each world from the start to the cursor, and
    the saving; returns each world's row at the cursor."""
    rows = at_time(run.ticks, cursor_s)
    columns = iter(st.columns(5 if run.has_baseline else 2))
    for row in rows.values():
        next(columns).metric(f"cost so far, {row['world']}", usd(row["cost_usd_cumulative"]))
    if run.has_baseline:
        base = rows["baseline"]["cost_usd_cumulative"]
        saved = base - rows["candidate"]["cost_usd_cumulative"]
        next(columns).metric("saved so far", usd(saved),
                             f"{pct(saved / base if base > 0 else None, 1)} of the baseline's cost", delta_arrow="off")
    for row in rows.values():
        next(columns).metric(f"SLA so far, {row['world']}", pct(row["sla_so_far"]),
                             help="Share of the requests finished (served or dropped) by the cursor that met the SLO.")
    return rows


def frame(run: Run) -> None:
    """The cursor, its numbers and the chart; with play on, one step further each time."""
    times = run.tick_times
    if st.session_state.get("playing"):
        i = min(times.index(st.session_state["cursor_s"]) + max(1, len(times) // FRAMES), len(times) - 1)
        st.session_state["cursor_s"] = times[i]
        if i == len(times) - 1:  # the end: stop, and redraw the page without the timer
            st.session_state["playing"] = False
            st.rerun()
    cursor_s = st.select_slider("simulated time", options=times, key="cursor_s", format_func=clock)
    panels = charts(run, cursor_s, counters(run, cursor_s))
    for state, _ in panels:
        st.markdown(state)
    # One chart of both worlds: two charts are redrawn one after the other, so
    # during playback the lower one's cursor lagged the upper one's by a frame.
    both = alt.vconcat(*[panel.properties(width=PANEL_WIDTH) for _, panel in panels]).resolve_scale(color="shared")
    st.altair_chart(both, width="content")


st.title("Dual-world playback")
run = current_run()
headline(run)
times = run.tick_times
if st.session_state.get("cursor_s") not in times:  # first visit, or another run
    st.session_state["cursor_s"] = first_cursor(times, st.query_params.get("t"))
    st.session_state["playing"] = False
playing = st.session_state.get("playing", False)
st.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
          on_click=toggle_play, args=(times,))
st.fragment(frame, run_every=FRAME_S if playing else None)(run)
