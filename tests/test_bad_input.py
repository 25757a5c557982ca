"""Bad input fails early with a message that names the field and the value.

Config values are checked when the run starts and raise
:class:`~elastic_des.errors.ConfigError`; what Hydra itself rejects while
composing (an unknown config group option, an unknown key in a scenario
YAML) raises Hydra's ``ConfigCompositionException``. Either way the message
must let a user find the line to fix.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from elastic_des.app import TASKS, run
from elastic_des.errors import ConfigError, ConfigWarning
from elastic_des.validate import validate
from elastic_des.engine.traces import load_rate_trace, load_request_trace
from scenario_yaml import scenario_overrides

QUICK = ("scenario.duration_s=600", "baseline.enabled=false")


def run_fails(make_cfg, *overrides: str) -> str:
    """Run with ``overrides``; the ConfigError message it must raise."""
    cfg = make_cfg(*QUICK, *overrides)
    with pytest.raises(ConfigError) as info:
        run(cfg)
    return str(info.value)


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in error message: {message}"


# -- config values --------------------------------------------------------

@pytest.mark.parametrize(
    "override, field, value",
    [
        ("scenario.workload.base_rate_rps=-3", "scenario.workload.base_rate_rps", "-3"),
        ("scenario.workload.base_rate_rps=0", "scenario.workload.base_rate_rps", "0"),
        ("scenario.workload.diurnal_amplitude=1", "scenario.workload.diurnal_amplitude", "1"),
        ("scenario.workload.diurnal_amplitude=1.5", "scenario.workload.diurnal_amplitude", "1.5"),
        ("scenario.workload.diurnal_amplitude=-0.1", "scenario.workload.diurnal_amplitude", "-0.1"),
        ("scenario.slo.latency_s=0", "scenario.slo.latency_s", "0"),
        ("scenario.slo.latency_s=-5", "scenario.slo.latency_s", "-5"),
        ("scenario.duration_s=-1", "scenario.duration_s", "-1"),
        ("controller.tick_s=0", "controller.tick_s", "0"),
        ("controller.tick_s=-60", "controller.tick_s", "-60"),
        ("world.model.max_num_seqs=0", "world.model.max_num_seqs", "0"),
        ("world.model.step_base_s=0", "world.model.step_base_s", "0"),
        ("world.model.step_base_s=-0.01", "world.model.step_base_s", "-0.01"),
        ("world.model.step_per_seq_s=-1e-5", "world.model.step_per_seq_s", "-1e-05"),
        ("world.model.kv_budget_tokens=500", "world.model.kv_budget_tokens", "500"),
        ("world.model.prefill_tokens_per_s=0", "world.model.prefill_tokens_per_s", "0"),
        ("scenario.slo.ttft_s=0", "scenario.slo.ttft_s", "0"),
        ("scenario.slo.tpot_s=-1", "scenario.slo.tpot_s", "-1"),
        ("world.model.cold_start_s=-1", "world.model.cold_start_s", "-1"),
        ("seed=-1", "seed", "-1"),
    ],
)
def test_bad_value_names_field_and_value(make_cfg, override, field, value):
    assert_names(run_fails(make_cfg, override), f"{field} = ", value)


def test_slots_model_needs_a_slot(make_cfg):
    message = run_fails(make_cfg, "world.model.service_model=tokens", "world.model.slots_per_replica=0")
    assert_names(message, "world.model.slots_per_replica = 0")


def test_ttft_slo_needs_a_prefill_rate(make_cfg):
    message = run_fails(make_cfg, "world.model.prefill_tokens_per_s=null", "scenario.slo.ttft_s=1.0")
    assert_names(message, "scenario.slo.ttft_s = 1.0", "world.model.prefill_tokens_per_s")
    message = run_fails(make_cfg, "world.model.service_model=exponential", "scenario.slo.ttft_s=1.0")
    assert_names(message, "scenario.slo.ttft_s = 1.0", "exponential")


def test_an_slo_needs_an_objective(make_cfg):
    message = run_fails(make_cfg, "scenario.slo.latency_s=null")
    assert_names(message, "scenario.slo", "latency_s, ttft_s, tpot_s")


def test_min_replicas_above_max(make_cfg):
    message = run_fails(make_cfg, "world.fleet.min_replicas=5", "world.fleet.max_replicas=2")
    assert_names(message, "world.fleet.max_replicas = 2", "min_replicas (5)")


def test_baseline_world_errors_name_the_baseline(make_cfg):
    cfg = make_cfg("scenario.duration_s=600", "baseline.world.fleet.min_replicas=5", "baseline.world.fleet.max_replicas=2")
    with pytest.raises(ConfigError, match=r"baseline\.world\.fleet\.max_replicas = 2"):
        run(cfg)


# -- what Hydra rejects while composing ----------------------------------

def test_unknown_policy(make_cfg):
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg("policy=nope")
    assert_names(str(info.value), "policy", "nope", "static")  # and it lists the options


def test_unknown_key_in_scenario_yaml(make_cfg, tmp_path):
    overrides = scenario_overrides(tmp_path, "typo", {"workload": {"base_rte": 3.0}})
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg(*overrides)
    assert_names(str(info.value), "scenario/typo", "scenario.workload.base_rte")


def test_wrong_type_in_scenario_yaml(make_cfg, tmp_path):
    overrides = scenario_overrides(tmp_path, "words", {"workload": {"base_rate_rps": "lots"}})
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg(*overrides)
    message = f"{info.value} {info.value.__cause__}"
    assert_names(message, "scenario.workload.base_rate_rps", "lots")


def test_unknown_key_override(make_cfg):
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg("scenario.workload.bogus=1")
    assert_names(f"{info.value} {info.value.__cause__}", "scenario.workload.bogus")


# -- traces ---------------------------------------------------------------

def trace_scenario(tmp_path: Path, **trace) -> list[str]:
    return scenario_overrides(tmp_path, "replay", {"workload": {"trace": trace}})


def test_missing_trace_file(make_cfg, tmp_path):
    message = run_fails(make_cfg, *trace_scenario(tmp_path, path="no_such_trace.csv"))
    # It names the field and the file, and lists what is shipped.
    assert_names(message, "scenario.workload.trace.path = ", "no_such_trace.csv", "AzureLLMInferenceTrace_code.csv")


@pytest.mark.parametrize(
    "trace, field, value",
    [
        ({"rate_scale": -1.0}, "scenario.workload.trace.rate_scale", "-1"),
        ({"rate_scale": 0.0}, "scenario.workload.trace.rate_scale", "0"),
        ({"time_compression": 0.0}, "scenario.workload.trace.time_compression", "0"),
        ({"start_s": -10.0}, "scenario.workload.trace.start_s", "-10"),
        ({"format": "minutes"}, "scenario.workload.trace.format", "minutes"),
    ],
)
def test_bad_trace_settings(make_cfg, tmp_path, trace, field, value):
    message = run_fails(make_cfg, *trace_scenario(tmp_path, path="AzureLLMInferenceTrace_code.csv", **trace))
    assert_names(message, f"{field} = ", value)


def test_rate_trace_too_short_for_the_scenario(make_cfg, tmp_path):
    # 14 days of 10-minute windows, compressed 10x, cover 1.4 days: not 2 days.
    overrides = trace_scenario(tmp_path, path="servegen_m-large_aggregate_rate.csv", format="rates", time_compression=10.0)
    message = run_fails(make_cfg, *overrides, "scenario.duration_s=172800")
    assert_names(message, "scenario.workload.trace.time_compression = 10")


def test_trace_start_beyond_its_end(make_cfg, tmp_path):
    # The Azure code trace lasts under an hour; ServeGen's two weeks.
    message = run_fails(make_cfg, *trace_scenario(tmp_path, path="AzureLLMInferenceTrace_code.csv", start_s=7200.0))
    assert_names(message, "scenario.workload.trace", "start_s = 7200")
    overrides = trace_scenario(tmp_path, path="servegen_m-large_aggregate_rate.csv", format="rates", start_s=2e6)
    assert_names(run_fails(make_cfg, *overrides), "scenario.workload.trace.start_s = 2000000")


AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GOOD_ROW = "2023-11-16 18:17:03.9799600,4808,10\n"


@pytest.mark.parametrize(
    "text, parts",
    [
        (AZURE_HEADER + GOOD_ROW + "yesterday at noon,100,10\n", ["row 3", "TIMESTAMP", "yesterday at noon"]),
        (AZURE_HEADER + GOOD_ROW + "2023-11-16 18:17:05.0,-20,10\n", ["row 3", "ContextTokens", "-20"]),
        (AZURE_HEADER + "2023-11-16 18:17:05.0,20,many\n", ["row 2", "GeneratedTokens", "many"]),
        (AZURE_HEADER + GOOD_ROW + "2023-11-16 18:17:05.0,,10\n", ["row 3", "ContextTokens", "''"]),
        ("TIMESTAMP,ContextTokens\n" + "2023-11-16 18:17:05.0,20\n",
         ["scenario.workload.trace.output_column = 'auto' finds no column", "GeneratedTokens"]),
        (AZURE_HEADER, ["no rows"]),
    ],
    ids=["timestamp", "negative-tokens", "non-numeric-tokens", "empty-tokens", "missing-column", "header-only"],
)
def test_malformed_request_trace(tmp_path, text, parts):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_request_trace(path)
    assert_names(str(info.value), str(path), *parts)


@pytest.mark.parametrize(
    "text, parts",
    [
        ("window_start_s,total_rate_rps\n0,10\n600,abc\n1200,5\n", ["row 3", "total_rate_rps", "abc"]),
        ("window_start_s,total_rate_rps\n0,10\n600,-4\n", ["row 3", "total_rate_rps", "-4"]),
        ("window_start_s,total_rate_rps\n0,10\n600,4\n900,4\n", ["row 4", "window_start_s", "900", "equally spaced"]),
        ("window_start,rate\n0,10\n600,4\n", ["missing column", "window_start_s", "total_rate_rps"]),
        ("window_start_s,total_rate_rps\n0,10\n", ["at least two windows"]),
    ],
    ids=["non-numeric-rate", "negative-rate", "uneven-windows", "missing-columns", "one-window"],
)
def test_malformed_rate_trace(tmp_path, text, parts):
    path = tmp_path / "bad_rates.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_rate_trace(path)
    assert_names(str(info.value), str(path), *parts)


def test_malformed_trace_reported_by_a_run(make_cfg, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(AZURE_HEADER + GOOD_ROW + "not a time,100,10\n")
    message = run_fails(make_cfg, *trace_scenario(tmp_path, path=str(path)))
    assert_names(message, str(path), "row 3", "TIMESTAMP", "not a time")


# -- finiteness, schema keys, size, warnings -------------------------------

@pytest.mark.parametrize(
    "override, field",
    [
        ("scenario.workload.base_rate_rps=inf", "scenario.workload.base_rate_rps"),
        ("scenario.workload.base_rate_rps=nan", "scenario.workload.base_rate_rps"),
        ("scenario.workload.spikes=[{start_s:60,duration_s:60,multiplier:inf}]", "scenario.workload.spikes[0].multiplier"),
        ("scenario.duration_s=inf", "scenario.duration_s"),  # used to blame trend_per_hour
        ("world.model.cold_start_s=-inf", "world.model.cold_start_s"),
        ("policy.upper=nan", "policy.upper"),
    ],
)
def test_non_finite_numbers_name_their_field(make_cfg, override, field):
    assert_names(run_fails(make_cfg, override), f"{field} = ", "must be a finite number")


def test_infinite_trace_rate_scale(make_cfg, tmp_path):
    message = run_fails(make_cfg, *trace_scenario(tmp_path, path="AzureLLMInferenceTrace_code.csv", rate_scale=float("inf")))
    assert_names(message, "scenario.workload.trace.rate_scale = inf", "finite")


def test_plus_key_gets_the_message_of_a_typo(make_cfg):
    """``+scenario.workload.base_rte=50`` used to run at the default rate."""
    with pytest.raises(ConfigCompositionException) as typo:
        make_cfg("scenario.workload.base_rte=50")
    message = run_fails(make_cfg, "+scenario.workload.base_rte=50")
    for line in str(typo.value.__cause__).splitlines()[:2]:  # Key 'base_rte' not in 'WorkloadConfig' / full_key
        assert line in message
    assert_names(run_fails(make_cfg, "+policy.uper=0.9"), "Key 'uper' not in 'ThresholdConfig'", "full_key: policy.uper")
    assert_names(run_fails(make_cfg, "+sede=3"), "Key 'sede' not in 'Config'")


def test_a_run_too_big_for_memory_is_refused_up_front(make_cfg):
    """A base rate of 1e6 req/s used to try to allocate 16 GiB; now the
    estimate refuses it before anything is allocated."""
    start = time.perf_counter()
    message = run_fails(make_cfg, "scenario.workload.base_rate_rps=1e6", "scenario.duration_s=86400")
    assert time.perf_counter() - start < 5
    assert_names(message, "scenario.workload.base_rate_rps = 1000000.0", "requests", "GB", "limits.max_memory_gb")
    # A world holds a window of requests at a time: a month at 50 req/s fits in 2 GB, and
    # a month at 1e5 req/s (a window of over 1e9 requests) does not fit in 24.
    month = ("scenario.duration_s=2592000", "output.requests=false")
    validate(make_cfg(*month, "scenario.workload.base_rate_rps=50", "limits.max_memory_gb=2"), tuple(TASKS))
    assert_names(run_fails(make_cfg, *month, "scenario.workload.base_rate_rps=1e5", "limits.max_memory_gb=24"),
                 "a window of the run", "limits.max_memory_gb = 24")
    # The limit is a setting: a tiny one refuses even a small run, naming itself.
    assert_names(run_fails(make_cfg, "limits.max_memory_gb=1e-6"), "limits.max_memory_gb = 1e-06")
    assert_names(run_fails(make_cfg, "limits.max_memory_gb=0"), "limits.max_memory_gb = 0", "must be > 0")


def test_warm_up_too_short_names_the_warm_up_field(make_cfg):
    message = run_fails(make_cfg, "forecaster=lstm", "controller.warmup_days=0.01")
    assert_names(message, "controller.warmup_days = 0.01", "window_ticks + horizon_ticks")


def warnings_of(make_cfg, *overrides: str) -> list[str]:
    """The ConfigWarnings that validating ``overrides`` gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate(make_cfg(*QUICK, *overrides), tuple(TASKS))
    return [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]


