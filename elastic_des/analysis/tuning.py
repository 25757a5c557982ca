"""Tuning a policy's knobs with Hydra's Optuna sweeper.

``python run.py -m experiment=tune_threshold`` (see ``conf/experiment/tune_*``)
runs an Optuna study: each trial is one simulate job whose ``main`` returns
:func:`elastic_des.objective.objective_value` for ``cfg.objective``:

* ``penalized_cost`` (single objective, minimised, the tuning experiments'
  default): ``cost/usd × (1 + sla_penalty × shortfall)`` with
  ``shortfall = max(0, target − compliance) / (1 − target)``, the SLA
  shortfall in units of the scenario's miss budget. A configuration that
  meets the SLA target is judged by its cost alone; one that misses it pays
  in proportion to how far, relative to what the target allows, so the
  optimum is the cheapest configuration that meets the target (when one
  exists in the search space).
* ``cost_and_sla`` (two objectives: cost minimised, compliance maximised):
  the study's Pareto front.
* ``sla``: compliance alone (what ``main`` returned before tuning existed).

When the study ends, :class:`WriteTunedConfig` (a Hydra callback the
experiments register) turns Optuna's ``optimization_results.yaml`` into a
policy config, ``<config_dir>/policy/<policy>_tuned_<scenario>.yaml``, that
extends the policy's own config with the best values, so that
``python run.py policy=threshold_tuned_default`` (or a comparison sweep
``policy=threshold_tuned_default,hpa_tuned_default,q_learning``) runs it.
For two objectives the written configuration is the cheapest Pareto
solution that meets the SLA target, or, if none does, the one with the
highest compliance. A copy lands in the sweep folder as
``tuned_policy.yaml``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from elastic_des.atomic import write_text
from elastic_des.errors import ConfigError, require

log = logging.getLogger(__name__)

def best_solution(results: dict, target: float) -> tuple[dict, list[float]]:
    """The parameters (and objective values) to write from an
    ``optimization_results.yaml``: the best trial of a single objective; of
    a (cost, compliance) Pareto front, the cheapest solution meeting
    ``target``, else the most compliant."""
    if "best_params" in results:
        return dict(results["best_params"]), [float(results["best_value"])]
    solutions = list(results.get("solutions") or [])
    if not solutions:
        raise ConfigError("optimization_results.yaml holds neither best_params nor solutions")
    meeting = [s for s in solutions if s["values"][1] >= target]
    chosen = min(meeting, key=lambda s: s["values"][0]) if meeting else max(solutions, key=lambda s: s["values"][1])
    return dict(chosen["params"]), [float(v) for v in chosen["values"]]


def tuned_config_path(config_dir: Path, policy: str, scenario: str) -> Path:
    """Where a study of ``policy`` on ``scenario`` writes its best config
    (``policy=<policy>_tuned_<scenario>`` when ``config_dir`` is on the search path)."""
    return Path(config_dir) / "policy" / f"{policy}_tuned_{scenario}.yaml"


def tuned_config_text(policy: str, scenario: str, params: dict, values: list[float], objective: Any,
                      sweep_dir: Path, overrides: list[str]) -> str:
    """A policy YAML extending ``policy`` with the tuned ``policy.*`` values;
    its comments say how it was tuned (``overrides``: the sweep's command line)."""
    knobs = {k.split(".", 1)[1]: v for k, v in sorted(params.items()) if k.startswith("policy.")}
    require(bool(knobs), "hydra.sweeper.params", sorted(params), "tunes no policy.* parameter: nothing to write")
    others = sorted(k for k in params if not k.startswith("policy."))
    lines = [f"# {policy} tuned on scenario {scenario} by Optuna (objective {objective.kind},",
             f"# sla_penalty {objective.sla_penalty}; objective value(s) {', '.join(f'{v:.6g}' for v in values)}).",
             f"# Written by elastic_des.analysis.tuning from {sweep_dir}.",
             f"# Study overrides: {' '.join(overrides) or '(none)'}",
             f"# Run it with: python run.py policy={policy}_tuned_{scenario}"]
    if others:
        lines.append(f"# The study also tuned {', '.join(f'{k}={params[k]}' for k in others)}: not part of this file.")
    body = yaml.safe_dump({"defaults": [policy, "_self_"], **knobs}, sort_keys=False)
    return "\n".join(lines) + "\n" + body


class WriteTunedConfig(Callback):
    """Write the study's best policy config when an Optuna sweep ends.

    config_dir: the config folder that receives ``policy/<name>.yaml``;
    null: the application's ``conf/`` (so ``policy=<name>`` works at once).
    Another folder is reached with ``hydra.searchpath=[file://<folder>]``.
    """

    def __init__(self, config_dir: Optional[str] = None):
        self.config_dir = Path(config_dir) if config_dir else None

    @staticmethod
    def app_config_dir(config: DictConfig) -> Path:
        """The folder of the application's primary config (``conf/``)."""
        main = [s for s in config.hydra.runtime.config_sources if s.provider == "main" and s.schema == "file"]
        if not main:
            raise ConfigError("hydra.runtime.config_sources: no file config folder of the application; "
                              "set the callback's config_dir")
        return Path(main[0].path)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        results_path = sweep_dir / "optimization_results.yaml"
        if not results_path.is_file():
            log.warning("no %s: not an Optuna sweep, or it failed; no tuned config written", results_path)
            return
        results = OmegaConf.to_container(OmegaConf.load(results_path))
        target = float(config.scenario.slo.target_compliance)
        params, values = best_solution(results, target)
        policy = config.hydra.runtime.choices.policy.split("_tuned_")[0]  # re-tuning extends the original
        scenario = config.scenario.name
        text = tuned_config_text(policy, scenario, params, values, config.objective, sweep_dir,
                                 list(config.hydra.overrides.task))
        path = tuned_config_path(self.config_dir or self.app_config_dir(config), policy, scenario)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
        write_text(sweep_dir / "tuned_policy.yaml", text)
        log.info("tuning: best %s written to %s (policy=%s_tuned_%s)", params, path, policy, scenario)
