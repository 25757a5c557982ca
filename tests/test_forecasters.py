"""Forecasters: exact classical ones, learned ones that learn, model files, warm-up history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from elastic_des import rng
from elastic_des.factory import build
from elastic_des.scenario_config import SpikeConfig, TraceConfig
from elastic_des.errors import ConfigError
from elastic_des.engine.history import warmup_history
from elastic_des.forecasters.networks import LSTMForecaster, TCNForecaster
from elastic_des.forecasters.simple import EWMAForecaster, SeasonalNaiveForecaster, SMAForecaster
from elastic_des.engine.traces import load_client_trace, load_rate_trace, load_request_trace, resolve_trace_path
from elastic_des.engine.workload import build_workload

TICK_S = 60.0
PERIOD = 24  # ticks per cycle of the test sinusoid
HORIZON = 5
# Small and quick: a full cycle of input, a few hundred Adam steps.
SMALL = dict(window_ticks=PERIOD, horizon_ticks=HORIZON, hidden=16, train_steps=400, learning_rate=0.01)
NETS = {"lstm": (LSTMForecaster, {}), "tcn": (TCNForecaster, {"levels": 4, "train_steps": 200})}


def start(forecaster, history):
    """Reset ``forecaster`` to 60 s ticks and warm it up on ``history``."""
    forecaster.reset(TICK_S)
    forecaster.warm_up(history)
    return forecaster


def feed(forecaster, rates, horizon):
    """Forecasts after each of ``rates``, as rows."""
    rows = []
    for rate in rates:
        forecaster.update(rate)
        rows.append(forecaster.predict(horizon))
    return np.array(rows)


def mean_abs_error(forecasts: np.ndarray, actual: np.ndarray) -> float:
    """MAE over horizons 1..H of forecasts made after each tick of ``actual``."""
    h_max = forecasts.shape[1]
    return float(np.mean([np.abs(forecasts[:-h, h - 1] - actual[h:]).mean() for h in range(1, h_max + 1)]))


@pytest.fixture(scope="module")
def sinusoid():
    """A daily-like cycle with 10% multiplicative noise: 50 cycles to train on, 10 to test."""
    t = np.arange(60 * PERIOD)
    noise = rng.stream(0, "test/sinusoid").standard_normal(len(t))
    series = 10.0 * (1 + 0.5 * np.sin(2 * np.pi * t / PERIOD)) * (1 + 0.1 * noise)
    return series[:50 * PERIOD], series[50 * PERIOD:]


def make_net(kind: str, **overrides):
    cls, extra = NETS[kind]
    return cls(**{**SMALL, **extra, **overrides})


@pytest.fixture(scope="module")
def trained(sinusoid):
    """One trained forecaster of each kind, warmed up on the sinusoid's training part."""
    return {kind: start(make_net(kind), sinusoid[0]) for kind in NETS}


# -- classical forecasters: exact values ---------------------------------------------


def test_sma_exact_on_constant_and_step():
    sma = SMAForecaster(window=3)
    sma.reset(TICK_S)
    assert np.array_equal(sma.predict(2), [0.0, 0.0])  # nothing seen yet
    for _ in range(4):
        sma.update(2.0)
    assert np.array_equal(sma.predict(4), [2.0] * 4)
    # Step 2 -> 8: the window (2, 2, 8), (2, 8, 8), (8, 8, 8).
    expected = [4.0, 6.0, 8.0, 8.0]
    for value in expected:
        sma.update(8.0)
        assert np.array_equal(sma.predict(3), [value] * 3)


def test_ewma_exact_on_constant_and_step():
    ewma = EWMAForecaster(alpha=0.5)
    ewma.reset(TICK_S)
    for _ in range(3):
        ewma.update(3.0)
    assert np.array_equal(ewma.predict(2), [3.0, 3.0])
    # Step 3 -> 7 with alpha 1/2: 5, 6, 6.5, 6.75 (exact in binary).
    for value in (5.0, 6.0, 6.5, 6.75):
        ewma.update(7.0)
        assert np.array_equal(ewma.predict(5), [value] * 5)


def test_seasonal_naive_repeats_the_last_period():
    naive = SeasonalNaiveForecaster(period_s=4 * TICK_S)
    naive.reset(TICK_S)
    for value in (1.0, 2.0):
        naive.update(value)
    # Ticks 2 and 3 have no tick a period before them (the last value stands in);
    # tick 4 repeats tick 0.
    assert np.array_equal(naive.predict(3), [2.0, 2.0, 1.0])
    for value in range(3, 9):
        naive.update(float(value))
    # Seen 1..8; the next 6 ticks are the last period 5, 6, 7, 8, then again 5, 6.
    assert np.array_equal(naive.predict(6), [5.0, 6.0, 7.0, 8.0, 5.0, 6.0])