def test_a_spike_after_the_end_of_the_run_warns(make_cfg):
    found = warnings_of(make_cfg, "scenario.workload.spikes=[{start_s:9000,duration_s:60,multiplier:3}]")
    assert any("scenario.workload.spikes[0].start_s = 9000.0: at or after the end of the run" in w for w in found)
    assert warnings_of(make_cfg, "scenario.workload.spikes=[{start_s:60,duration_s:60,multiplier:3}]") == []


def test_a_trace_without_requests_warns(make_cfg, tmp_path):
    path = tmp_path / "zeros.csv"
    path.write_text("window_start_s,total_rate_rps\n" + "".join(f"{i * 60},0\n" for i in range(20)))
    found = warnings_of(make_cfg, *trace_scenario(tmp_path, path=str(path), format="rates"))
    assert any("scenario.workload.trace.path" in w and "no requests" in w for w in found)


def test_an_unbounded_queue_the_peak_overloads_warns(make_cfg):
    overload = ("world.fleet.queue_capacity=null", "world.fleet.queue_timeout_s=null", "world.fleet.max_replicas=2",
                "scenario.workload.base_rate_rps=100")
    found = warnings_of(make_cfg, *overload)
    assert any(w.startswith("world.fleet.queue_capacity = None: an unbounded queue") and "latency" in w for w in found)
    # Bounded, or with room for the peak: no warning.
    assert not any("queue_capacity" in w for w in warnings_of(make_cfg, *overload[2:]))
    assert not any("queue_capacity" in w for w in warnings_of(make_cfg, "world.fleet.queue_capacity=null"))
