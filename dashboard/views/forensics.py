"""Decision forensics: one decision of the policy, in words and numbers,
and what a different action at that tick would have changed.

The sentence is :func:`elastic_des.analysis.forensics.explain`; the counterfactual is
:func:`elastic_des.analysis.counterfactual.replay`, which simulates the policy's world
again from the run's own config (a few seconds for a day).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from omegaconf import OmegaConf

from dashboard.common import current_run, headline, usd
from elastic_des.config import ExplainConfig
from elastic_des.analysis.counterfactual import load_run_config, replay
from elastic_des.errors import ConfigError
from elastic_des.analysis.forensics import action, clock, explain, number, rank_by_proxy, tick_s

TOP_K = 10


def values_table(values: dict) -> pd.DataFrame:
    """A record's flat numbers as a two-column table (lists shortened)."""
    def shown(value):
        if isinstance(value, list):
            return ", ".join(number(v) for v in value[:6]) + (" ..." if len(value) > 6 else "")
        return number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)

    return pd.DataFrame({"value": [shown(v) for v in values.values()]}, index=list(values))


def context_chart(ticks: pd.DataFrame, record: dict, window_ticks: int) -> alt.LayerChart:
    """The policy world's demand, the forecast the policy saw, and its ready
    replicas, around the decision."""
    tick = record["tick"]
    near = ticks.iloc[max(0, tick - window_ticks): tick + 2 * window_ticks + 1]
    x = alt.X("time_h:Q", title="simulated time (h)")
    demand = alt.Chart(near).mark_line(color="#8c8c8c", interpolate="step-before").encode(
        x=x, y=alt.Y("arrival_rate_rps:Q", title="demand (req/s)", axis=alt.Axis(titleColor="#6b6b6b")))
    layers = [demand]
    forecast = record.get("forecast_rps") or []
    if forecast:  # tick k of the horizon closes the window ending at time_s + (k + 1) * tick_s
        period_h = tick_s(record) / 3600
        path = pd.DataFrame({"time_h": record["time_s"] / 3600 + period_h * np.arange(1, len(forecast) + 1),
                             "forecast_rps": forecast})
        layers.append(alt.Chart(path).mark_line(color="#ff7f0e", strokeDash=[4, 3], interpolate="step-before")
                      .encode(x=x, y="forecast_rps:Q"))
    replicas = alt.Chart(near).mark_line(color="#1f77b4", interpolate="step-before").encode(
        x=x, y=alt.Y("replicas_ready:Q", title="ready replicas", axis=alt.Axis(titleColor="#1f77b4")))
    rule = alt.Chart(pd.DataFrame({"time_h": [record["time_s"] / 3600]})).mark_rule(color="#d62728").encode(
        x="time_h:Q")
    return alt.layer(alt.layer(*layers), replicas, rule).resolve_scale(y="independent").properties(height=240)


def pick() -> None:
    """A row picked in the ranking table becomes the decision shown."""
    rows = st.session_state["top_table"].selection.rows
    if rows:
        st.session_state["decision_tick"] = int(st.session_state["top_ticks"][rows[0]])
        st.session_state["scaling_only"] = True


st.title("Decision forensics")
run = current_run()
headline(run)
decisions = run.decisions
if not decisions:
    st.warning("This run recorded no decision.")
    st.stop()
candidate = run.records.candidate_ticks.assign(time_h=lambda t: t["time_s"] / 3600)
# The run's consequence window; a run made before ``explain`` existed gets today's default.
window = int(OmegaConf.select(run.cfg, "explain.window_ticks", default=ExplainConfig.window_ticks))

top = rank_by_proxy(decisions, candidate, window, TOP_K)
st.session_state["top_ticks"] = top["tick"].tolist()  # for :func:`pick`, which runs before the page
st.subheader(f"The {len(top)} scaling actions that met the most traffic")
st.caption(f"Ranked by a proxy, |Δreplicas| × Σ(arrivals × utilization) over the {window} ticks after each "
           "decision, without re-running. Pick a row (or any decision below) to read it and replay it.")
if top.empty:
    st.info("The policy never changed the fleet in this run.")
else:
    small = st.column_config.NumberColumn(width="small")
    table = pd.DataFrame({"tick": top["tick"], "time": top["time_s"].map(clock),
                          "action": [action(decisions[t]) for t in top["tick"]],
                          "rule": [decisions[t]["rule"] for t in top["tick"]], "proxy": top["proxy"]})
    st.dataframe(table, hide_index=True, key="top_table", on_select=pick, selection_mode="single-row",
                 column_config={"tick": small, "proxy": st.column_config.NumberColumn(format="%.0f", width="small")})

