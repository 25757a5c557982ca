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
    """One panel per world, sharing both axes: the worlds are compared at a
    glance, and a reference line (the SLO) stands at the same height in each."""
    worlds = list(dict.fromkeys(frame["world"]))
    fig = Figure(figsize=(10, height * len(worlds)), layout="constrained")
    axes = fig.subplots(len(worlds), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
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
            ax.set_ylim(bottom=0)
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
            ax.set_ylim(bottom=0)
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
    """Share of each hour's finished requests that missed the SLO, per world,
    against the miss budget ``1 − target``.

    Bars of the misses start at zero, as a reader expects of bars, and still
    show the differences near a 99% compliance that bars of the compliance
    would only show on an axis cut near 95%.
    ``hourly``: ``hour, world, compliance`` (a share in [0, 1]).
    """
    frame = hourly.assign(missed_pct=100 * (1 - hourly["compliance"]))
    with style():
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        ax = fig.subplots()
        sns.barplot(data=frame, x="hour", y="missed_pct", hue="world", errorbar=None, ax=ax)
        budget = 100 * (1 - target)
        ax.axhline(budget, color="tab:red", linestyle="--", linewidth=1.2,
                   label=f"budget {budget:.3g}% (target {100 * target:g}%)")
        ax.set_ylim(0, max(frame["missed_pct"].max(), budget) * 1.15)
        hours = frame["hour"].nunique()
        step = max(1, int(np.ceil(hours / 24)))
        for i, label in enumerate(ax.get_xticklabels()):
            label.set_visible(i % step == 0)
        ax.set(title="SLA misses per hour (requests finished in the hour)",
               xlabel="hour of simulated time", ylabel="missed the SLO (%)")
        _legend_outside(ax, "world")
    return fig


MAX_LEGEND_VARIANTS = 12  # beyond this (e.g. the trials of a tuning study) points are coloured by policy


def _span(low: pd.Series, high: pd.Series, pad: float = 0.08) -> tuple[float, float]:
    lo, hi = float(low.min()), float(high.max())
    margin = (hi - lo) * pad or abs(hi) * 0.02 or 1.0
    return lo - margin, hi + margin


def pareto(agg: pd.DataFrame) -> Figure:
    """Cost against SLA compliance, mean and 95% CI over seeds (compliance
    bounds clipped to [0, 100] %), one point per sweep variant (``variant,
    policy, reference, cost_mean, cost_ci95, sla_mean, sla_low, sla_high``),
    with the Pareto front (cheaper and more compliant) through the policies.

    The axes are zoomed on the policies (``reference`` false): a static
    large-model baseline at many times their cost would squeeze them into a
    corner. Reference points outside the zoom are stated in a box instead,
    with their cost and compliance, and a dashed line marks a reference's
    compliance when it falls inside the zoomed range."""
    frame = agg.assign(sla_pct=100 * agg["sla_mean"], low_pct=100 * agg["sla_low"].fillna(agg["sla_mean"]),
                       high_pct=100 * agg["sla_high"].fillna(agg["sla_mean"]),
                       cost_ci=agg["cost_ci95"].fillna(0.0))
    policies, references = frame[~frame["reference"]], frame[frame["reference"]]
    zoom = policies if not policies.empty else frame
    xlim = _span(zoom["cost_mean"] - zoom["cost_ci"], zoom["cost_mean"] + zoom["cost_ci"])
    ylim = _span(zoom["low_pct"], zoom["high_pct"])
    ylim = (ylim[0], min(ylim[1], 100.0 + (ylim[1] - ylim[0]) * 0.04))
    hue = "variant" if len(policies) <= MAX_LEGEND_VARIANTS else "policy"
    with style():
        fig = Figure(figsize=(9, 5), layout="constrained")
        ax = fig.subplots()
        ax.errorbar(policies["cost_mean"], policies["sla_pct"], xerr=policies["cost_ci"],
                    yerr=[policies["sla_pct"] - policies["low_pct"], policies["high_pct"] - policies["sla_pct"]],
                    fmt="none", ecolor="0.6", elinewidth=1, capsize=3)
        sns.scatterplot(data=policies, x="cost_mean", y="sla_pct", hue=hue, style="policy", s=90, ax=ax)
        front = policies.sort_values(["cost_mean", "sla_pct"], ascending=[True, False])
        front = front[front["sla_pct"] >= front["sla_pct"].cummax()]
        if len(front) > 1:
            ax.plot(front["cost_mean"], front["sla_pct"], color="0.3", linestyle=":", linewidth=1,
                    label="Pareto front")
        outside = []
        for _, ref in references.iterrows():
            text = f"{ref['variant']}: ${ref['cost_mean']:,.2f}, {ref['sla_pct']:.2f}% met"
            if xlim[0] <= ref["cost_mean"] <= xlim[1] and ylim[0] <= ref["sla_pct"] <= ylim[1]:
                ax.scatter([ref["cost_mean"]], [ref["sla_pct"]], marker="X", s=110, color="0.2", label=ref["variant"])
                continue
            outside.append(text)
            if ylim[0] <= ref["sla_pct"] <= ylim[1]:
                ax.axhline(ref["sla_pct"], color="0.4", linestyle="--", linewidth=0.9,
                           label=f"{ref['variant']} compliance")
        if outside:
            ax.text(0.98, 0.03, "outside the axes (reference):\n" + "\n".join(outside), transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8, bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set(title="Cost vs SLA compliance (mean, 95% CI over seeds; axes zoomed on the policies)",
               xlabel="cost per run (USD)", ylabel="requests meeting the SLO (%)")
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
