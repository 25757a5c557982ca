"""Timestamp traces read without naming their columns, or without token counts.

``auto`` (the default for the three columns) finds each column by the names
public LLM traces give it (``COLUMN_ALIASES``), ignoring case, spaces,
underscores and hyphens: the Azure, BurstGPT and Mooncake files of
``tests/test_trace_layouts.py`` load as they do with their columns named,
the shipped Azure traces to the very same arrays. A file where a role has
no such column, or two, fails naming the field, the columns and the names
tried. A token column set to null draws that size from the workload's
distribution by the run seed; the time column cannot be null.
"""

from __future__ import annotations

import dataclasses

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elastic_des.app import run
from elastic_des.engine.request_columns import COLUMN_ALIASES, RequestColumns
from elastic_des.engine.traces import PACKAGED_TRACES, load_request_trace
from elastic_des.engine.workload import build_workload
from elastic_des.scenario_config import TraceConfig
from scenario_yaml import scenario_overrides
from test_trace_layouts import (
    AZURE, LAYOUTS, OFFSETS_S, OUTPUTS, PROMPTS, assert_names, gzipped, layout_trace, message, replay_fails,
)

ROOT = Path(__file__).resolve().parent.parent
FIELD = "scenario.workload.trace"


def auto(columns: RequestColumns) -> RequestColumns:
    """``columns`` with every column left to ``auto`` (the time unit kept)."""
    return RequestColumns(time_unit=columns.time_unit)


def assert_same_trace(found, expected) -> None:
    for name in ("time_s", "prompt_tokens", "output_tokens"):
        assert getattr(found, name).tobytes() == getattr(expected, name).tobytes(), name


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_auto_finds_the_published_layouts(tmp_path, layout, packed):
    write, name, columns = LAYOUTS[layout]
    path = write(tmp_path / name)
    path = gzipped(path) if packed else path
    found, named = load_request_trace(path, auto(columns)), load_request_trace(path, columns)
    assert found.columns == named.columns  # the columns named, and the time unit either reads in
    assert_same_trace(found, named)


@pytest.mark.parametrize("header, columns", [
    ("arrival_time,prompt_tokens,completion_tokens", ("arrival_time", "prompt_tokens", "completion_tokens")),
    ("Arrival Time,PROMPT-TOKENS,Completion Tokens", ("Arrival Time", "PROMPT-TOKENS", "Completion Tokens")),
    ("id,ts,model,Input_Len,output len,total", ("ts", "Input_Len", "output len")),
    ("request_tokens,response_tokens,created_at", ("created_at", "request_tokens", "response_tokens")),
], ids=["snake-case", "any-case-and-separator", "extra-columns", "any-order"])
def test_auto_matches_names_ignoring_case_and_separators(tmp_path, header, columns):
    names = header.split(",")
    rows = [dict(zip(names, range(len(names))))]
    rows[0].update({columns[0]: 7.5, columns[1]: 120, columns[2]: 30})
    rows.append({**rows[0], columns[0]: 9.0})
    path = tmp_path / "t.csv"
    pd.DataFrame(rows, columns=names).to_csv(path, index=False)
    trace = load_request_trace(path)
    assert trace.columns == RequestColumns(*columns, time_unit="s")
    np.testing.assert_array_equal(trace.time_s, [0.0, 1.5])
    np.testing.assert_array_equal(trace.prompt_tokens, [120, 120])
    np.testing.assert_array_equal(trace.output_tokens, [30, 30])


@pytest.mark.parametrize("name", ["AzureLLMInferenceTrace_code.csv", "AzureLLMInferenceTrace_conv.csv"])
def test_shipped_azure_traces_load_the_same_under_auto(name):
    found = load_request_trace(PACKAGED_TRACES / name)
    assert found.columns == dataclasses.replace(AZURE, time_unit="datetime")
    assert_same_trace(found, load_request_trace(PACKAGED_TRACES / name, AZURE))