def test_warm_up_primes_the_classical_forecasters():
    naive = start(SeasonalNaiveForecaster(period_s=3 * TICK_S), np.array([4.0, 5.0, 6.0]))
    assert np.array_equal(naive.predict(3), [4.0, 5.0, 6.0])
    sma = start(SMAForecaster(window=2), np.array([1.0, 3.0, 5.0]))
    assert np.array_equal(sma.predict(1), [4.0])
    with pytest.raises(ConfigError, match=r"warm-up history\[1\] = -1.0"):
        sma.warm_up(np.array([1.0, -1.0]))


@pytest.mark.parametrize("cls, kwargs, field", [
    (SMAForecaster, {"window": 0}, "forecaster.window = 0"),
    (EWMAForecaster, {"alpha": 1.5}, "forecaster.alpha = 1.5"),
    (SeasonalNaiveForecaster, {"period_s": -1.0}, "forecaster.period_s = -1.0"),
    (LSTMForecaster, {"window_ticks": 0}, "forecaster.window_ticks = 0"),
    (LSTMForecaster, {"layers": 0}, "forecaster.layers = 0"),
    (TCNForecaster, {"kernel_size": 1}, "forecaster.kernel_size = 1"),
    (TCNForecaster, {"learning_rate": 0.0}, "forecaster.learning_rate = 0.0"),
])
def test_bad_forecaster_config_names_the_field(cls, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        cls(**kwargs)


@pytest.mark.parametrize("name, cls", [
    ("sma", SMAForecaster), ("ewma", EWMAForecaster), ("seasonal_naive", SeasonalNaiveForecaster),
    ("lstm", LSTMForecaster), ("tcn", TCNForecaster),
])
def test_every_forecaster_config_builds(make_cfg, name, cls):
    assert type(build(make_cfg(f"forecaster={name}").forecaster, "forecaster")) is cls


# -- learned forecasters --------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NETS))
def test_net_beats_seasonal_naive_on_a_noisy_sinusoid(kind, trained, sinusoid):
    train, test = sinusoid
    naive = start(SeasonalNaiveForecaster(period_s=PERIOD * TICK_S), train)
    naive_mae = mean_abs_error(feed(naive, test, HORIZON), test)
    net_mae = mean_abs_error(feed(start(trained[kind], train), test, HORIZON), test)
    # Seasonal naive carries the noise of two cycles (sqrt(2) x noise); a net that
    # learned the shape averages it out. Measured: naive 1.17, nets ~0.88.
    assert net_mae < 0.85 * naive_mae, (net_mae, naive_mae)


@pytest.mark.parametrize("kind", sorted(NETS))
def test_training_is_deterministic(kind, sinusoid):
    train, test = sinusoid

    def forecasts(seed):
        return feed(start(make_net(kind, train_steps=40, seed=seed), train), test[:30], HORIZON)

    first = forecasts(0)
    assert np.array_equal(forecasts(0), first)
    assert not np.array_equal(forecasts(1), first)


@pytest.mark.parametrize("kind", sorted(NETS))
def test_save_then_load_predicts_identically(kind, trained, sinusoid, tmp_path):
    train, test = sinusoid
    path = tmp_path / f"{kind}.pt"
    trained[kind].save(path)
    meta = json.loads(Path(f"{path}.json").read_text())
    assert meta["kind"] == kind and meta["window_ticks"] == PERIOD and meta["tick_s"] == TICK_S
    assert meta["scale_rps"] == pytest.approx(train.mean(), rel=1e-12)
    # A loaded model is not retrained: warm_up only gives it its context.
    loaded = start(make_net(kind, model_path=str(path)), train[-PERIOD:])
    expected = feed(start(trained[kind], train), test[:30], HORIZON)
    assert np.array_equal(feed(loaded, test[:30], HORIZON), expected)


def test_a_model_file_is_used_through_the_config(make_cfg, trained, tmp_path):
    path = tmp_path / "tcn.pt"
    trained["tcn"].save(path)
    cfg = make_cfg("forecaster=tcn", f"forecaster.model_path={path}", f"forecaster.window_ticks={PERIOD}",
                   f"forecaster.horizon_ticks={HORIZON}", "forecaster.hidden=16", "forecaster.levels=4")
    forecaster = build(cfg.forecaster, "forecaster")
    assert isinstance(forecaster, TCNForecaster) and forecaster.net is not None
    with pytest.raises(ConfigError, match=r"forecaster.levels = 5: the model .*tcn.pt' was trained with levels = 4"):
        build(make_cfg("forecaster=tcn", f"forecaster.model_path={path}", f"forecaster.window_ticks={PERIOD}",
                             f"forecaster.horizon_ticks={HORIZON}", "forecaster.hidden=16").forecaster, "forecaster")


@pytest.fixture
def saved_lstm(trained, tmp_path) -> Path:
    path = tmp_path / "lstm.pt"
    trained["lstm"].save(path)
    return path


def test_truncated_weights_give_a_clear_error(saved_lstm):
    data = saved_lstm.read_bytes()
    saved_lstm.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=rf"forecaster.model_path = '{saved_lstm}': not a readable torch state_dict"):
        make_net("lstm", model_path=str(saved_lstm))


