"""The 2x2 ablation: the table builder, and the Hydra sweep that feeds it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from elastic_des.analysis.ablation import ablation_table, decompose, read_sweep
from elastic_des.app import CONF_DIR
from elastic_des.errors import ConfigError


def summary(world: str, policy: str, cost: float, sla: float = 0.995, seed: int = 0) -> dict:
    return {"run/name": f"default__{policy}__{seed}", "run/world": f"{world}/{policy}", "run/policy": policy,
            "run/seed": seed,
            "cost/usd": cost, "sla/compliance": sla, "sla/met": sla >= 0.99, "latency/p99_s": 12.0,
            "replicas/mean": 3.0}


FOUR = [summary("llm", "static", 2400.0), summary("llm", "q_learning", 1500.0),
        summary("slm", "static", 240.0), summary("slm", "q_learning", 150.0, 0.999)]


def test_table_and_decomposition_from_four_summaries():
    table = ablation_table(reversed(FOUR))
    assert list(zip(table["model"], table["fleet"])) == [("llm", "static"), ("llm", "elastic"),
                                                          ("slm", "static"), ("slm", "elastic")]
    assert table["saving_usd"].tolist() == [0.0, 900.0, 2160.0, 2250.0]
    assert table["saving_fraction"].tolist() == pytest.approx([0.0, 0.375, 0.9, 0.9375])
    parts = decompose(table)
    assert parts == {"saving/total_usd": 2250.0, "saving/smaller_model_usd": 2160.0,
                     "saving/elasticity_on_slm_usd": 90.0, "saving/elasticity_on_llm_usd": 900.0}
    assert parts["saving/smaller_model_usd"] + parts["saving/elasticity_on_slm_usd"] == parts["saving/total_usd"]


def test_missing_or_duplicate_cells_are_config_errors():
    with pytest.raises(ConfigError, match=r"no summary for cell\(s\) \['slm/elastic'\]"):
        ablation_table(FOUR[:3])
    with pytest.raises(ConfigError, match="two summaries for the llm/static cell of seed 0"):
        ablation_table(FOUR + [summary("llm", "static", 2400.0)])
    with pytest.raises(ConfigError, match=r"no summary for cell\(s\) \['llm/elastic \(seed 1\)'\]"):
        ablation_table(FOUR + [summary("llm", "static", 2400.0, seed=1), summary("slm", "static", 240.0, seed=1),
                               summary("slm", "q_learning", 150.0, seed=1)])


def test_several_seeds_compare_each_seed_with_its_own_static_llm_and_average_the_split():
    second = [summary("llm", "static", 2500.0, seed=1), summary("llm", "q_learning", 1500.0, seed=1),
              summary("slm", "static", 250.0, seed=1), summary("slm", "q_learning", 170.0, seed=1)]
    table = ablation_table(second + FOUR)
    assert table["seed"].tolist() == [0] * 4 + [1] * 4
    assert table["saving_usd"].tolist() == [0.0, 900.0, 2160.0, 2250.0, 0.0, 1000.0, 2250.0, 2330.0]
    parts = decompose(table)
    assert parts["saving/total_usd"] == 2290.0
    assert parts["saving/smaller_model_usd"] + parts["saving/elasticity_on_slm_usd"] == parts["saving/total_usd"]
    # Two seeds: t(0.975, 1) x sample sd / sqrt(2); totals 2250 and 2330 -> sd 56.57.
    assert parts["saving/total_usd.ci95"] == pytest.approx(12.706 * 56.5685 / 2 ** 0.5, rel=1e-3)
    assert "saving/total_usd.ci95" not in decompose(ablation_table(FOUR))


def test_ablation_sweep_runs_the_four_cells(tmp_path):
    sweep = tmp_path / "sweep"
    subprocess.run(
        [sys.executable, "run.py", "experiment=ablation", "scenario.duration_s=900", "output.progress=false",
         "output.requests=false", f"hydra.sweep.dir={sweep}"],
        cwd=CONF_DIR.parent, check=True, capture_output=True, text=True, env={**os.environ, "CI": "1"},
    )
    summaries = read_sweep(sweep)
    assert len({s["requests/total"] for s in summaries}) == 1  # the same arrivals in every cell
    assert all("baseline/cost/usd" not in s for s in summaries)
    table = ablation_table(summaries)
    assert len(table) == 4
    static = table[table["fleet"] == "static"].set_index("model")
    assert static.loc["llm", "cost_usd"] > static.loc["slm", "cost_usd"] > 0