def test_named_columns_are_read_as_named(tmp_path):
    # Two time columns: auto cannot choose, a name can; the token columns are still found.
    path = tmp_path / "t.csv"
    path.write_text("timestamp,time,prompt_tokens,output_tokens\n100,3,10,1\n50,4,20,2\n")
    trace = load_request_trace(path, RequestColumns(time_column="time"))
    assert trace.columns == RequestColumns("time", "prompt_tokens", "output_tokens", time_unit="s")
    np.testing.assert_array_equal(trace.time_s, [0.0, 1.0])
    np.testing.assert_array_equal(trace.prompt_tokens, [10, 20])


def test_alias_table_is_unambiguous_and_documented():
    normalised = [re.sub(r"[\s_-]", "", a).lower() for aliases in COLUMN_ALIASES.values() for a in aliases]
    assert len(normalised) == len(set(normalised)), "an alias repeats, or belongs to two columns"
    readme = (ROOT / "README.md").read_text()
    docstring = " ".join(TraceConfig.__doc__.split())
    for aliases in COLUMN_ALIASES.values():
        for alias in aliases:
            assert f"`{alias}`" in readme, f"README does not list {alias!r}"
            assert alias in docstring, f"TraceConfig's docstring does not list {alias!r}"


# -- auto fails rather than guess ----------------------------------------

@pytest.mark.parametrize("name, text, parts", [
    ("t.csv", "when,in,out\n1,2,3\n",
     [f"{FIELD}.time_column = 'auto' finds no column", "['when', 'in', 'out']", "'TIMESTAMP'", "'arrival_time'",
      "'start_time'", f"set {FIELD}.time_column to the file's column"]),
    ("t.jsonl", '{"t": 0, "prompt_tokens": 5, "output_tokens": 1}\n',
     [f"{FIELD}.time_column = 'auto' finds no column", "['t', 'prompt_tokens', 'output_tokens']"]),
    ("t.csv", "timestamp,time,prompt_tokens,output_tokens\n1,2,3,4\n",
     [f"{FIELD}.time_column = 'auto' finds 2 columns", "['timestamp', 'time']", f"set {FIELD}.time_column"]),
    ("t.jsonl", '{"ts": 0, "prompt_tokens": 5, "Input Tokens": 5, "output_tokens": 1}\n',
     [f"{FIELD}.prompt_column = 'auto' finds 2 columns", "['prompt_tokens', 'Input Tokens']"]),
    ("t.csv", "timestamp,prompt_tokens\n1,2\n",
     [f"{FIELD}.output_column = 'auto' finds no column", "'GeneratedTokens'", "'completion_tokens'",
      "or to null to draw the sizes from scenario.workload.output_tokens"]),
    ("t.csv", "timestamp\n1\n",
     [f"{FIELD}.prompt_column = 'auto' finds no column", "['timestamp']",
      "or to null to draw the sizes from scenario.workload.prompt_tokens"]),
], ids=["no-time", "jsonl-no-time", "two-times", "jsonl-two-prompts", "no-output", "times-only"])
def test_auto_refuses_to_guess(tmp_path, name, text, parts):
    path = tmp_path / name
    path.write_text(text)
    assert_names(message(lambda: load_request_trace(path)), f"trace {path}", *parts)


def test_a_wrong_name_still_fails_as_a_missing_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("timestamp,prompt_tokens,output_tokens\n1,2,3\n")
    text = message(lambda: load_request_trace(path, RequestColumns(output_column="completion")))
    assert_names(text, "missing column(s) ['completion']", "found ['timestamp', 'prompt_tokens', 'output_tokens']",
                 f"{FIELD}.output_column")


@pytest.mark.parametrize("trace, parts", [
    ({"time_column": None}, [f"{FIELD}.time_column = null", "only the token columns may be null"]),
    ({}, [f"{FIELD}.prompt_column = 'auto' finds no column", "or to null"]),
    ({"prompt_column": None, "output_column": None, "time_column": "arrival"},
     ["missing column(s) ['arrival']", f"{FIELD}.time_column"]),
], ids=["time-null", "auto-without-tokens", "named-time-missing"])
def test_a_run_fails_before_its_folder(make_cfg, tmp_path, trace, parts):
    path = tmp_path / "arrivals.csv"
    path.write_text("timestamp\n0.5\n1.5\n")
    assert_names(replay_fails(make_cfg, tmp_path, {"path": str(path), "format": "timestamps", **trace}), *parts)


