"""The research dashboard (``dashboard/``), driven by Streamlit's AppTest on
a short generated run and sweep: every page renders without an exception and
shows the run's numbers; a folder that is not a run gets a message."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from conftest import SMALL_REPLICAS, compose_config  # noqa: E402
from elastic_des.app import run  # noqa: E402
from elastic_des.analysis.counterfactual import load_run_config, replay  # noqa: E402
from elastic_des.errors import ConfigError  # noqa: E402
from elastic_des.analysis.forensics import explain, load_records  # noqa: E402
from elastic_des.analysis.sweep import summarize_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
RUN_PAGES = ("architecture", "playback", "forensics", "cost")
FAST = ("scenario.duration_s=1800", SMALL_REPLICAS, "output.progress=false", "output.report=false", "output.requests=false")


@pytest.fixture(scope="module")
def runs_module():
    """``dashboard.runs``, imported as the app imports it (from the repository root)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        from dashboard import runs
        yield runs


def make_run(folder: Path, *overrides: str) -> dict:
    """A run folder as ``python run.py`` leaves it, Hydra's config included."""
    cfg = compose_config(*FAST, *overrides)
    return run(cfg, folder, {"overrides.yaml": yaml.safe_dump(list(overrides))})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard") / "default__threshold__0"
    make_run(folder)
    return folder


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """Two policies, two seeds; ``multirun.yaml`` marks it as Hydra would, the CSVs are not written yet."""
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "multirun.yaml").write_text("{}\n")
    for policy in ("static", "threshold"):
        for seed in (0, 1):
            make_run(folder / f"default__{policy}__{seed}", f"policy={policy}", f"seed={seed}")
    return folder


def app(page: str, run_folder: Path, sweep_folder: Path | str = "") -> AppTest:
    """The app after its first run on ``page``, reading the given folders."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["run"] = str(run_folder)
    at.query_params["sweep"] = str(sweep_folder)
    at.run()
    if page != "architecture":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Every text the page shows: metrics, markdown, alerts, tables."""
    parts = [f"{m.label}={m.value} {m.proto.delta}" for m in at.metric]
    kinds = ("markdown", "caption", "info", "success", "error", "title")
    parts += [e.value for kind in kinds for e in getattr(at, kind)]
    parts += [t.value.to_csv() for t in at.table] + [d.value.to_csv() for d in at.dataframe]
    return "\n".join(parts)


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


@pytest.mark.parametrize("page", RUN_PAGES)
def test_every_run_page_renders_the_summary_numbers(run_dir, page):
    at = app(page, run_dir)
    assert not at.error
    s = summary_of(run_dir)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"SLA, {s['run/world']}"] == f"{s['sla/compliance']:.3%}"
    assert metrics[f"SLA, {s['run/baseline']}"] == f"{s['baseline/sla/compliance']:.3%}"
    assert metrics[f"cost, {s['run/world']}"] == f"${s['cost/usd']:,.2f}"
    assert metrics[f"cost, {s['run/baseline']}"] == f"${s['baseline/cost/usd']:,.2f}"
    assert metrics["saving vs baseline"] == f"${s['savings/cost_usd']:,.2f}"
    assert s["run/name"] in texts(at)


def test_architecture_shows_the_diagram_and_the_headline_table(run_dir):
    at = app("architecture", run_dir)
    s = summary_of(run_dir)
    assert len(at.image) == 1  # the decision-loop figure
    table = at.table[0].value
    assert list(table.columns) == [s["run/world"], s["run/baseline"]]
    assert table.loc["requests meeting the SLO"].tolist() == [f"{s['sla/compliance']:.3%}",
                                                              f"{s['baseline/sla/compliance']:.3%}"]
    assert table.loc["cost per 1k requests (USD)"].tolist() == [f"{s['cost/usd_per_1k_requests']:.3f}",
                                                                f"{s['baseline/cost/usd_per_1k_requests']:.3f}"]