def test_bad_metadata_gives_a_clear_error(saved_lstm):
    meta_path = Path(f"{saved_lstm}.json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"lstm.pt.json is not valid JSON"):
        make_net("lstm", model_path=str(saved_lstm))
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "scale_rps"}))
    with pytest.raises(ConfigError, match=r"lacks key\(s\) \['scale_rps'\]"):
        make_net("lstm", model_path=str(saved_lstm))
    meta_path.unlink()
    with pytest.raises(ConfigError, match=r"its metadata file .*lstm.pt.json is missing"):
        make_net("lstm", model_path=str(saved_lstm))


def test_weights_that_do_not_fit_the_metadata_give_a_clear_error(saved_lstm):
    meta_path = Path(f"{saved_lstm}.json")
    meta = json.loads(meta_path.read_text())
    meta["architecture"]["hidden"] = 8
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"weights do not fit the architecture in its metadata.*size mismatch"):
        make_net("lstm", hidden=8, model_path=str(saved_lstm))


def test_wrong_kind_missing_file_and_other_ticks_give_clear_errors(saved_lstm, tmp_path):
    with pytest.raises(ConfigError, match=r"holds a 'lstm' model, not a 'tcn' one"):
        TCNForecaster(**{**SMALL, "model_path": str(saved_lstm)})
    with pytest.raises(ConfigError, match=r"forecaster.model_path = '.*nothing.pt': no such file"):
        make_net("lstm", model_path=str(tmp_path / "nothing.pt"))
    loaded = make_net("lstm", model_path=str(saved_lstm))
    with pytest.raises(ConfigError, match=r"trained for ticks of 60 s, but controller.tick_s = 10"):
        loaded.reset(10.0)


def test_net_without_model_or_with_short_horizon_or_history_says_so(trained):
    untrained = make_net("lstm")
    untrained.reset(TICK_S)
    with pytest.raises(ConfigError, match="no model; set forecaster.model_path or give it a warm-up history"):
        untrained.predict(1)
    with pytest.raises(ConfigError, match=r"forecaster.horizon_ticks = 5: 15 ticks ahead were asked for"):
        trained["lstm"].predict(15)
    with pytest.raises(ConfigError, match=r"the training history has 20 ticks; it needs more than .* = 29"):
        untrained.warm_up(np.full(20, 5.0))


def test_a_second_warm_up_on_the_same_history_reuses_the_model(trained, sinusoid):
    forecaster = trained["tcn"]
    net = forecaster.net
    start(forecaster, sinusoid[0])
    assert forecaster.net is net
    forecaster.reset(2 * TICK_S)  # other ticks: a model trained in the run must go
    assert forecaster.net is None


# -- warm-up history --------------------------------------------------------------------


def test_warmup_history_is_the_scenarios_regular_pattern_in_phase(make_cfg):
    cfg = make_cfg("scenario.workload.base_rate_rps=200", "scenario.workload.noise_cv=0", "seed=3",
                   "scenario.workload.trend_per_hour=0.5")
    scenario = cfg.scenario
    scenario.workload.spikes = [SpikeConfig(start_s=-600.0 + 86_400, duration_s=600.0, multiplier=5.0)]
    history = warmup_history(scenario, 600.0, 3, days=2)
    assert len(history) == 288
    # The ticks before t = 0 follow the diurnal cycle of the run (period one day),
    # without its trend or flash crowds: compare with the run's profile at t - 2 days.
    t = np.arange(288) * 600.0 + 300.0 - 2 * 86_400
    cycle = 200 * (1 + 0.6 * np.cos(2 * np.pi * (t - 50_400) / 86_400))
    assert np.abs(history / cycle - 1).max() < 0.03  # Poisson: ~1/sqrt(200*600) per tick
    assert np.array_equal(warmup_history(scenario, 600.0, 3, days=2), history)
    assert not np.array_equal(warmup_history(scenario, 600.0, 4, days=2), history)
    assert len(warmup_history(scenario, 600.0, 3, days=0)) == 0