# -- traces of arrival times only -----------------------------------------

CONSTANT = {"prompt_tokens": {"kind": "constant", "mean": 321.0}, "output_tokens": {"kind": "constant", "mean": 45.0}}


def arrivals_only(path: Path, count: int = len(OFFSETS_S)) -> Path:
    times = OFFSETS_S if count == len(OFFSETS_S) else np.linspace(0.0, 3000.0, count)
    pd.DataFrame({"Timestamp": [5.0 + s for s in times]}).to_csv(path, index=False)
    return path


def replayed(make_cfg, tmp_path, name: str, trace: dict, seed: int = 0, **workload):
    body = {"workload": {"trace": {"format": "timestamps", **trace}, **workload}}
    cfg = make_cfg(*scenario_overrides(tmp_path, name, body), "scenario.duration_s=3600")
    return build_workload(cfg.scenario, seed)


def test_a_run_replays_arrival_times_only(make_cfg, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="elastic_des.engine.workload")  # as run.py's logging config has it
    path = arrivals_only(tmp_path / "arrivals.csv")
    trace = layout_trace(path, RequestColumns(prompt_column=None, output_column=None))
    overrides = scenario_overrides(tmp_path, "arrivals", {"workload": {"trace": trace, **CONSTANT}})
    summary = run(make_cfg(*overrides, "scenario.duration_s=60", "baseline.enabled=false"), tmp_path / "out")
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    assert summary["requests/total"] == len(requests) == len(OFFSETS_S)
    np.testing.assert_array_equal(requests["arrival_s"], sorted(OFFSETS_S))
    assert set(requests["prompt_tokens"]) == {321} and set(requests["output_tokens"]) == {45}
    assert ("'auto' reads time_column = 'Timestamp', time_unit = 's'; 5 requests over 3 s"
            in (tmp_path / "out" / "run.log").read_text())


