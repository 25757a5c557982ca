"""Figures of a run and of a sweep, drawn with seaborn from DataFrames only.

Each function takes tidy tables (one row per tick, hour or sweep variant,
columns named like the summary keys) and returns a matplotlib ``Figure``.
Figures are built with the object-oriented API (``Figure``, not
``pyplot``) under a temporary seaborn style, so drawing changes no global
state: no backend switch, no rcParams, safe in worker processes.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from elastic_des.atomic import atomic_path

TIME_LABEL = "simulated time (h)"


@contextmanager
def style() -> Iterator[None]:
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        yield


def save_png(fig: Figure, path: Path, dpi: int = 110) -> bytes:
    """Write ``fig`` to ``path`` as PNG (atomically) and return the bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)  # constrained layout: legends outside the axes fit
    data = buffer.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return data


def _legend_outside(ax, title: str | None = None) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def _per_world(frame: pd.DataFrame, height: float = 2.6) -> tuple[Figure, list, list[str]]:
    worlds = list(dict.fromkeys(frame["world"]))
    fig = Figure(figsize=(10, height * len(worlds)), layout="constrained")
    axes = fig.subplots(len(worlds), 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes), worlds


def demand_capacity(ticks: pd.DataFrame) -> Figure:
    """Observed demand, forecast and serving capacity of each world over time.

    ``ticks``: ``time_h, world, role, arrival_rate_rps, forecast_rps, capacity_rps``.
    """
    series = {"arrival_rate_rps": "demand (observed)", "forecast_rps": "forecast (next tick)",
              "capacity_rps": "serving capacity"}
    long = ticks.melt(id_vars=["time_h", "world", "role"], value_vars=list(series), var_name="series",
                      value_name="rps")
    # Only the policy's world acts on a forecast; the static baseline's is not shown.
    long = long[(long["role"] == "candidate") | (long["series"] != "forecast_rps")]
    long["series"] = long["series"].map(series)
    with style():
        fig, axes, worlds = _per_world(long)
        for ax, world in zip(axes, worlds):
            sns.lineplot(data=long[long["world"] == world], x="time_h", y="rps", hue="series",
                         estimator=None, errorbar=None, linewidth=0.9, alpha=0.9, ax=ax,
                         palette={"demand (observed)": "0.55", "forecast (next tick)": "tab:orange",
                                  "serving capacity": "tab:blue"})
            ax.set(title=f"{world}: demand vs capacity", xlabel=TIME_LABEL, ylabel="requests/s")
            _legend_outside(ax)
    return fig


def latency(ticks: pd.DataFrame, slo_s: float) -> Figure:
    """Latency percentiles of the requests completed in each tick, with the SLO.

    ``ticks``: ``time_h, world, latency_p50_s, latency_p95_s, latency_p99_s``.
    """
    series = {"latency_p50_s": "p50", "latency_p95_s": "p95", "latency_p99_s": "p99"}
    long = ticks.melt(id_vars=["time_h", "world"], value_vars=list(series), var_name="percentile",
                      value_name="latency_s")
    long["percentile"] = long["percentile"].map(series)
    with style():
        fig, axes, worlds = _per_world(long)
        for ax, world in zip(axes, worlds):
            sns.lineplot(data=long[long["world"] == world], x="time_h", y="latency_s", hue="percentile",
                         hue_order=list(series.values()), estimator=None, errorbar=None, linewidth=0.8, ax=ax,
                         palette=["tab:green", "tab:purple", "tab:blue"])
            ax.axhline(slo_s, color="tab:red", linestyle="--", linewidth=1.2, label=f"SLO {slo_s:g} s")
            ax.set(title=f"{world}: latency of requests completed per tick", xlabel=TIME_LABEL,
                   ylabel="latency (s)")
            _legend_outside(ax)
    return fig


def cumulative_cost(ticks: pd.DataFrame) -> Figure:
    """Cost billed so far, per world. ``ticks``: ``time_h, world, cost_usd_cumulative``."""
    with style():
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        ax = fig.subplots()
        sns.lineplot(data=ticks, x="time_h", y="cost_usd_cumulative", hue="world", estimator=None, errorbar=None,
                     ax=ax)
        for world, rows in ticks.groupby("world", sort=False):
            last = rows.iloc[-1]
            ax.annotate(f"${last['cost_usd_cumulative']:,.0f}", (last["time_h"], last["cost_usd_cumulative"]),
                        xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=9)
        ax.set(title="Cumulative cost", xlabel=TIME_LABEL, ylabel="cost billed so far (USD)")
        _legend_outside(ax, "world")
    return fig


