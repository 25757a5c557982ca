"""Timestamp traces in the layouts other services publish.

The same five requests written as the Azure LLM inference trace (CSV, ISO-8601
datetimes), as BurstGPT (CSV, float seconds since the trace start, extra
columns) and as Mooncake (JSON Lines, milliseconds, extra keys), plain and
gzipped, load to identical arrays once ``scenario.workload.trace`` names the
columns and the time unit (``tests/test_trace_autodetect.py``: or lets
``auto`` find the columns). Malformed files fail naming the file, the row as
the user sees it (a CSV header is row 1, a JSON Lines file's line n is row n),
the column and the value; misused settings fail naming the field.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from elastic_des.app import run
from elastic_des.engine.traces import RequestColumns, load_request_trace
from elastic_des.errors import ConfigError
from elastic_des.scenario_config import TraceConfig, WorkloadConfig
from scenario_yaml import scenario_overrides

# Out of order in the file: the loader sorts by time.
OFFSETS_S = [0.0, 0.5, 3.0, 1.25, 2.0]
PROMPTS = [374, 396, 0, 879, 91]
OUTPUTS = [44, 109, 12, 1, 300]

AZURE = RequestColumns("TIMESTAMP", "ContextTokens", "GeneratedTokens")
BURSTGPT = RequestColumns("Timestamp", "Request tokens", "Response tokens", "s")
MOONCAKE = RequestColumns("timestamp", "input_length", "output_length", "ms")


def azure_csv(path: Path) -> Path:
    start = pd.Timestamp("2023-11-16 18:15:46.5")
    stamps = [(start + pd.Timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S.%f0") for s in OFFSETS_S]
    pd.DataFrame({"TIMESTAMP": stamps, "ContextTokens": PROMPTS, "GeneratedTokens": OUTPUTS}).to_csv(path, index=False)
    return path


def burstgpt_csv(path: Path) -> Path:
    pd.DataFrame({"Timestamp": [5.0 + s for s in OFFSETS_S], "Model": "ChatGPT", "Request tokens": PROMPTS,
                  "Response tokens": OUTPUTS, "Total tokens": np.add(PROMPTS, OUTPUTS),
                  "Log Type": "Conversation log"}).to_csv(path, index=False)
    return path


def mooncake_jsonl(path: Path) -> Path:
    records = [{"timestamp": 27_000 + round(s * 1000), "input_length": p, "output_length": o, "hash_ids": [i, i + 1]}
               for i, (s, p, o) in enumerate(zip(OFFSETS_S, PROMPTS, OUTPUTS))]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def gzipped(path: Path) -> Path:
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    return packed


LAYOUTS = {
    "azure": (azure_csv, "azure.csv", AZURE),
    "burstgpt": (burstgpt_csv, "burstgpt.csv", BURSTGPT),
    "mooncake": (mooncake_jsonl, "mooncake.jsonl", MOONCAKE),
}


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_loads_the_same_requests(tmp_path, layout, packed):
    write, name, columns = LAYOUTS[layout]
    path = write(tmp_path / name)
    trace = load_request_trace(gzipped(path) if packed else path, columns)
    order = np.argsort(OFFSETS_S, kind="stable")
    np.testing.assert_array_equal(trace.time_s, np.asarray(OFFSETS_S)[order])
    np.testing.assert_array_equal(trace.prompt_tokens, np.asarray(PROMPTS, float)[order])
    np.testing.assert_array_equal(trace.output_tokens, np.asarray(OUTPUTS, float)[order])


def test_time_unit_auto_tells_numbers_from_datetimes(tmp_path):
    auto = RequestColumns("Timestamp", "Request tokens", "Response tokens")
    path = burstgpt_csv(tmp_path / "burstgpt.csv")
    np.testing.assert_array_equal(load_request_trace(path, auto).time_s, load_request_trace(path, BURSTGPT).time_s)
    # Plain numbers are seconds, never dates (ISO-8601 would read 2023 as a year).
    path.write_text("Timestamp,Request tokens,Response tokens\n2023,10,10\n2024.5,10,10\n")
    np.testing.assert_array_equal(load_request_trace(path, auto).time_s, [0.0, 1.5])
    # Microseconds, as the unit says.
    path.write_text("Timestamp,Request tokens,Response tokens\n1700000000000000,10,10\n1700000000250000,10,10\n")
    microseconds = dataclasses.replace(BURSTGPT, time_unit="us")
    np.testing.assert_array_equal(load_request_trace(path, microseconds).time_s, [0.0, 0.25])


def test_datetimes_with_different_offsets_compare_in_utc(tmp_path):
    path = tmp_path / "zones.jsonl"
    path.write_text('{"TIMESTAMP": "2023-11-16T18:00:00+01:00", "ContextTokens": 1, "GeneratedTokens": 1}\n'
                    '{"TIMESTAMP": "2023-11-16T17:00:02Z", "ContextTokens": 1, "GeneratedTokens": 1}\n'
                    '{"TIMESTAMP": "2023-11-16 17:00:01", "ContextTokens": 1, "GeneratedTokens": 1}\n')
    np.testing.assert_array_equal(load_request_trace(path).time_s, [0.0, 1.0, 2.0])


def test_trace_config_defaults_are_auto():
    assert RequestColumns.of(TraceConfig()) == RequestColumns("auto", "auto", "auto", "auto")


# -- a whole run ----------------------------------------------------------

def layout_trace(path: Path, columns: RequestColumns, **settings) -> dict:
    return {"path": str(path), "format": "timestamps", **dataclasses.asdict(columns), **settings}


@pytest.mark.parametrize("layout", ["burstgpt", "mooncake"])
def test_a_run_replays_a_foreign_trace(make_cfg, tmp_path, layout):
    write, name, columns = LAYOUTS[layout]
    path = write(tmp_path / name)
    overrides = scenario_overrides(tmp_path, layout, {"workload": {"trace": layout_trace(path, columns)}})
    cfg = make_cfg(*overrides, "scenario.duration_s=60", "baseline.enabled=false")
    summary = run(cfg, tmp_path / "out")
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    assert summary["requests/total"] == len(requests) == len(OFFSETS_S)
    np.testing.assert_array_equal(requests["arrival_s"], sorted(OFFSETS_S))
    # Sizes are the trace's, at least one token each.
    assert sorted(requests["prompt_tokens"]) == sorted(np.maximum(1, PROMPTS))


def test_unknown_key_under_trace_is_refused(make_cfg, tmp_path):
    trace = {"path": "burstgpt.csv", "time_colum": "Timestamp"}
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg(*scenario_overrides(tmp_path, "typo", {"workload": {"trace": trace}}))
    assert "scenario.workload.trace.time_colum" in f"{info.value} {info.value.__cause__}"


# -- errors ---------------------------------------------------------------

def message(call) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    return str(info.value)


def assert_names(text: str, *parts: str) -> None:
    for part in parts:
        assert part in text, f"{part!r} not in error message: {text}"


BURST_HEADER = "Timestamp,Model,Request tokens,Response tokens,Log Type\n"
BURST_ROW = "0.5,ChatGPT,120,30,Conversation log\n"


@pytest.mark.parametrize(
    "name, text, columns, parts",
    [
        ("b.csv", "Time,Model,Request tokens,Response tokens\n0,ChatGPT,1,1\n", BURSTGPT,
         ["missing column", "'Timestamp'", "found ['Time', 'Model', 'Request tokens', 'Response tokens']",
          "scenario.workload.trace.time_column"]),
        ("b.csv", BURST_HEADER + BURST_ROW, AZURE,
         ["missing column", "'TIMESTAMP', 'ContextTokens', 'GeneratedTokens'", "'Request tokens'",
          "scenario.workload.trace.time_column, scenario.workload.trace.prompt_column, "
          "scenario.workload.trace.output_column"]),
        ("b.csv", BURST_HEADER + BURST_ROW + "1.0,ChatGPT,lots,30,Conversation log\n", BURSTGPT,
         ["row 3", "column Request tokens", "'lots'"]),
        ("b.csv", BURST_HEADER + BURST_ROW + "1.0,ChatGPT,12,-3,Conversation log\n", BURSTGPT,
         ["row 3", "column Response tokens", "'-3'", ">= 0"]),
        ("b.csv", BURST_HEADER + BURST_ROW + "1.0,ChatGPT,nan,3,Conversation log\n", BURSTGPT,
         ["row 3", "column Request tokens", "'nan'"]),
        ("b.csv", BURST_HEADER + BURST_ROW + "inf,ChatGPT,12,3,Conversation log\n", BURSTGPT,
         ["row 3", "column Timestamp", "'inf'", "scenario.workload.trace.time_unit = 's'"]),
        ("b.csv", BURST_HEADER + BURST_ROW + "-1.5,ChatGPT,12,3,Conversation log\n", BURSTGPT,
         ["row 3", "column Timestamp", "'-1.5'", ">= 0"]),
        ("b.csv", BURST_HEADER + BURST_ROW + "noon,ChatGPT,12,3,Conversation log\n",
         RequestColumns("Timestamp", "Request tokens", "Response tokens"),
         ["row 3", "column Timestamp", "'noon'", "time_unit = 'auto' and row 2 is a number"]),
        ("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,4,1\n1700000000,4,1\n",
         AZURE, ["row 3", "column TIMESTAMP", "'1700000000'", "not an ISO-8601 timestamp", "s, ms or us"]),
        ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n'
                    '{"timestamp": 7, "input_length": -5, "output_length": 1}\n', MOONCAKE,
         ["row 2", "column input_length", "'-5'"]),
        ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n\n'
                    '{"timestamp": "soon", "input_length": 5, "output_length": 1}\n', MOONCAKE,
         ["row 3", "column timestamp", "'soon'", "time_unit = 'ms'"]),
        ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n'
                    '{"timestamp": 1, "input_length": NaN, "output_length": 1}\n', MOONCAKE,
         ["row 2", "column input_length", "'NaN'"]),
        ("m.jsonl", '{"timestamp": 0, "input_len": 5, "output_length": 1, "hash_ids": []}\n', MOONCAKE,
         ["missing column", "'input_length'", "found ['timestamp', 'input_len', 'output_length', 'hash_ids']",
          "scenario.workload.trace.prompt_column"]),
        ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n'
                    '{"timestamp": 9, "input_length": 5}\n', MOONCAKE,
         ["row 2", "column output_length", "missing", "keys found: ['timestamp', 'input_length']"]),
        ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 9,\n', MOONCAKE,
         ["row 2", "not JSON"]),
        ("m.jsonl", "\n", MOONCAKE, ["no rows"]),
        ("m.txt", "whatever\n", MOONCAKE, ["scenario.workload.trace.path", ".csv, .csv.gz, .jsonl, .jsonl.gz"]),
    ],
    ids=["missing-column", "azure-names-on-burstgpt", "non-numeric-tokens", "negative-tokens", "nan-tokens",
         "inf-time", "negative-time", "unparseable-time", "number-among-datetimes", "jsonl-negative-tokens",
         "jsonl-unparseable-time", "jsonl-nan", "jsonl-missing-key", "jsonl-row-missing-key", "jsonl-bad-line",
         "jsonl-empty", "unknown-suffix"],
)
def test_malformed_trace(tmp_path, name, text, columns, parts):
    path = tmp_path / name
    path.write_text(text)
    assert_names(message(lambda: load_request_trace(path, columns)), str(path), *parts)


def replay_fails(make_cfg, tmp_path, trace: dict) -> str:
    """The ConfigError of a run replaying ``trace``; it fails before making its folder."""
    cfg = make_cfg(*scenario_overrides(tmp_path, "replay", {"workload": {"trace": trace}}), "baseline.enabled=false")
    text = message(lambda: run(cfg, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    return text


def test_a_malformed_trace_fails_before_the_run_folder(make_cfg, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(BURST_HEADER + BURST_ROW + "1.0,ChatGPT,lots,30,Conversation log\n")
    assert_names(replay_fails(make_cfg, tmp_path, layout_trace(path, BURSTGPT)),
                 str(path), "row 3", "column Request tokens", "'lots'")


def test_unknown_time_unit(make_cfg, tmp_path):
    path = burstgpt_csv(tmp_path / "burstgpt.csv")
    text = replay_fails(make_cfg, tmp_path, layout_trace(path, BURSTGPT, time_unit="minutes"))
    assert_names(text, "scenario.workload.trace.time_unit = 'minutes'", "auto, datetime, s, ms, us")


@pytest.mark.parametrize("trace_format, path", [("rates", "servegen_m-large_aggregate_rate.csv"),
                                                ("clients", "servegen_deepseek-r1_clients.csv.gz")])
@pytest.mark.parametrize("setting, value", [("time_column", "Timestamp"), ("prompt_column", "input_length"),
                                            ("output_column", "output_length"), ("time_unit", "ms"),
                                            ("prompt_column", None)])
def test_layout_settings_apply_only_to_timestamps(make_cfg, tmp_path, trace_format, path, setting, value):
    text = replay_fails(make_cfg, tmp_path, {"path": path, "format": trace_format, setting: value})
    assert_names(text, f"scenario.workload.trace.{setting} = {value!r}", "only to format timestamps", trace_format)


def test_readme_examples_are_valid_settings():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "path: /data/" in b]
    layouts = [RequestColumns.of(OmegaConf.merge(OmegaConf.structured(WorkloadConfig),
                                                 yaml.safe_load(b)["workload"]).trace) for b in blocks]
    # Mooncake by its path alone (auto finds its columns and its unit), a layout of its own, arrival times only.
    assert layouts == [RequestColumns(), RequestColumns("t_arrival", "n_in", "n_out", "s"),
                       RequestColumns(prompt_column=None, output_column=None)]
    for layout in layouts:
        layout.check("timestamps", "scenario.workload.trace")