def test_drawn_sizes_follow_the_distribution_and_the_seed(make_cfg, tmp_path):
    path = arrivals_only(tmp_path / "arrivals.csv", count=20_000)
    sizes = {"prompt_tokens": {"kind": "lognormal", "mean": 1000.0, "cv": 0.5},
             "output_tokens": {"kind": "uniform", "low": 10.0, "high": 30.0}}
    trace = {"path": str(path), "prompt_column": None, "output_column": None}
    first, again, other = (replayed(make_cfg, tmp_path, "drawn", trace, seed, **sizes) for seed in (0, 0, 1))
    assert len(first) == 20_000 and not first.sizes_from_trace
    # Within four standard errors of the configured means (CV 0.5; uniform's sd 20/sqrt(12)).
    assert abs(first.prompt_tokens.mean() - 1000.0) < 4 * 500.0 / np.sqrt(20_000)
    assert abs(first.output_tokens.mean() - 20.0) < 4 * 5.8 / np.sqrt(20_000) + 0.01
    for name in ("arrival_s", "prompt_tokens", "output_tokens"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    np.testing.assert_array_equal(first.arrival_s, other.arrival_s)
    assert not np.array_equal(first.prompt_tokens, other.prompt_tokens)
    assert not np.array_equal(first.output_tokens, other.output_tokens)


@pytest.mark.parametrize("drawn", ["prompt_column", "output_column"])
def test_one_size_drawn_the_other_read(make_cfg, tmp_path, drawn):
    write, name, columns = LAYOUTS["burstgpt"]
    trace = {"path": str(write(tmp_path / name)), drawn: None}
    workload = replayed(make_cfg, tmp_path, "half", trace, **CONSTANT)
    order = np.argsort(OFFSETS_S, kind="stable")
    read = {"prompt_column": ("prompt_tokens", PROMPTS), "output_column": ("output_tokens", OUTPUTS)}
    kept, values = read["output_column" if drawn == "prompt_column" else "prompt_column"]
    np.testing.assert_array_equal(getattr(workload, kept), np.maximum(1, np.asarray(values)[order]))
    drawn_name, _ = read[drawn]
    assert set(getattr(workload, drawn_name)) == {CONSTANT[drawn_name]["mean"]}
    # The trace's sizes are not the configured ones: the planners' prior is the requests' own.
    assert workload.sizes_from_trace


def test_null_from_the_command_line(make_cfg):
    cfg = make_cfg("scenario=azure_code", f"{FIELD}.prompt_column=null", f"{FIELD}.output_column=null",
                   "scenario.duration_s=600")
    assert cfg.scenario.workload.trace.prompt_column is None
    workload = build_workload(cfg.scenario, 0)
    shipped = load_request_trace(PACKAGED_TRACES / "AzureLLMInferenceTrace_code.csv")
    np.testing.assert_array_equal(workload.arrival_s, shipped.time_s[shipped.time_s < 600])
    assert not workload.sizes_from_trace



def times_trace(path: Path, header: str, times: list, prompt: str = "input_length", output: str = "output_length") -> Path:
    """A CSV trace of ``times`` under the time column ``header``, 100 and 20 tokens each."""
    pd.DataFrame({header: times, prompt: 100, output: 20}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("header, prompt, output, times, unit, span_s", [
    # Mooncake's columns: milliseconds since the first request (its README), which the numbers cannot tell.
    ("timestamp", "input_length", "output_length", [0, 1500, 3052], "ms", 3.052),
    # BurstGPT's: seconds since the trace start.
    ("Timestamp", "Request tokens", "Response tokens", [0, 1.5, 3.052], "s", 3.052),
    # Unix times by their magnitude: seconds (1.7e9), milliseconds (1.7e12), microseconds (1.7e15).
    ("arrival_time", "prompt_tokens", "output_tokens", [1.7e9, 1.7e9 + 2], "s", 2.0),
    ("arrival_time", "prompt_tokens", "output_tokens", [1.7e12, 1.7e12 + 2000], "ms", 2.0),
    ("arrival_time", "prompt_tokens", "output_tokens", [1.7e15, 1.7e15 + 2e6], "us", 2.0),
], ids=["mooncake-ms", "burstgpt-s", "unix-s", "unix-ms", "unix-us"])
def test_auto_time_unit_reads_layouts_and_unix_times_in_their_own_unit(tmp_path, header, prompt, output, times,
                                                                       unit, span_s):
    trace = load_request_trace(times_trace(tmp_path / "t.csv", header, times, prompt, output))
    assert trace.columns.time_unit == unit
    assert trace.time_s[-1] == pytest.approx(span_s)


def test_a_named_time_unit_overrides_what_auto_would_infer(tmp_path):
    path = times_trace(tmp_path / "t.csv", "timestamp", [0, 1500, 3052])
    assert load_request_trace(path).time_s[-1] == pytest.approx(3.052)  # auto: Mooncake's milliseconds
    seconds = load_request_trace(path, RequestColumns(time_unit="s"))
    assert seconds.columns.time_unit == "s" and seconds.time_s[-1] == 3052.0


def test_a_mooncake_jsonl_trace_replays_in_milliseconds_without_settings(tmp_path):
    path = tmp_path / "mooncake_trace.jsonl"
    path.write_text("".join(f'{{"timestamp": {t}, "input_length": 6755, "output_length": 500, "hash_ids": [0]}}\n'
                            for t in (0, 0, 3052, 3052, 60000)))
    trace = load_request_trace(path)
    assert trace.columns == RequestColumns("timestamp", "input_length", "output_length", "ms")
    np.testing.assert_allclose(trace.time_s, [0.0, 0.0, 3.052, 3.052, 60.0])
