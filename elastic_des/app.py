"""The Hydra application: compose a config, run it, write its outputs.

``run(cfg, output_dir)`` is pure: everything it does follows from the config
and seed, it touches no global state, and it returns the summary dict.
``main`` is the thin Hydra entry point used by ``run.py`` and the
``elastic-des`` console script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import hydra
import pandas as pd
from omegaconf import DictConfig

import elastic_des.config  # noqa: F401  (registers the schemas)
from elastic_des.agent.training import train
from elastic_des.analysis.counterfactual import explain
from elastic_des.analysis.report import write_report
from elastic_des.objective import objective_value
from elastic_des.atomic import write_json, write_jsonl, write_parquet
from elastic_des.engine.simulation import WorldResult, simulate_world
from elastic_des.engine.workload import build_workload
from elastic_des.errors import ConfigError
from elastic_des.factory import build
from elastic_des.forecasters.simple import EWMAForecaster
from elastic_des.policies.static import StaticPolicy
from elastic_des.progress import Progress
from elastic_des.validate import validate

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def run_name(cfg: DictConfig, policy_name: str) -> str:
    return f"{cfg.scenario.name}__{policy_name}__{cfg.seed}"


def savings(candidate: dict, baseline: dict) -> dict:
    """How the policy's world compares with the static baseline."""
    base_cost, cost = baseline["cost/usd"], candidate["cost/usd"]
    return {
        "savings/cost_usd": base_cost - cost,
        "savings/cost_fraction": 1.0 - cost / base_cost if base_cost > 0 else float("nan"),
        "savings/sla_delta": candidate["sla/compliance"] - baseline["sla/compliance"],
    }


def _labelled(result: WorldResult, role: str, label: str, frame: str) -> pd.DataFrame:
    table = getattr(result, frame)
    return table.assign(role=role, world=label)


def simulate(cfg: DictConfig, output_dir: Optional[Path]) -> dict:
    """Simulate the policy's world and, if enabled, the static baseline world
    on the same arrivals; write both worlds' tables and the summary."""
    workload = build_workload(cfg.scenario, cfg.seed)
    policy = build(cfg.policy, "policy")
    forecaster = build(cfg.forecaster, "forecaster")
    name = run_name(cfg, policy.name)
    worlds = [("candidate", cfg.world, policy, forecaster)]
    if cfg.baseline.enabled:
        # A last-value forecaster: the static policy never reads forecasts.
        worlds.append(("baseline", cfg.baseline.world, StaticPolicy(cfg.baseline.replicas, field="baseline.replicas"), EWMAForecaster(alpha=1.0)))
    results: dict[str, WorldResult] = {}
    labels: dict[str, str] = {}
    for role, world, world_policy, world_forecaster in worlds:
        labels[role] = f"{world.name}/{world_policy.name}"
        field = "world" if role == "candidate" else "baseline.world"
        with Progress(cfg.scenario.duration_s, f"{name} [{labels[role]}]", "sim-s", cfg.output.progress) as progress:
            results[role] = simulate_world(
                world, cfg.scenario, cfg.controller, world_policy, world_forecaster, workload, cfg.seed,
                progress.advance_to if progress.active else None,
                field=field,
            )
    summary = {
        "run/name": name,
        "run/scenario": cfg.scenario.name,
        "run/policy": policy.name,
        "run/world": labels["candidate"],
        "run/seed": cfg.seed,
        **results["candidate"].summary,
    }
    if "baseline" in results:
        summary["run/baseline"] = labels["baseline"]
        summary.update({f"baseline/{k}": v for k, v in results["baseline"].summary.items()})
        summary.update(savings(results["candidate"].summary, results["baseline"].summary))
    if output_dir is not None:
        write_parquet(output_dir / "ticks.parquet",
                      pd.concat([_labelled(r, role, labels[role], "ticks") for role, r in results.items()]))
        if cfg.output.requests:
            write_parquet(output_dir / "requests.parquet",
                          pd.concat([_labelled(r, role, labels[role], "requests") for role, r in results.items()]))
        write_jsonl(output_dir / "decisions.jsonl",
                    ({"world": labels["candidate"], **d} for d in results["candidate"].decisions))
        write_json(output_dir / "summary.json", summary)
        if cfg.output.report:
            write_report(output_dir, cfg)
    return summary


TASKS = {"simulate": simulate, "train": train, "explain": explain}


def run(cfg: DictConfig, output_dir: Optional[Path] = None) -> dict:
    """Validate ``cfg``, run ``cfg.task`` and return its summary; write outputs to ``output_dir``."""
    validate(cfg, tuple(TASKS))
    return TASKS[cfg.task](cfg, Path(output_dir) if output_dir is not None else None)


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_summary(summary: dict) -> str:
    """The summary as a table: one row per metric, the policy's world beside the baseline."""
    if "run/name" not in summary:  # a task other than simulate: plain key, value lines
        width = max(map(len, summary), default=0)
        return "\n".join(f"{k:<{width}}  {_shown(v)}" for k, v in summary.items())
    keys = [k for k in summary if not k.startswith(("baseline/", "savings/", "run/"))]
    rows = [(k, _shown(summary[k]), _shown(summary.get(f"baseline/{k}", ""))) for k in keys]
    rows += [(k, _shown(v), "") for k, v in summary.items() if k.startswith("savings/")]
    header = ("metric", summary.get("run/world", "candidate"), summary.get("run/baseline", ""))
    width = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [f"{summary['run/name']}", "  ".join(h.ljust(w) for h, w in zip(header, width))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, width)).rstrip() for row in rows]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> Union[float, list[float], None]:
    """Run ``cfg``, print its summary and return ``cfg.objective``'s value
    to a sweeper (:func:`elastic_des.analysis.tuning.objective_value`)."""
    from hydra.core.hydra_config import HydraConfig

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = run(cfg, output_dir)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(format_summary(summary))
    print(f"outputs: {output_dir}")
    return objective_value(summary, cfg.objective, cfg.scenario.slo.target_compliance)
