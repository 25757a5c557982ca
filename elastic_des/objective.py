"""What a run returns to a Hydra sweeper: the objective of a tuning study.

``main`` returns :func:`objective_value` of the run's summary for
``cfg.objective`` (:class:`ObjectiveConfig`); the Optuna sweeper minimises
or maximises it (see :mod:`elastic_des.analysis.tuning`), other sweepers
ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from elastic_des.errors import require


@dataclass
class ObjectiveConfig:
    """What ``main`` returns to a Hydra sweeper (the Optuna sweeper minimises
    or maximises it; other sweepers ignore it). See
    :mod:`elastic_des.analysis.tuning`.

    kind: ``sla`` (``sla/compliance``; maximise), ``penalized_cost``
    (``cost/usd × (1 + sla_penalty × shortfall)``, where ``shortfall =
    max(0, target − compliance) / (1 − target)`` is the SLA shortfall in
    units of the miss budget ``1 − scenario.slo.target_compliance``;
    minimise) or ``cost_and_sla`` (the pair ``[cost/usd, sla/compliance]``;
    minimise, maximise).
    sla_penalty: the weight of the shortfall; with 10, missing the target
    by a whole miss budget (2% misses against a 1% budget) counts as eleven
    times the cost.
    """

    kind: str = "sla"
    sla_penalty: float = 10.0


OBJECTIVES = ("sla", "penalized_cost", "cost_and_sla")


def check_objective(objective: Any) -> None:
    require(objective.kind in OBJECTIVES, "objective.kind", objective.kind, f"must be one of {', '.join(OBJECTIVES)}")
    require(objective.sla_penalty >= 0, "objective.sla_penalty", objective.sla_penalty, "must be >= 0")


def sla_shortfall(compliance: float, target: float) -> float:
    """How far ``compliance`` falls short of ``target``, in miss budgets ``1 − target``."""
    return max(0.0, target - compliance) / (1.0 - target)


def objective_value(summary: dict, objective: Any, target: float) -> Union[float, list[float], None]:
    """What ``main`` returns to the sweeper for a task's ``summary`` (see the module docs)."""
    if "cost/usd" not in summary:  # not a simulate task: the sweeper has nothing to optimise
        return summary.get("sla/compliance")
    cost, compliance = float(summary["cost/usd"]), float(summary["sla/compliance"])
    if objective.kind == "penalized_cost":
        return cost * (1.0 + objective.sla_penalty * sla_shortfall(compliance, target))
    if objective.kind == "cost_and_sla":
        return [cost, compliance]
    return compliance
