"""The 2×2 ablation: where the saving comes from.

The headline comparison (a static fleet of the large model against an
elastic fleet of the small one) changes two things at once. The ablation
runs all four combinations on the same arrivals::

                     static (sized for peak)    elastic (q_learning)
    LLM              the baseline               elasticity alone
    SLM              the smaller model alone    both

``python run.py experiment=ablation`` runs them (one Hydra job each; see
``conf/experiment/ablation.yaml``) and ``python -m elastic_des.analysis.ablation
<sweep folder>`` reads each job's ``summary.json`` and prints the table,
with the saving split into the part due to the smaller model (static LLM →
static SLM) and the part due to elasticity on top of it (static SLM →
elastic SLM). The two parts add up to the total by construction. With
several seeds (``seed=0,1,2``) each seed's cells are compared with that
seed's static LLM cell (the same arrivals), and the split is given as the
mean over seeds with its 95 % Student-t half-width.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from elastic_des.analysis.sweep import ci95, job_folders
from elastic_des.atomic import write_text
from elastic_des.errors import ConfigError
from elastic_des.runfolder import incomplete_reason

MODELS = ("llm", "slm")
FLEETS = ("static", "elastic")


def ablation_table(summaries: Iterable[dict]) -> pd.DataFrame:
    """One row per (seed, model, fleet) cell from the jobs' summaries, with
    costs and savings relative to the same seed's static LLM cell. A
    summary's world is the first part of ``run/world`` (``slm/q_learning`` →
    ``slm``); its fleet is static if ``run/policy`` is ``static``, else
    elastic; its seed is ``run/seed``."""
    cells: dict[tuple[int, str, str], dict] = {}
    for summary in summaries:
        model = str(summary["run/world"]).split("/")[0]
        fleet = "static" if summary["run/policy"] == "static" else "elastic"
        seed = int(summary["run/seed"])
        if model not in MODELS:
            raise ConfigError(f"run/world = {summary['run/world']!r}: the ablation compares worlds {list(MODELS)}")
        if (seed, model, fleet) in cells:
            raise ConfigError(f"two summaries for the {model}/{fleet} cell of seed {seed} "
                              f"({cells[seed, model, fleet]['run/name']} and {summary['run/name']})")
        cells[seed, model, fleet] = summary
    seeds = sorted({seed for seed, _, _ in cells})
    missing = [f"{m}/{f}" + (f" (seed {seed})" if len(seeds) > 1 else "")
               for seed in seeds for m in MODELS for f in FLEETS if (seed, m, f) not in cells]
    if missing or not seeds:
        raise ConfigError(f"ablation: no summary for cell(s) {missing or [f'{m}/{f}' for m in MODELS for f in FLEETS]}")
    rows = []
    for seed in seeds:
        base = cells[seed, "llm", "static"]["cost/usd"]
        for model in MODELS:
            for fleet in FLEETS:
                s = cells[seed, model, fleet]
                rows.append({
                    "seed": seed,
                    "model": model,
                    "fleet": fleet,
                    "policy": s["run/policy"],
                    "cost_usd": s["cost/usd"],
                    "saving_usd": base - s["cost/usd"],
                    "saving_fraction": 1.0 - s["cost/usd"] / base,
                    "sla_compliance": s["sla/compliance"],
                    "sla_met": s["sla/met"],
                    "latency_p99_s": s["latency/p99_s"],
                    "replicas_mean": s["replicas/mean"],
                })
    return pd.DataFrame(rows)


def decompose(table: pd.DataFrame) -> dict[str, float]:
    """The total saving (static LLM → elastic SLM) as model + elasticity: the
    mean over the table's seeds, and with several seeds ``<key>.ci95``, the
    95 % Student-t half-width."""
    cost = table.set_index(["seed", "model", "fleet"])["cost_usd"].unstack(["model", "fleet"])
    parts = {
        "saving/total_usd": cost["llm", "static"] - cost["slm", "elastic"],
        "saving/smaller_model_usd": cost["llm", "static"] - cost["slm", "static"],
        "saving/elasticity_on_slm_usd": cost["slm", "static"] - cost["slm", "elastic"],
        "saving/elasticity_on_llm_usd": cost["llm", "static"] - cost["llm", "elastic"],
    }
    out = {}
    for key, per_seed in parts.items():
        out[key] = float(per_seed.mean())
        if len(per_seed) > 1:
            out[f"{key}.ci95"] = ci95(per_seed.to_numpy())
    return out


def read_sweep(folder: Path) -> list[dict]:
    """The ``summary.json`` of every complete job folder directly under ``folder``
    (failed or unfinished jobs are left out, as in the sweep aggregate)."""
    paths = [job / "summary.json" for job in job_folders(Path(folder))
             if incomplete_reason(job) is None and (job / "summary.json").is_file()]
    if not paths:
        raise ConfigError(f"sweep folder {folder}: no complete job with a summary.json "
                          "(is this a finished `experiment=ablation` run?)")
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The 2x2 {static, elastic} x {LLM, SLM} table of an ablation sweep.")
    parser.add_argument("sweep", type=Path, help="the sweep folder (outputs/sweeps/<time>)")
    args = parser.parse_args(argv)
    try:
        table = ablation_table(read_sweep(args.sweep))
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    write_text(args.sweep / "ablation.csv", table.to_csv(index=False))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    parts = decompose(table)
    for key in (k for k in parts if not k.endswith(".ci95")):
        half = f" ± {parts[key + '.ci95']:.2f}" if key + ".ci95" in parts else ""
        print(f"{key:<32}{parts[key]:12.2f}{half}")
    print(f"table: {args.sweep / 'ablation.csv'}")


if __name__ == "__main__":
    main()
