"""The run report: written at the end of a run, its figures present, its
numbers those of the run."""

from __future__ import annotations

import base64
import html
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL_REPLICAS, compose_config
from elastic_des.app import run
from elastic_des.analysis.forensics import load_records, rank_by_proxy
from elastic_des.analysis.report import hourly_compliance, plot_ticks

FIGURES = ("architecture", "demand_capacity", "latency", "cost", "hourly_sla")
PNG = b"\x89PNG\r\n\x1a\n"
RUN = ("scenario.duration_s=7200", SMALL_REPLICAS, "output.progress=false",
       "scenario.workload.spikes=[{start_s:3600,duration_s:600,multiplier:2.5}]")


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("report")
    cfg = compose_config(*RUN)
    return run_dir, cfg, run(cfg, run_dir)


def test_run_writes_a_report_with_every_figure(report_run):
    run_dir, _, summary = report_run
    page = (run_dir / "report.html").read_text()
    embedded = re.findall(r"<img alt='(\w+)' src='data:image/png;base64,([^']+)'>", page)
    assert [name for name, _ in embedded] == list(FIGURES)
    for name, data in embedded:
        png = base64.b64decode(data)
        assert png.startswith(PNG) and len(png) > 10_000
        assert (run_dir / "figures" / f"{name}.png").read_bytes() == png
    assert html.escape(summary["run/name"]) in page
    assert f"<td>{summary['cost/usd']:,.2f}</td><td>{summary['baseline/cost/usd']:,.2f}</td>" in page
    assert f"<td>{summary['sla/compliance']:.3%}</td><td>{summary['baseline/sla/compliance']:.3%}</td>" in page
    assert f"{summary['savings/cost_fraction']:.1%}" in page


def test_report_lists_the_top_decisions_explained(report_run):
    run_dir, cfg, _ = report_run
    records = load_records(run_dir)
    top = rank_by_proxy(records.decisions, records.candidate_ticks, cfg.explain.window_ticks, cfg.explain.top_k)
    assert len(top) == cfg.explain.top_k
    page = (run_dir / "report.html").read_text()
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td><td>([^<]+)</td>", page)
    assert [(int(i), int(t), html.unescape(text)) for i, t, text in rows] == [
        (i + 1, tick, text) for i, (tick, text) in enumerate(zip(top["tick"], top["explanation"]))
    ]


def test_explain_rewrites_the_table_with_counterfactuals(report_run, tmp_path):
    """``task=explain`` without a tick replays the top decisions (holding
    instead) and rewrites the report with what each changed."""
    original, cfg, _ = report_run
    run_dir = Path(shutil.copytree(original, tmp_path / "run"))  # with its .hydra/ and completion marker
    explain_cfg = compose_config(*RUN, "task=explain", f"explain.run_dir={run_dir}", "explain.top_k=2")
    summary = run(explain_cfg, tmp_path / "explain")
    page = (run_dir / "report.html").read_text()
    for i in (1, 2):
        assert summary[f"top{i}/counterfactual"].startswith("had it held at ")
        assert html.escape(summary[f"top{i}/counterfactual"]) in page
        assert html.escape(summary[f"top{i}/decision"]) in page
    assert "replayed with the counterfactual action <code>hold</code>" in page
    assert (tmp_path / "explain" / "explain.json").is_file()


def test_plot_data_are_the_run_tables(report_run):
    run_dir, cfg, summary = report_run
    records = load_records(run_dir)
    ticks = plot_ticks(records.ticks, cfg)
    slm = ticks[ticks["role"] == "candidate"]
    # SLM, batching with max_num_seqs 8: planned batch 8, each request at that batch
    # S = 199 decode steps x (6.43 ms + 8 x 0.0524 ms) + 8 prefills x 1000/23400 s = 1.7049 s.
    assert np.allclose(slm["capacity_rps"], slm["replicas_ready"] * 8 / (199 * (0.00643 + 8 * 5.24e-05) + 8 * 1000 / 23400))
    assert slm["cost_usd_cumulative"].iloc[-1] == pytest.approx(summary["cost/usd"])
    # Hourly compliance from the tick counts equals the one from the requests,
    # bucketed by the hour they finished in (no request is dropped in this run).
    requests = pd.read_parquet(run_dir / "requests.parquet")
    assert summary["requests/dropped"] == 0 and summary["baseline/requests/dropped"] == 0
    hourly = hourly_compliance(ticks).set_index(["world", "hour"])
    for world, rows in requests.groupby("world", observed=True):
        done = rows[rows["finish_s"] <= cfg.scenario.duration_s]
        by_hour = done.groupby((done["finish_s"] // 3600).astype(int))
        expected = by_hour["latency_s"].apply(lambda x: (x <= cfg.scenario.slo.latency_s).mean())
        for hour, value in expected.items():
            assert hourly.loc[(world, hour), "finished"] == by_hour.size()[hour]
            assert hourly.loc[(world, hour), "compliance"] == pytest.approx(value)


def test_report_without_baseline_or_disabled(tmp_path):
    run(compose_config("scenario.duration_s=1800", "output.progress=false", "baseline.enabled=false"), tmp_path / "a")
    page = (tmp_path / "a" / "report.html").read_text()
    assert "(no baseline)" in page and page.count("<img ") == len(FIGURES)
    run(compose_config("scenario.duration_s=1800", "output.progress=false", "output.report=false"), tmp_path / "b")
    assert (tmp_path / "b" / "summary.json").is_file() and not (tmp_path / "b" / "report.html").exists()