def test_warmup_history_does_not_replay_the_runs_draws(make_cfg):
    cfg = make_cfg("scenario.duration_s=86400")
    history = warmup_history(cfg.scenario, TICK_S, 0, days=1)
    arrivals = build_workload(cfg.scenario, 0).arrival_s
    observed = np.bincount((arrivals // TICK_S).astype(int), minlength=1440)[:1440] / TICK_S
    # Same cycle (strongly correlated), different noise (the spike day aside).
    assert np.corrcoef(history, observed)[0, 1] > 0.8
    assert np.abs(history - observed).mean() > 0.3


def test_warmup_history_of_a_rate_trace_is_the_windows_before_the_start(make_cfg):
    scenario = make_cfg().scenario
    scenario.workload.trace = TraceConfig(path="servegen_m-large_aggregate_rate.csv", format="rates",
                                          start_s=86_400.0)
    trace = load_rate_trace(resolve_trace_path("servegen_m-large_aggregate_rate.csv"))
    history = warmup_history(scenario, 600.0, 0, days=3)  # only one day exists before the start
    assert len(history) == 144
    assert np.abs(history / trace.rate_rps[:144] - 1).max() < 0.05
    scenario.workload.trace.start_s = 0.0
    assert len(warmup_history(scenario, 600.0, 0, days=1, trace_warmup="preceding")) == 0


def test_a_trace_with_nothing_before_its_start_warms_up_on_repeats_of_the_replayed_span(make_cfg):
    scenario = make_cfg("scenario=azure_conv").scenario  # one hour, from the trace's start
    history = warmup_history(scenario, TICK_S, 0, days=1)
    assert len(history) == 1440
    times = load_request_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv")).time_s
    period = int(np.floor(times.max() / TICK_S))  # whole ticks replayed (58: the trace ends at 3502 s)
    span = np.bincount((times // TICK_S).astype(int))[:period]
    # the last repeat ends at t = 0 with the span's last tick
    assert np.allclose(history[-period:] * TICK_S, span)
    assert np.array_equal(history[-2 * period:-period], history[-period:])
    assert warmup_history(scenario, TICK_S, 0, days=1, trace_warmup="repeat").tolist() == history.tolist()
    # with some history before the start, auto keeps to it (real observations only)
    scenario.workload.trace.start_s = 1200.0
    assert len(warmup_history(scenario, TICK_S, 0, days=1)) == 20
    assert len(warmup_history(scenario, TICK_S, 0, days=1, trace_warmup="repeat")) == 1440


def test_a_client_trace_with_nothing_before_its_start_warms_up_on_its_aggregate_rate(make_cfg):
    # servegen_reason replays a clients trace from its start: the repeats are of the summed client rates
    scenario = make_cfg("scenario=servegen_reason").scenario
    trace = load_client_trace(resolve_trace_path(scenario.workload.trace.path)).aggregate()
    history = warmup_history(scenario, 600.0, 0, days=1)
    assert len(history) == 144
    c = scenario.workload.trace
    # the replayed windows, at the run's rate: scaled, and compressed in time (so that much faster)
    replayed = trace.rate_rps[: int(scenario.duration_s * c.time_compression // trace.window_s)]
    expected = replayed * c.rate_scale * c.time_compression
    # 144 ticks of Poisson counts of 600 s at ~12 req/s: the mean within 5 %
    assert history.mean() == pytest.approx(expected.mean(), rel=0.05)


def test_a_neural_forecaster_runs_on_a_short_trace_and_the_error_says_what_to_set(make_cfg):
    from elastic_des.app import run

    summary = run(make_cfg("scenario=azure_conv", "policy=predictive", "forecaster=lstm", "baseline.enabled=false",
                           "scenario.duration_s=1200", "forecaster.train_steps=20"))
    assert summary["requests/total"] > 0
    with pytest.raises(ConfigError, match="set controller.warmup_days .* controller.trace_warmup=repeat"):
        run(make_cfg("scenario=azure_conv", "policy=predictive", "forecaster=lstm", "baseline.enabled=false",
                     "scenario.duration_s=1200", "controller.trace_warmup=preceding"))


def test_warmup_history_of_a_timestamp_trace_counts_the_requests_before_the_start(make_cfg):
    scenario = make_cfg().scenario
    scenario.workload.trace = TraceConfig(path="AzureLLMInferenceTrace_conv.csv", format="timestamps",
                                          start_s=1200.0)
    history = warmup_history(scenario, TICK_S, 0, days=1)
    assert len(history) == 20
    times = load_request_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv")).time_s
    assert history[0] * TICK_S == np.count_nonzero(times < 60.0)
    assert history.sum() * TICK_S == np.count_nonzero(times < 1200.0)