def test_playback_counters_follow_the_cursor_and_play_advances_it(run_dir):
    at = app("playback", run_dir)
    s = summary_of(run_dir)
    ticks = pd.read_parquet(run_dir / "ticks.parquet")
    times = ticks.loc[ticks["role"] == "candidate", "time_s"].tolist()
    cursor = at.select_slider[0]
    assert cursor.value == times[-1]  # the end of the run at first: the costs so far are the summary's
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"cost so far, {s['run/world']}"] == f"${s['cost/usd']:,.2f}"
    assert metrics[f"cost so far, {s['run/baseline']}"] == f"${s['baseline/cost/usd']:,.2f}"
    assert metrics["saved so far"] == f"${s['savings/cost_usd']:,.2f}"

    at.button[0].click().run()  # play: from the start, one step per frame
    assert not at.exception
    step = max(1, len(times) // 80)
    assert at.select_slider[0].value == times[step]
    assert at.button[0].label == "Pause"
    at.button[0].click().run()  # pause: the cursor stays
    assert at.select_slider[0].value == times[step] and at.button[0].label == "Play"
    row = ticks[(ticks["time_s"] == times[step])].set_index("role")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"cost so far, {s['run/world']}"] == f"${row.loc['candidate', 'cost_usd_cumulative']:,.2f}"
    assert metrics[f"cost so far, {s['run/baseline']}"] == f"${row.loc['baseline', 'cost_usd_cumulative']:,.2f}"

    at.select_slider[0].set_value(times[-2]).run()  # drag the cursor near the end
    assert not at.exception and at.select_slider[0].value == times[-2]
    at.button[0].click().run()  # play: the last step reaches the end and stops by itself
    assert not at.exception
    assert at.select_slider[0].value == times[-1] and at.button[0].label == "Play"
    assert not at.session_state["playing"]


def test_forensics_explains_a_decision_and_launches_its_counterfactual(run_dir):
    at = app("forensics", run_dir)
    records = load_records(run_dir)
    tick = at.selectbox[0].value
    assert tick == at.dataframe[0].value["tick"].iloc[0]  # the top-ranked scaling action first
    assert at.info[0].value == explain(records.decisions[tick])
    assert at.selectbox[1].value == "hold"  # the counterfactual of a scaling action: holding instead
    at.button[0].click().run()
    assert not at.exception and not at.error
    expected = replay(load_run_config(run_dir), records, tick, "hold", int(at.number_input[0].value))
    assert expected.sentence() in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["SLO misses: taken → forced"] == f"{expected.misses_taken} → {expected.misses_forced}"


def test_cost_page_shows_the_cost_per_1k_requests(run_dir):
    at = app("cost", run_dir)
    s = summary_of(run_dir)
    table = at.table[0].value
    assert table.loc["cost"].tolist() == [f"${s['cost/usd']:,.2f}", f"${s['baseline/cost/usd']:,.2f}"]
    assert table.loc["cost per 1k requests"].tolist() == [f"${s['cost/usd_per_1k_requests']:.4f}",
                                                          f"${s['baseline/cost/usd_per_1k_requests']:.4f}"]
    assert len(at.image) == 1  # the cumulative-cost figure


def test_hourly_cost_adds_up_to_the_summary(run_dir, runs_module):
    s = summary_of(run_dir)
    hourly = runs_module.hourly_cost(runs_module.load_run(run_dir).ticks)
    for role, prefix in (("candidate", ""), ("baseline", "baseline/")):
        world = hourly[hourly["role"] == role]
        assert world["hour"].tolist() == [0]  # a half-hour run: one (partial) hour
        assert world["cost_usd"].sum() == pytest.approx(s[f"{prefix}cost/usd"], rel=1e-12)
        assert world["arrivals"].sum() == s[f"{prefix}requests/total"]


def test_hourly_cost_sums_the_per_tick_cost_within_the_hours(runs_module):
    ticks = pd.DataFrame({"role": ["candidate"] * 4 + ["baseline"] * 4, "world": ["a"] * 4 + ["b"] * 4,
                          "time_s": [1800.0, 3600.0, 5400.0, 7200.0] * 2,
                          "arrivals": [100, 300, 0, 500, 100, 300, 0, 500],
                          "cost_usd": [1.0, 1.5, 0.0, 3.5, 10.0, 10.0, 10.0, 10.0]})
    hourly = runs_module.hourly_cost(ticks)
    assert hourly[["role", "hour", "arrivals"]].values.tolist() == [
        ["candidate", 0, 400], ["candidate", 1, 500], ["baseline", 0, 400], ["baseline", 1, 500]]
    assert hourly["cost_usd"].tolist() == [2.5, 3.5, 20.0, 20.0]
    assert hourly["usd_per_1k"].tolist() == [6.25, 7.0, 50.0, 40.0]


