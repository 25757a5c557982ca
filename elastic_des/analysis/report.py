"""The run report: one self-contained ``report.html`` in the run folder.

It reads what the run wrote (``summary.json``, ``ticks.parquet``,
``decisions.jsonl``) and shows, for the policy's world and the static
baseline side by side: the headline numbers, demand against capacity, the
latency percentiles against the SLO, the cumulative cost, the SLA compliance
of every hour, a diagram of the decision loop, and the most consequential
scaling decisions explained in words (:mod:`elastic_des.analysis.forensics`).

Everything is drawn from the per-tick table, never from the per-request
one, so a day's report takes a few seconds. The figures are embedded in the
page as PNG and also saved under ``figures/`` for reuse. The decision table
ranks scaling actions by a proxy (no re-run); ``task=explain`` without a
tick replays them and rewrites the report with what each actually changed.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from omegaconf import DictConfig, OmegaConf

from elastic_des.analysis import plots
from elastic_des.atomic import write_text
from elastic_des.analysis.forensics import check_explain, load_records, rank_by_proxy
from elastic_des.engine.service import serving_plan

HEADLINE = (  # summary key, label, format
    ("sla/compliance", "requests meeting the SLO", "{:.3%}"),
    ("latency/p50_s", "latency p50 (s)", "{:.2f}"),
    ("latency/p99_s", "latency p99 (s)", "{:.2f}"),
    ("drops/rate", "dropped requests", "{:.3%}"),
    ("cost/usd", "cost (USD)", "{:,.2f}"),
    ("cost/gpu_hours", "GPU hours", "{:,.1f}"),
    ("cost/usd_per_1k_requests", "cost per 1k requests (USD)", "{:.3f}"),
    ("utilization/mean", "mean slot utilization", "{:.2f}"),
    ("replicas/mean", "mean replicas", "{:.2f}"),
    ("replicas/max", "max replicas", "{:d}"),
    ("scaling/actions", "scaling actions", "{:d}"),
    ("scaling/flaps", "flaps (reversals within 5 min)", "{:d}"),
)


def plot_ticks(ticks: pd.DataFrame, cfg: DictConfig) -> pd.DataFrame:
    """Ticks with the time in hours and each world's serving capacity in
    req/s: ready replicas × the planned capacity of one replica
    (:func:`~elastic_des.engine.service.serving_plan`)."""
    worlds = {"candidate": cfg.world}
    if cfg.baseline.enabled:
        worlds["baseline"] = cfg.baseline.world
    per_replica = {role: serving_plan(w.model, cfg.scenario.workload, cfg.scenario.slo).capacity_rps
                   for role, w in worlds.items()}
    return ticks.assign(time_h=ticks["time_s"] / 3600.0,
                        capacity_rps=ticks["replicas_ready"] * ticks["role"].map(per_replica))


def hourly_compliance(ticks: pd.DataFrame) -> pd.DataFrame:
    """Per world and hour, the share of finished (completed or dropped)
    requests that met the SLO, from the per-tick counts."""
    finished = ticks["completions"] + ticks["drops"]
    frame = pd.DataFrame({
        "world": ticks["world"],
        # A tick closes the window before it: a tick at 3600 s counts in hour 0.
        "hour": (np.ceil(ticks["time_s"] / 3600.0) - 1).clip(lower=0).astype(int),
        "finished": finished,
        "met": (ticks["sla_compliance"] * finished).fillna(0.0),
    })
    hourly = frame.groupby(["world", "hour"], sort=False, as_index=False)[["finished", "met"]].sum()
    hourly["compliance"] = hourly["met"] / hourly["finished"].where(hourly["finished"] > 0)
    return hourly


def architecture(cfg: DictConfig, summary: dict) -> Figure:
    """The decision loop of this run, as boxes and arrows."""
    forecaster = str(cfg.forecaster.get("_target_", "?")).rsplit(".", 1)[-1]
    y, w, h = 0.55, 0.13, 0.24  # the row of the loop; box width and height (axes fractions)
    boxes = {  # name: (x, y, text)
        "workload": (0.075, y, f"Workload\n{cfg.scenario.name}\n{summary['workload/mean_rate_rps']:.1f} req/s mean"),
        "forecaster": (0.2875, y, f"Forecaster\n{forecaster}\n{cfg.controller.forecast_horizon_ticks} ticks ahead"),
        "agent": (0.5, y, f"Policy (agent)\n{summary['run/policy']}\nevery {cfg.controller.tick_s:g} s"),
        "action": (0.7125, y, "Action\ntarget replicas\n(up / hold / down)"),
        "cluster": (0.925, y, f"Cluster\n{cfg.world.model.name} replicas\ncold start {cfg.world.model.cold_start_s:g} s"),
    }
    if cfg.baseline.enabled:
        boxes["baseline"] = (0.925, 0.15, f"Baseline cluster\n{cfg.baseline.world.model.name}, static\n"
                             f"{summary.get('baseline/replicas/max', '?')} replicas")
    loop, feedback, same = "#35618f", "#8f3535", "0.45"
    with plots.style():
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        ax = fig.subplots()
        ax.set(xlim=(0, 1), ylim=(-0.02, 1))
        ax.axis("off")
        for bx, by, text in boxes.values():
            ax.add_patch(FancyBboxPatch((bx - w / 2, by - h / 2), w, h, boxstyle="round,pad=0.008",
                                        facecolor="#e8f0fa", edgecolor=loop))
            ax.text(bx, by, text, ha="center", va="center", fontsize=8.5)

        def arrow(start, end, color, rad=0.0, dashed=False):
            ax.annotate("", end, start, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3,
                                                        linestyle="--" if dashed else "-",
                                                        connectionstyle=f"arc3,rad={rad}"))

        names = ["workload", "forecaster", "agent", "action", "cluster"]
        labels = ["observed\nrate", "forecast", "decision", "resize"]
        for a, b, label in zip(names, names[1:], labels):
            xa, xb = boxes[a][0] + w / 2 + 0.006, boxes[b][0] - w / 2 - 0.006
            arrow((xa, y), (xb, y), loop)
            ax.text((xa + xb) / 2, y + 0.03, label, ha="center", va="bottom", fontsize=7.5, color="0.25")
        top = y + h / 2 + 0.01
        arrow((boxes["workload"][0], top), (boxes["cluster"][0], top), same, rad=-0.12)
        ax.text(0.5, 0.93, "requests (arrivals) queue for the cluster's replicas", ha="center", fontsize=8, color=same)
        bottom = y - h / 2 - 0.01
        arrow((boxes["cluster"][0], bottom), (boxes["agent"][0], bottom), feedback, rad=-0.3)
        ax.text(0.71, 0.2, "observation every tick: utilization, queue,\nlatency, replicas", ha="center", va="top",
                fontsize=8, color=feedback)
        if "baseline" in boxes:
            arrow((boxes["workload"][0], bottom), (boxes["baseline"][0] - w / 2 - 0.006, boxes["baseline"][1]), same,
                  rad=0.25, dashed=True)
            ax.text(0.27, 0.3, "the same requests\n(common random numbers)", ha="center", fontsize=8, color=same)
        ax.set_title(f"Decision loop of {summary['run/name']}", fontsize=11)
    return fig


def _headline_table(summary: dict) -> str:
    worlds = [("", summary["run/world"])]
    if "run/baseline" in summary:
        worlds.append(("baseline/", summary["run/baseline"]))
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in worlds)
    rows = []
    for key, label, fmt in HEADLINE:
        cells = "".join(f"<td>{_fmt(fmt, summary.get(prefix + key))}</td>" for prefix, _ in worlds)
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    table = f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"
    if "savings/cost_fraction" in summary:
        table += (f"<p class='savings'>Saving against the baseline: <b>{_fmt('{:,.2f}', summary['savings/cost_usd'])}"
                  f" USD ({_fmt('{:.1%}', summary['savings/cost_fraction'])})</b>; SLA compliance "
                  f"{_fmt('{:+.3%}', summary['savings/sla_delta'])}.</p>")
    return table


def _fmt(fmt: str, value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return html.escape(fmt.format(value))


def _decision_table(top: pd.DataFrame, explain_cfg) -> str:
    if top.empty:
        return "<p>No scaling action in this run.</p>"
    replayed = "counterfactual" in top
    rows = []
    for i, row in top.iterrows():
        consequence = row["counterfactual"] if replayed else f"proxy {row['proxy']:,.0f}"
        rows.append(f"<tr><td>{i + 1}</td><td>{row['tick']}</td><td>{html.escape(row['explanation'])}</td>"
                    f"<td>{html.escape(consequence)}</td></tr>")
    if replayed:
        note = (f"Each decision was replayed with the counterfactual action "
                f"<code>{html.escape(explain_cfg.forced_action)}</code> forced at its tick, everything else equal; "
                f"the consequence counts the requests arriving in the {explain_cfg.window_ticks} ticks after it.")
    else:
        note = ("Ranked by a proxy, |Δreplicas| × Σ(arrivals × utilization) over the "
                f"{explain_cfg.window_ticks} ticks after the decision, without re-running. "
                "<code>python run.py task=explain explain.run_dir=&lt;this folder&gt;</code> replays each one "
                "and rewrites this table with what it actually changed.")
    return (f"<p>{note}</p><table class='decisions'><tr><th>#</th><th>tick</th><th>decision</th>"
            f"<th>consequence</th></tr>{''.join(rows)}</table>")


def write_report(run_dir: Path, cfg: DictConfig, top: Optional[pd.DataFrame] = None) -> Path:
    """Write ``report.html`` and ``figures/*.png`` into ``run_dir``.

    ``top``: the decision table (from
    :func:`elastic_des.analysis.counterfactual.top_decisions`); by default the
    ``explain.top_k`` scaling actions ranked by proxy.
    """
    check_explain(cfg.explain)
    run_dir = Path(run_dir)
    records = load_records(run_dir)
    summary = records.summary
    ticks = plot_ticks(records.ticks, cfg)
    if top is None:
        top = rank_by_proxy(records.decisions, records.candidate_ticks, cfg.explain.window_ticks, cfg.explain.top_k)
    slo = summary.get("sla/latency_slo_s", float("nan"))  # unset when the SLO is on TTFT/TPOT only
    figures = {
        "architecture": architecture(cfg, summary),
        "demand_capacity": plots.demand_capacity(ticks),
        "latency": plots.latency(ticks, slo),
        "cost": plots.cumulative_cost(ticks),
        "hourly_sla": plots.hourly_sla(hourly_compliance(ticks), summary["sla/target"]),
    }
    images = {}
    for name, fig in figures.items():
        data = plots.save_png(fig, run_dir / "figures" / f"{name}.png")
        images[name] = f"<img alt='{name}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
    title = html.escape(f"elastic_des run {summary['run/name']}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }}
table.decisions td:nth-child(n+3), table.decisions th:nth-child(n+3) {{ text-align: left; }}
img {{ max-width: 100%; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style></head><body>
<h1>{title}</h1>
<p>Scenario <b>{html.escape(cfg.scenario.name)}</b> ({html.escape(cfg.scenario.description)}),
{cfg.scenario.duration_s / 3600:g} h, seed {cfg.seed}. Policy world <b>{html.escape(summary['run/world'])}</b>
{'against the static baseline <b>' + html.escape(summary['run/baseline']) + '</b> on the same requests'
 if 'run/baseline' in summary else '(no baseline)'}; SLO: {slo:g} s for {summary['sla/target']:.1%} of requests.</p>
<h2>Headline</h2>{_headline_table(summary)}
<h2>Decision loop</h2>{images['architecture']}
<h2>Demand and capacity</h2>{images['demand_capacity']}
<h2>Latency</h2>{images['latency']}
<h2>Cost</h2>{images['cost']}
<h2>SLA compliance per hour</h2>{images['hourly_sla']}
<h2>Most consequential decisions</h2>{_decision_table(top, cfg.explain)}
<h2>Configuration</h2><details><summary>composed config</summary><pre>{html.escape(OmegaConf.to_yaml(cfg))}</pre></details>
</body></html>
"""
    path = run_dir / "report.html"
    write_text(path, page)
    return path
