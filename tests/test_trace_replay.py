"""Replay of the traces shipped with the package.

* Azure LLM inference 2023 (code), a timestamp trace: at ``rate_scale = 1``
  every request of the trace that falls inside the scenario arrives once, at
  its own time, with its own token counts.
* ServeGen (m-large), a rate trace: arrivals are a Poisson process whose
  rate follows the trace, played ``time_compression`` times faster and scaled
  by ``rate_scale``; counts are checked against the Poisson expectation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from elastic_des.app import run
from elastic_des.engine.traces import PACKAGED_TRACES
from elastic_des.engine.workload import build_workload
from scenario_yaml import scenario_overrides

AZURE = "AzureLLMInferenceTrace_code.csv"
SERVEGEN = "servegen_m-large_aggregate_rate.csv"


def azure_rows() -> pd.DataFrame:
    """The trace read independently of elastic_des: seconds since the first request."""
    frame = pd.read_csv(PACKAGED_TRACES / AZURE)
    stamps = pd.to_datetime(frame["TIMESTAMP"], format="ISO8601")
    return frame.assign(time_s=(stamps - stamps.min()).dt.total_seconds()).sort_values("time_s", kind="stable")


@pytest.mark.parametrize("duration_s", [900.0, 1800.0])
def test_azure_trace_replays_every_request_once(make_cfg, tmp_path, duration_s):
    trace = {"path": AZURE, "format": "timestamps", "rate_scale": 1.0}
    overrides = scenario_overrides(tmp_path, "azure", {"workload": {"trace": trace}})
    cfg = make_cfg(*overrides, f"scenario.duration_s={duration_s}", "baseline.enabled=false", "output.report=false")
    summary = run(cfg, tmp_path / "out")
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    rows = azure_rows()
    inside = rows[rows["time_s"] < duration_s]
    assert 0 < len(inside) < len(rows), "the duration must cut the trace"
    assert summary["requests/total"] == len(inside) == len(requests)
    np.testing.assert_allclose(requests["arrival_s"], inside["time_s"], rtol=0, atol=1e-6)
    # Token counts are the trace's, at least one token each.
    np.testing.assert_array_equal(requests["prompt_tokens"], np.maximum(1, inside["ContextTokens"]))
    np.testing.assert_array_equal(requests["output_tokens"], np.maximum(1, inside["GeneratedTokens"]))


def test_azure_trace_rate_scale_multiplies_the_count(make_cfg, tmp_path):
    # rate_scale 2.5: each request twice, plus once more with probability 1/2.
    trace = {"path": AZURE, "format": "timestamps", "rate_scale": 2.5}
    cfg = make_cfg(*scenario_overrides(tmp_path, "azure", {"workload": {"trace": trace}}), "scenario.duration_s=3600")
    workload = build_workload(cfg.scenario, cfg.seed)
    rows = len(azure_rows())  # the whole trace is inside an hour
    # Binomial(rows, 1/2) extra copies: within 4 standard deviations.
    assert abs(len(workload) - 2.5 * rows) < 4 * np.sqrt(rows * 0.25)
    assert np.all(np.diff(workload.arrival_s) >= 0)


@pytest.mark.parametrize("compression, scale", [(24.0, 0.01), (6.0, 0.05)])
def test_servegen_rates_with_time_compression(make_cfg, tmp_path, compression, scale):
    trace = {"path": SERVEGEN, "format": "rates", "time_compression": compression, "rate_scale": scale}
    cfg = make_cfg(*scenario_overrides(tmp_path, "servegen", {"workload": {"trace": trace}}), "scenario.duration_s=3600")
    workload = build_workload(cfg.scenario, cfg.seed)

    rates = pd.read_csv(PACKAGED_TRACES / SERVEGEN)["total_rate_rps"].to_numpy()
    window_s = 600.0 / compression  # each trace window lasts this long once compressed
    covered = rates[: int(round(3600 / window_s))]
    expected_rate = covered.mean() * compression * scale
    count = len(workload)
    mean = expected_rate * 3600
    # Poisson: the count's standard deviation is sqrt(mean).
    assert abs(count - mean) < 4 * np.sqrt(mean), f"{count} arrivals, expected {mean:.0f}"
    assert count / 3600 == pytest.approx(expected_rate, rel=0.02)

    # The shape follows the trace: per compressed window, counts fit their
    # Poisson means (chi-square goodness of fit).
    observed = np.bincount((workload.arrival_s // window_s).astype(int), minlength=len(covered))
    means = covered * compression * scale * window_s
    chi2 = float(np.sum((observed - means) ** 2 / means))
    assert stats.chi2.sf(chi2, len(covered)) > 1e-3, f"chi2 = {chi2:.1f} over {len(covered)} windows"