def test_sla_so_far_counts_the_requests_finished_by_each_tick(runs_module):
    ticks = pd.DataFrame({"role": ["candidate"] * 3, "completions": [10, 0, 5], "drops": [0, 0, 5],
                          "sla_compliance": [0.9, float("nan"), 0.5]})  # nothing finished in the second tick
    assert runs_module.cumulative(ticks)["sla_so_far"].tolist() == [0.9, 0.9, 0.7]


def test_sweep_page_reads_a_multirun_with_or_without_the_callbacks_csvs(sweep_dir, runs_module):
    gathered = runs_module.load_sweep(sweep_dir)  # no CSVs yet: gathered from the jobs' summaries
    assert not gathered.from_csv and len(gathered.jobs) == 4
    summarize_sweep(sweep_dir)
    written = runs_module.load_sweep(sweep_dir)
    assert written.from_csv
    pd.testing.assert_frame_equal(written.pareto_points.reset_index(drop=True),
                                  gathered.pareto_points.reset_index(drop=True), check_dtype=False)

    at = app("sweep", run_dir, sweep_dir)
    assert not at.error
    variants = at.dataframe[0].value
    assert sorted(variants["variant"]) == ["policy=static", "policy=threshold"]
    agg = written.aggregate.set_index("sweep/variant")
    for _, row in variants.iterrows():
        assert row["cost (USD)"].startswith(f"{agg.loc[row['variant'], 'cost/usd.mean']:,.2f} ± ")
    assert len(at.image) == 2  # Pareto and savings figures
    assert len(at.dataframe[1].value) == 4  # every job

    job = sweep_dir / at.selectbox[0].value
    at.button[0].click().run()  # open a job as the run: the playback page shows it
    assert not at.exception and not at.error
    assert at.session_state["run_dir"] == str(job)
    assert at.title[0].value == "Dual-world playback"
    assert summary_of(job)["run/name"] in texts(at)


@pytest.mark.parametrize("folder, says", [
    ("", "not a run folder, it has no summary.json"),
    ("missing", "does not exist"),
    ("notes.txt", "is a file, not a folder"),
    ("sweep", "holds 4 run folders (a sweep?) but is not one itself"),
])
def test_a_folder_that_is_not_a_run_gets_a_message_not_a_traceback(tmp_path, sweep_dir, folder, says):
    (tmp_path / "notes.txt").write_text("not a run")
    path = sweep_dir if folder == "sweep" else tmp_path / folder
    at = app("architecture", path)
    for page in RUN_PAGES:
        if page != "architecture":
            at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert len(at.error) == 1 and says in at.error[0].value, (page, [e.value for e in at.error])
        assert str(path) in at.error[0].value
        assert not at.metric  # nothing drawn from a folder that is not a run


def test_sweep_page_on_a_run_folder_gets_a_message(run_dir):
    at = app("sweep", run_dir, run_dir)
    assert len(at.error) == 1 and "is a single run, not a sweep" in at.error[0].value


def test_run_folder_checks_name_what_is_wrong(tmp_path, run_dir, runs_module):
    for name in ("summary.json", "ticks.parquet", "decisions.jsonl", ".hydra/config.yaml"):
        broken = shutil.copytree(run_dir, tmp_path / name.replace("/", "_"))
        (broken / name).unlink()
        with pytest.raises(ConfigError, match=f"dashboard.run_dir = .*: not a run folder, it has no {name}"):
            runs_module.load_run(broken)
        (broken / name).write_text("{ not json")
        with pytest.raises(ConfigError, match=f"dashboard.run_dir = '{broken}': its"):
            runs_module.load_run(broken)
    broken = shutil.copytree(run_dir, tmp_path / "no_cost")
    pd.read_parquet(run_dir / "ticks.parquet").drop(columns="cost_usd").to_parquet(broken / "ticks.parquet")
    with pytest.raises(ConfigError, match="its ticks.parquet lacks the columns cost_usd"):
        runs_module.load_run(broken)


def test_command_line_names_the_folders(run_dir, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["dashboard/app.py", "--run-dir", str(run_dir)])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception and not at.error
    assert at.sidebar.text_input[0].value == str(run_dir)