st.subheader("One decision")
st.session_state.setdefault("scaling_only", not top.empty)
scaling_only = st.toggle("scaling actions only", key="scaling_only")
choices = [d["tick"] for d in decisions if not scaling_only or d["replicas_after"] != d["replicas_before"]]
if st.session_state.get("decision_tick") not in choices:  # first visit, another run, or the filter changed
    st.session_state["decision_tick"] = int(top["tick"].iloc[0]) if not top.empty else choices[0]
tick = st.selectbox("decision", choices, key="decision_tick",
                    format_func=lambda t: f"tick {t} · {clock(decisions[t]['time_s'])} · {action(decisions[t])} "
                                          f"({decisions[t]['rule']})")
record = decisions[tick]
st.info(explain(record))

left, right = st.columns(2)
with left:
    st.markdown("**Q-values** (the agent's value of each action)")
    if record.get("q_values"):
        q = pd.DataFrame({"action": list(record["q_values"]), "Q": list(record["q_values"].values())})
        best = q["Q"].max()
        st.altair_chart(alt.Chart(q).mark_bar().encode(
            x=alt.X("Q:Q"), y=alt.Y("action:N", sort="-x", title=None),
            color=alt.condition(alt.datum.Q == best, alt.value("#1f77b4"), alt.value("#b0c4de")),
            tooltip=["action", alt.Tooltip("Q:Q", format=".4f")]).properties(height=160), width="stretch")
    else:
        st.caption(f"The {record['policy']} policy records no Q-values: only learning agents do.")
    st.markdown(f"**Rule** `{record['rule']}` and its numbers")
    st.table(values_table(record.get("details") or {}))
with right:
    st.markdown("**Around the decision**: demand (grey), the forecast it saw (orange), ready replicas (blue), "
                "the decision (red)")
    st.altair_chart(context_chart(candidate, record, window), width="stretch")
st.markdown("**Observation** the policy saw")
st.dataframe(pd.DataFrame([record["observation"]]), hide_index=True)

st.subheader("Counterfactual")
st.caption("Simulates the policy's world again from the run's config, once as it happened and once with the "
           "action below forced at this tick, everything else equal, and compares the requests arriving in the "
           "window after it.")
with st.form("counterfactual"):
    c1, c2 = st.columns(2)
    # Only actions other than the one taken (forcing that would replay the run), and a
    # widget per decision, so that a choice made for one decision never carries over to another.
    before, after = record["replicas_before"], record["replicas_after"]
    alternatives = [name for name, delta in (("hold", 0), ("up", 1), ("down", -1)) if before + delta != after]
    forced = c1.selectbox("instead", alternatives, key=f"instead_{tick}",
                          help="hold, one replica up or one down, relative to the replicas before the decision; "
                               "the action taken is not offered")
    window_ticks = c2.number_input("window (ticks)", min_value=1, value=window, step=1)
    launched = st.form_submit_button("Run the counterfactual", icon=":material/science:")
if launched:
    try:
        with st.spinner("Replaying both histories..."):
            result = replay(load_run_config(run.path), run.records, tick, forced, int(window_ticks))
    except (ConfigError, RuntimeError) as exc:
        st.error(f"Cannot replay this decision. {exc}")
    else:
        st.session_state["counterfactual_result"] = (str(run.path), tick, forced, int(window_ticks), result)
stored = st.session_state.get("counterfactual_result")
if stored and stored[:2] == (str(run.path), tick):
    _, _, forced, window_ticks, result = stored
    st.success(f"Forcing **{forced}** at tick {tick}: {result.sentence()}.")
    c1, c2, c3 = st.columns(3)
    c1.metric("requests in the window", f"{result.requests:,}")
    c2.metric("SLO misses: taken → forced", f"{result.misses_taken} → {result.misses_forced}",
              f"{result.extra_misses:+d}" if result.extra_misses else None, delta_color="inverse")
    c3.metric("cost over the window: taken → forced",
              f"{usd(result.cost_taken_usd)} → {usd(result.cost_forced_usd)}",
              f"{result.extra_cost_usd:+.2f} USD" if result.extra_cost_usd else None, delta_color="inverse")
