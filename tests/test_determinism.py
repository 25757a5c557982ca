"""Same config and seed, same results, bit for bit; and no global random state.

Every random number comes from a named stream of the run seed
(``elastic_des.rng.stream``), so a run is a pure function of its config.
Wall-clock measurements live in ``timing.json``, the one file allowed to
differ between two runs: ``summary.json``, ``ticks.parquet``,
``requests.parquet`` and ``decisions.jsonl`` are byte-identical.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elastic_des.app import run
from scenario_yaml import scenario_overrides

TABLES = ("ticks.parquet", "requests.parquet")
# Half an hour of the default scenario (diurnal cycle, noise), the threshold
# policy and the static baseline world: every random stream of a run is used.
# (The HTML report is left out: it is not a simulation result, and slow.)
SHORT = ("scenario.duration_s=1800", "output.report=false")


def summary_bytes(folder: Path) -> bytes:
    return (folder / "summary.json").read_bytes()


def run_twice(make_cfg, tmp_path: Path, *overrides: str) -> tuple[Path, Path]:
    folders = tmp_path / "a", tmp_path / "b"
    for folder in folders:
        run(make_cfg(*SHORT, *overrides), folder)
    return folders


def test_same_seed_gives_identical_outputs(make_cfg, tmp_path):
    a, b = run_twice(make_cfg, tmp_path, "seed=7")
    assert summary_bytes(a) == summary_bytes(b)
    for name in TABLES:
        frame_a, frame_b = pd.read_parquet(a / name), pd.read_parquet(b / name)
        assert len(frame_a) > 0
        pd.testing.assert_frame_equal(frame_a, frame_b, check_exact=True)
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs byte-wise"
    assert (a / "decisions.jsonl").read_bytes() == (b / "decisions.jsonl").read_bytes()
    # the wall-clock figures are in timing.json, not in the summary
    assert not any("wall" in key for key in json.loads(summary_bytes(a)))
    timing = json.loads((a / "timing.json").read_text())
    assert set(timing) == {"candidate", "baseline"} and all(t["wall_s"] > 0 for t in timing.values())
    # the setup before the first event is a part of the world's wall time
    assert all(0 < t["setup_s"] < t["wall_s"] for t in timing.values())


def test_same_seed_identical_on_a_trace_replay(make_cfg, tmp_path):
    # A fractional rate_scale draws from the trace-scaling stream as well.
    trace = {"path": "AzureLLMInferenceTrace_code.csv", "format": "timestamps", "rate_scale": 1.5}
    scenario = scenario_overrides(tmp_path, "replay", {"duration_s": 600, "workload": {"trace": trace}})
    a, b = run_twice(make_cfg, tmp_path, *scenario)
    assert summary_bytes(a) == summary_bytes(b)
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name), check_exact=True)


def test_different_seed_gives_different_results(make_cfg, tmp_path):
    run(make_cfg(*SHORT, "seed=1"), tmp_path / "s1")
    run(make_cfg(*SHORT, "seed=2"), tmp_path / "s2")
    one, two = (pd.read_parquet(tmp_path / s / "requests.parquet") for s in ("s1", "s2"))
    assert len(one) != len(two) or not np.array_equal(one["arrival_s"], two["arrival_s"])
    assert not np.array_equal(one["prompt_tokens"][:100], two["prompt_tokens"][:100])
    assert summary_bytes(tmp_path / "s1") != summary_bytes(tmp_path / "s2")


def test_run_touches_no_global_random_state(make_cfg):
    torch = pytest.importorskip("torch")
    numpy_state, python_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    run(make_cfg(*SHORT))
    after = np.random.get_state()
    assert numpy_state[0] == after[0] and np.array_equal(numpy_state[1], after[1]) and numpy_state[2:] == after[2:]
    assert random.getstate() == python_state
    assert torch.equal(torch.get_rng_state(), torch_state)
