"""Counterfactual replay: what if one decision had been different?

A run is deterministic in its config and seed, so a decision can be judged
by simulating the policy's world twice more from the start: once as it
happened (the *factual* history) and once with a different target forced at
that one tick (the *counterfactual*), everything else equal: the same
arrivals, the same request sizes, the same policy deciding every other
tick. The difference between the two over the window after the decision is
what the decision was worth::

    had it held at 4 instead of scaling up to 5, 312 more requests arriving
    in the next 10 min would have missed the SLO; it would have cost $0.42 less.

Both histories are simulated to the end of the window and then drained with
the fleet as it is (no new arrivals, no further decisions), so every request
of the window has an outcome and the two differ only in the forced target.
The factual history must reproduce the recorded run tick for tick; if it
does not (the code or the config changed since), :func:`replay` refuses.

The forced policy still takes (and remembers) its own decision at the tick;
only the target the controller applies is replaced, as if an operator had
overridden the scaling call. So forcing the action that was taken changes
nothing at all, which the tests check to the bit.

``task=explain`` (:func:`explain`) is the command-line entry point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from elastic_des.atomic import write_json
from elastic_des.config import Config
from elastic_des.engine.controller import TICK_COLUMNS
from elastic_des.errors import ConfigError, require
from elastic_des.factory import build, check_targets
from elastic_des.progress import Progress
from elastic_des.runfolder import require_complete
from elastic_des.analysis.forensics import RunRecords, check_explain, explain as explain_decision, load_records, rank_by_proxy
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext
from elastic_des.engine.simulation import WorldResult, simulate_world
from elastic_des.engine.workload import Workload, build_workload


class ForcedActionPolicy(Policy):
    """``policy`` everywhere, except that at ``tick`` the target is ``target``."""

    def __init__(self, policy: Policy, tick: int, target: int):
        if tick < 0:
            raise ValueError(f"tick = {tick}: must be >= 0")
        self.policy, self.tick, self.target = policy, tick, target
        self.name = policy.name

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        self.policy.reset(context)

    def initial_replicas(self) -> int:
        return self.policy.initial_replicas()

    def decide(self, obs: Observation) -> Decision:
        decision = self.policy.decide(obs)  # always: the policy's state evolves as in the run
        if obs.tick != self.tick:
            return decision
        self.policy.applied(obs, decision.target, self.target)  # its memory follows the forced action
        return Decision(self.target, "forced",
                        {"forced_target": self.target, "policy_target": decision.target, "policy_rule": decision.rule},
                        decision.q_values)


def forced_target(action: str, before: int, fleet) -> int:
    """``hold``/``up``/``down`` relative to ``before``, or a replica count."""
    moves = {"hold": 0, "up": 1, "down": -1}
    text = str(action).strip()
    if text in moves:
        target = before + moves[text]
    elif text.isdigit():
        target = int(text)
    else:
        raise ConfigError(f"explain.forced_action = {action!r}: must be hold, up, down or a replica count")
    require(fleet.min_replicas <= target <= fleet.max_replicas, "explain.forced_action", action,
            f"gives {target} replicas, outside world.fleet [min_replicas, max_replicas] = "
            f"[{fleet.min_replicas}, {fleet.max_replicas}]")
    return target


def load_run_config(run_dir: Path) -> DictConfig:
    """The composed config a run was made with (Hydra's ``.hydra/config.yaml``),
    checked against the current schemas."""
    run_dir = Path(run_dir)
    require(run_dir.is_dir(), "explain.run_dir", str(run_dir), "not a run folder: no such folder")
    require_complete(run_dir, "explain.run_dir")
    path = run_dir / ".hydra" / "config.yaml"
    try:
        recorded = OmegaConf.load(path)
        # A run folder may come from someone else: nothing it names is built
        # unless it is one of the project's own classes (checked before anything else).
        check_targets(recorded, "")
        cfg = OmegaConf.merge(OmegaConf.structured(Config), recorded)
    except ConfigError as exc:
        raise ConfigError(f"explain.run_dir = {str(run_dir)!r}: its .hydra/config.yaml is refused: {exc}") from None
    except OmegaConfBaseException as exc:
        raise ConfigError(f"explain.run_dir = {str(run_dir)!r}: its config no longer fits the schema: {exc}") from None
    require(cfg.task == "simulate", "explain.run_dir", str(run_dir), f"holds a task={cfg.task} config, not a simulate run")
    return cfg


@dataclass(frozen=True)
class Counterfactual:
    """The two histories of one decision, over its window."""

    tick: int
    time_s: float
    window_end_s: float
    replicas_before: int
    taken_target: int
    forced_target: int
    requests: int  # arriving in [time_s, window_end_s)
    misses_taken: int  # of those, dropped or slower than the SLO, as it happened
    misses_forced: int  # ... had the forced target been applied
    cost_taken_usd: float  # billed over the window, as it happened
    cost_forced_usd: float

    @property
    def extra_misses(self) -> int:
        """Misses the forced action would have added (negative: avoided)."""
        return self.misses_forced - self.misses_taken

    @property
    def extra_cost_usd(self) -> float:
        """Cost the forced action would have added (negative: saved)."""
        return self.cost_forced_usd - self.cost_taken_usd

    def as_dict(self) -> dict:
        return {**asdict(self), "extra_misses": self.extra_misses, "extra_cost_usd": self.extra_cost_usd}

    def sentence(self) -> str:
        """``had it held at 4 instead of scaling up to 5, 312 more requests ...``"""
        if self.forced_target == self.replicas_before:
            alternative = f"held at {self.replicas_before}"
        else:
            alternative = f"gone to {self.forced_target}"
        if self.taken_target == self.replicas_before:
            taken = f"holding at {self.taken_target}"
        else:
            taken = f"scaling {'up' if self.taken_target > self.replicas_before else 'down'} to {self.taken_target}"
        minutes = (self.window_end_s - self.time_s) / 60
        misses = self.extra_misses
        if misses == 0:
            miss_text = f"the same {self.misses_taken} of the {self.requests} requests"
        else:
            miss_text = f"{abs(misses)} {'more' if misses > 0 else 'fewer'} of the {self.requests} requests"
        cost = self.extra_cost_usd
        cost_text = "the same" if cost == 0 else f"${abs(cost):.2f} {'more' if cost > 0 else 'less'}"
        return (f"had it {alternative} instead of {taken}, {miss_text} arriving in the next {minutes:g} min "
                f"would have missed the SLO; it would have cost {cost_text}")


def _history(cfg: DictConfig, workload: Workload, policy: Policy, end_s: float) -> WorldResult:
    """The policy's world up to ``end_s``, then drained (its requests and
    ticks are read, not the clairvoyant limit's cost: not computed)."""
    scenario = OmegaConf.merge(cfg.scenario, {"duration_s": end_s})
    return simulate_world(cfg.world, scenario, cfg.controller, policy, build(cfg.forecaster, "forecaster"),
                          workload, cfg.seed, field="world", oracle_limit=False)


def _window(history: WorldResult, tick: int, start_s: float, end_s: float, slo_s: float) -> tuple[int, int, float]:
    """Requests arriving in the window, those that missed the SLO, and the
    cost billed from decision ``tick`` to the end of the history."""
    requests = history.requests
    arrival = requests["arrival_s"].to_numpy()
    inside = (arrival >= start_s) & (arrival < end_s)
    served = (requests["outcome"] == "served").to_numpy()
    met = served & (requests["latency_s"].to_numpy() <= slo_s)
    cost = history.ticks["cost_usd_cumulative"].to_numpy()  # row i is the observation of decision i
    return int(inside.sum()), int((inside & ~met).sum()), float(cost[-1] - cost[tick])


def decision(records: RunRecords, tick: Optional[int]) -> dict:
    """The record of decision ``tick`` (``explain.tick``)."""
    decisions = records.decisions
    require(tick is not None and 0 <= tick < len(decisions) and decisions[tick]["tick"] == tick, "explain.tick", tick,
            f"is not a decision of this run (0 to {len(decisions) - 1})")
    return decisions[tick]


def replay(cfg: DictConfig, records: RunRecords, tick: int, action: str, window_ticks: int) -> Counterfactual:
    """Judge decision ``tick`` of the run ``records`` (made with ``cfg``) by
    forcing ``action`` instead (see :func:`forced_target`) and comparing the
    ``window_ticks`` ticks after it (fewer at the end of the run)."""
    require(window_ticks >= 1, "explain.window_ticks", window_ticks, "must be >= 1")
    record = decision(records, tick)
    target = forced_target(action, record["replicas_before"], cfg.world.fleet)
    require(target != record["replicas_after"], "explain.forced_action", action,
            f"gives {target} replicas, the target the policy chose at tick {tick}: the replay would repeat "
            f"the run; choose another action")
    times = records.candidate_ticks["time_s"].to_numpy()  # row i: the observation of decision i
    start_s, end_s = float(times[tick]), float(times[min(tick + window_ticks, len(times) - 1)])
    workload = build_workload(cfg.scenario, cfg.seed)
    factual = _history(cfg, workload, build(cfg.policy, "policy"), end_s)
    _check_reproduces(factual, records, tick, end_s)
    forced = _history(cfg, workload, ForcedActionPolicy(build(cfg.policy, "policy"), tick, target), end_s)
    slo_s = float(cfg.scenario.slo.latency_s)
    requests, misses_taken, cost_taken = _window(factual, tick, start_s, end_s, slo_s)
    _, misses_forced, cost_forced = _window(forced, tick, start_s, end_s, slo_s)
    return Counterfactual(tick, start_s, end_s, record["replicas_before"], record["replicas_after"],
                          target, requests, misses_taken, misses_forced, cost_taken, cost_forced)


def _check_reproduces(factual: WorldResult, records: RunRecords, tick: int, end_s: float) -> None:
    recorded = records.candidate_ticks
    recorded = recorded.loc[recorded["time_s"] <= end_s, list(TICK_COLUMNS)].reset_index(drop=True)
    replayed = factual.ticks[list(TICK_COLUMNS)]
    same = recorded.shape == replayed.shape and all(
        np.array_equal(recorded[c].to_numpy(), replayed[c].to_numpy(), equal_nan=True) for c in TICK_COLUMNS
    )
    if not same or factual.decisions[tick]["replicas_after"] != records.decisions[tick]["replicas_after"]:
        raise RuntimeError(
            f"the replay of tick {tick} does not reproduce the recorded run up to {end_s:g} s: "
            "the code or the config changed since the run was made; re-run it first"
        )


def top_decisions(cfg: DictConfig, records: RunRecords, top_k: int, window_ticks: int, action: str) -> pd.DataFrame:
    """The ``top_k`` scaling actions by proxy (:func:`rank_by_proxy`), each
    replayed with ``action`` and re-ranked by the SLA misses it changes."""
    table = rank_by_proxy(records.decisions, records.candidate_ticks, window_ticks, top_k)
    results = []
    with Progress(len(table), "counterfactual replays", "replays", cfg.output.progress) as progress:
        for tick in table["tick"]:
            results.append(replay(cfg, records, int(tick), action, window_ticks))
            progress.update(1)
    table["counterfactual"] = [r.sentence() for r in results]
    table["extra_misses"] = [r.extra_misses for r in results]
    table["extra_cost_usd"] = [r.extra_cost_usd for r in results]
    order = table["extra_misses"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order].reset_index(drop=True)


def explain(cfg: DictConfig, output_dir: Optional[Path]) -> dict:
    """``task=explain``: explain and replay ``explain.tick`` of ``explain.run_dir``
    (or, without a tick, its ``top_k`` decisions, rewriting its report)."""
    from elastic_des.analysis.report import write_report  # matplotlib loads only when a report is written

    e = cfg.explain
    check_explain(e)
    require(e.run_dir is not None, "explain.run_dir", None, "is required by task=explain: the run folder to explain")
    run_dir = Path(e.run_dir)
    run_cfg = load_run_config(run_dir)
    records = load_records(run_dir)
    if e.tick is None:
        require(e.top_k >= 1, "explain.top_k", e.top_k, "must be >= 1 without explain.tick")
        table = top_decisions(run_cfg, records, e.top_k, e.window_ticks, e.forced_action)
        run_cfg.explain = e  # the report states how its table was made
        report = write_report(run_dir, run_cfg, top=table)
        summary: dict = {"run/name": records.summary["run/name"], "explain/run_dir": str(run_dir),
                         "explain/report": str(report)}
        for i, row in table.iterrows():
            summary[f"top{i + 1}/decision"] = row["explanation"]
            summary[f"top{i + 1}/counterfactual"] = row["counterfactual"]
    else:
        result = replay(run_cfg, records, e.tick, e.forced_action, e.window_ticks)
        summary = {
            "run/name": records.summary["run/name"],
            "explain/run_dir": str(run_dir),
            "explain/decision": explain_decision(decision(records, e.tick)),
            "explain/counterfactual": result.sentence(),
            **{f"counterfactual/{k}": v for k, v in result.as_dict().items()},
        }
    if output_dir is not None:
        write_json(output_dir / "explain.json", summary)
    return summary