def hourly_sla(hourly: pd.DataFrame, target: float) -> Figure:
    """Share of each hour's finished requests that met the SLO, per world.

    ``hourly``: ``hour, world, compliance`` (a share in [0, 1]).
    """
    frame = hourly.assign(compliance_pct=100 * hourly["compliance"])
    with style():
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        ax = fig.subplots()
        sns.barplot(data=frame, x="hour", y="compliance_pct", hue="world", errorbar=None, ax=ax)
        ax.axhline(100 * target, color="tab:red", linestyle="--", linewidth=1.2, label=f"target {100 * target:g}%")
        low = min(frame["compliance_pct"].min(), 100 * target)
        ax.set_ylim(max(0.0, low - 0.2 * (100 - low) - 0.5), 100.2)
        hours = frame["hour"].nunique()
        step = max(1, int(np.ceil(hours / 24)))
        for i, label in enumerate(ax.get_xticklabels()):
            label.set_visible(i % step == 0)
        ax.set(title="SLA compliance per hour (requests finished in the hour)",
               xlabel="hour of simulated time", ylabel="met the SLO (%)")
        _legend_outside(ax, "world")
    return fig


def pareto(agg: pd.DataFrame) -> Figure:
    """Cost against SLA compliance, mean ± 95% CI over seeds, one point per
    sweep variant (``variant, policy, cost_mean, cost_ci95, sla_mean, sla_ci95``),
    with the Pareto front (cheaper and more compliant) drawn through them."""
    frame = agg.assign(sla_pct=100 * agg["sla_mean"], sla_ci_pct=100 * agg["sla_ci95"])
    with style():
        fig = Figure(figsize=(9, 5), layout="constrained")
        ax = fig.subplots()
        ax.errorbar(frame["cost_mean"], frame["sla_pct"], xerr=frame["cost_ci95"].fillna(0),
                    yerr=frame["sla_ci_pct"].fillna(0), fmt="none", ecolor="0.6", elinewidth=1, capsize=3)
        sns.scatterplot(data=frame, x="cost_mean", y="sla_pct", hue="variant", style="policy", s=90, ax=ax)
        front = frame.sort_values(["cost_mean", "sla_pct"], ascending=[True, False])
        front = front[front["sla_pct"] >= front["sla_pct"].cummax()]
        if len(front) > 1:
            ax.plot(front["cost_mean"], front["sla_pct"], color="0.3", linestyle=":", linewidth=1,
                    label="Pareto front")
        ax.set(title="Cost vs SLA compliance (mean ± 95% CI over seeds)", xlabel="cost per run (USD)",
               ylabel="requests meeting the SLO (%)")
        _legend_outside(ax)
    return fig


def savings(agg: pd.DataFrame) -> Figure:
    """Cost saved against the static large-model baseline, mean ± 95% CI
    over seeds, one bar per sweep variant (``variant, policy, saving_mean,
    saving_ci95``, savings as fractions of the baseline's cost)."""
    frame = agg.assign(saving_pct=100 * agg["saving_mean"], ci_pct=100 * agg["saving_ci95"].fillna(0))
    order = list(frame["variant"])
    with style():
        fig = Figure(figsize=(max(6.0, 1.2 * len(frame) + 3), 4.4), layout="constrained")
        ax = fig.subplots()
        sns.barplot(data=frame, x="variant", y="saving_pct", hue="policy", order=order, dodge=False,
                    errorbar=None, ax=ax)
        # Categorical bars sit at x = 0, 1, ... in ``order``.
        ax.errorbar(np.arange(len(frame)), frame["saving_pct"], yerr=frame["ci_pct"], fmt="none", ecolor="0.2",
                    capsize=4, elinewidth=1)
        for x, (value, ci) in enumerate(zip(frame["saving_pct"], frame["ci_pct"])):
            ax.annotate(f"{value:.1f}%", (x, value + (ci if value >= 0 else -ci)), xytext=(0, 4 if value >= 0 else -12),
                        textcoords="offset points", ha="center", fontsize=8)
        ax.axhline(0, color="0.2", linewidth=0.8)
        ax.set(title="Cost saving vs the static baseline (mean ± 95% CI over seeds)", xlabel="sweep variant",
               ylabel="cost saved (%)")
        ax.tick_params(axis="x", labelrotation=20)
        _legend_outside(ax, "policy")
    return fig
