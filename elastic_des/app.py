"""The Hydra application: compose a config, run it, write its outputs.

``run(cfg, output_dir)`` is pure: everything it does follows from the config
and seed, it touches no global state, and it returns the summary dict.
``main`` is the thin Hydra entry point used by ``run.py`` and the
``elastic-des`` console script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import hydra
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

import elastic_des.config  # noqa: F401  (registers the schemas)
import elastic_des.forecasters  # noqa: F401
import elastic_des.policies  # noqa: F401
from elastic_des.atomic import write_json, write_jsonl, write_parquet
from elastic_des.errors import ConfigError, require
from elastic_des.progress import SimTimeBar
from elastic_des.simulation import WorldResult, simulate_world
from elastic_des.workload import build_workload

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
TASKS = ("simulate",)


def build(node: Any, field: str) -> Any:
    """Instantiate a ``_target_`` config node, naming ``field`` on failure."""
    try:
        return instantiate(node)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(f"{field}: cannot build {node.get('_target_')!r}: {cause or exc}") from exc


def run_name(cfg: DictConfig, policy_name: str) -> str:
    return f"{cfg.scenario.name}__{policy_name}__{cfg.seed}"


def write_world(result: WorldResult, folder: Path, requests: bool) -> None:
    """The tables of one world: ticks, decisions and (optionally) requests."""
    write_parquet(folder / "ticks.parquet", result.ticks)
    write_jsonl(folder / "decisions.jsonl", result.decisions)
    if requests:
        write_parquet(folder / "requests.parquet", result.requests)


def simulate(cfg: DictConfig, output_dir: Optional[Path]) -> dict:
    require(cfg.seed >= 0, "seed", cfg.seed, "must be >= 0")
    workload = build_workload(cfg.scenario, cfg.seed)
    policy = build(cfg.policy, "policy")
    forecaster = build(cfg.forecaster, "forecaster")
    name = run_name(cfg, policy.name)
    with SimTimeBar(cfg.scenario.duration_s, name, cfg.output.progress) as on_tick:
        result = simulate_world(cfg.world, cfg.scenario, cfg.controller, policy, forecaster, workload, cfg.seed, on_tick)
    summary = {
        "run/name": name,
        "run/scenario": cfg.scenario.name,
        "run/policy": policy.name,
        "run/world": cfg.world.name,
        "run/seed": cfg.seed,
        **result.summary,
    }
    if output_dir is not None:
        write_world(result, output_dir, cfg.output.requests)
        write_json(output_dir / "summary.json", summary)
    return summary


def run(cfg: DictConfig, output_dir: Optional[Path] = None) -> dict:
    """Run ``cfg.task`` and return its summary; write outputs to ``output_dir``."""
    require(cfg.task in TASKS, "task", cfg.task, f"must be one of {', '.join(TASKS)}")
    return simulate(cfg, Path(output_dir) if output_dir is not None else None)


def format_summary(summary: dict) -> str:
    """The summary as aligned ``key  value`` lines."""
    width = max(map(len, summary))
    lines = []
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> Optional[float]:
    from hydra.core.hydra_config import HydraConfig

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = run(cfg, output_dir)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(format_summary(summary))
    print(f"outputs: {output_dir}")
    return summary.get("sla/compliance")
