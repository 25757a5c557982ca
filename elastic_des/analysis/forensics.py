"""Decision forensics: a run's records, and each decision as a sentence.

Every decision the controller takes is recorded in ``decisions.jsonl`` with
the observation it saw, the forecast, the rule of the policy that fired and
the numbers behind it (``details``), the per-action values of a learning
agent (``q_values``) and the replicas before and after. :func:`explain`
turns one record into a sentence a researcher can read::

    10:03 scaled up 4→5: utilization 0.87 is above the 0.75 band;
    forecast rises 28% over the next 15 min (41→53 req/s); the latest rate
    44 req/s is 7% above the next-tick forecast.

The forecast clause says what the forecaster itself predicts (its forecast
at the horizon against its forecast for the next tick: a flat forecast is
"flat" however far the latest rate stands from it) and, separately, how
the rate just observed compares with that forecast.

The rule clause comes from a table of templates keyed by ``(policy, rule)``;
a rule without a template (a new policy's) is still explained, by listing its
numbers. Numbers are printed by :func:`number`, so a test (or a reader)
can find the record's values in the sentence.

:func:`rank_by_proxy` picks the scaling actions worth a closer look without
re-running anything; :mod:`elastic_des.analysis.counterfactual` measures what they
actually changed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from elastic_des.agent.qtable import near_tie
from elastic_des.errors import require

# ---------------------------------------------------------------- a run's records


@dataclass
class RunRecords:
    """What a simulate run left in its folder (see ``elastic_des.app.simulate``)."""

    summary: dict
    ticks: pd.DataFrame  # both worlds, labelled by ``role`` and ``world``
    decisions: list[dict]  # the policy's world

    @property
    def candidate_ticks(self) -> pd.DataFrame:
        return self.ticks[self.ticks["role"] == "candidate"].reset_index(drop=True)


def load_records(run_dir: Path) -> RunRecords:
    """Read ``summary.json``, ``ticks.parquet`` and ``decisions.jsonl``."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    ticks = pd.read_parquet(run_dir / "ticks.parquet")
    with open(run_dir / "decisions.jsonl", encoding="utf-8") as lines:
        decisions = [json.loads(line) for line in lines]
    return RunRecords(summary, ticks, decisions)


def tick_s(record: dict) -> float:
    """The controller period: decision ``k`` is taken at ``(k + 1) * tick_s``."""
    return record["time_s"] / (record["tick"] + 1)


# ---------------------------------------------------------------- formatting


def number(value: Any) -> str:
    """A number as the sentences print it: integers whole, others with three
    significant digits (``0.397``, ``16.4``), none after the point from 100."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def clock(time_s: float) -> str:
    """Simulated time as ``HH:MM``, with the day from the second day on."""
    minutes = int(time_s // 60)
    day, minutes = divmod(minutes, 24 * 60)
    hhmm = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return hhmm if day == 0 else f"day {day + 1} {hhmm}"


def action(record: dict) -> str:
    before, after = record["replicas_before"], record["replicas_after"]
    if after > before:
        text = f"scaled up {before}→{after}"
    elif after < before:
        text = f"scaled down {before}→{after}"
    else:
        text = f"held at {before}"
    if record["requested_target"] != after:
        text += f" (asked for {record['requested_target']}, kept within the fleet's replica bounds)"
    return text


# ---------------------------------------------------------------- rule templates


def _threshold_above(d: dict) -> str:
    queue = (f"{number(d['queue_per_replica'])} requests wait per replica, above the limit of "
             f"{number(d['queue_limit'])}")
    if d["utilization"] <= d["upper"]:  # the queue alone fired
        return f"{queue} (utilization {number(d['utilization'])})"
    band = f"utilization {number(d['utilization'])} is above the {number(d['upper'])} band"
    return f"{band} and {queue}" if d["queue_per_replica"] > d["queue_limit"] else band


def _hpa_ratio(d: dict) -> str:
    return (f"utilization {number(d['utilization'])} is {number(d['ratio'])}× the "
            f"{number(d['target_utilization'])} target")


def _kpa_stable(d: dict) -> str:
    return (f"stable concurrency {number(d['stable_concurrency'])} at {number(d['target_per_replica'])} "
            f"per replica asks for {number(d['desired_stable'])}")


def _kpa_panic(d: dict) -> str:
    return (f"panic mode: panic-window concurrency {number(d['panic_concurrency'])} asks for "
            f"{number(d['panic_ratio'])}× the ready replicas (threshold {number(d['panic_threshold'])}), "
            f"asking for max(stable {number(d['desired_stable'])}, panic {number(d['desired_panic'])})")


def _predictive_sizes(d: dict) -> str:
    first, last = d["horizon_ticks"]
    return (f"the forecast peak {number(d['forecast_rps'])} req/s ({first}–{last} ticks ahead) needs "
            f"{number(d['forecast_replicas'])} replicas and the observed {number(d['observed_rps'])} req/s needs "
            f"{number(d['load_replicas'])} (headroom {number(d['headroom'])})")


# How the Q-agent's state components read in a sentence (others: their own name).
COMPONENT_NAMES = {"load": "load ratio", "queue": "queue per replica", "queue_growth": "queue growth",
                   "trend": "forecast trend", "pending": "pending share", "burst": "burstiness",
                   "size": "target over model size", "recent_move": "recent move"}


def _q_state(d: dict) -> str:
    """Every component of the state the table was read at, with its band
    (the tabular agent's choice depends on all of them), then the sizing."""
    parts = [f"{COMPONENT_NAMES.get(k[:-5], k[:-5])} {number(d.get(k[:-5]))} (band {number(v)})"
             for k, v in d.items() if k.endswith("_band")]
    state = f"state {', '.join(parts)}; " if parts else f"load {number(d.get('load'))}, "
    return (f"{state}{number(d['model_size'])} replicas needed for the forecast peak of "
            f"{number(d['forecast_peak_rps'])} req/s {number(d['lead_ticks'])} ticks ahead")


SHIELDS = {  # the agent's safety rules (elastic_des.agent.mdp), as the decision names them
    "floor": "lifted to the model size (no target below what Erlang C asks for)",
    "cooldown": "held (no scale-in within the cooldown of a scale-out)",
    "scale_in_window": "kept at the highest of its own recent targets (a scale-in waits for a dip that lasts "
                       "the scale-in window)",
    "miss_floor": "lifted to {floor}, one replica more than served a recent tick that missed the SLO with "
                  "requests waiting",
    "burst_floor": "lifted to {floor}, the sizing of a recent bursty tick (a burst shorter than a cold start "
                   "cannot wait for capacity)",
}


def _q_shield(d: dict) -> str:
    shield = d.get("shield")
    return f", {SHIELDS[shield].format(floor=number(d.get('floor')))}" if shield in SHIELDS else ""


# (policy, rule) -> the clause explaining why; each reads only ``details``.
TEMPLATES: dict[tuple[str, str], Callable[[dict], str]] = {
    ("static", "static"): lambda d: (
        f"a static fleet of {number(d['replicas'])} sized for the planned peak of "
        f"{number(d['peak_rate_rps'])} req/s"),
    ("threshold", "above_band"): _threshold_above,
    ("threshold", "below_band"): lambda d: (
        f"utilization {number(d['utilization'])} is below the {number(d['lower'])} band and no request waits"),
    ("threshold", "in_band"): lambda d: (
        f"utilization {number(d['utilization'])} is within the {number(d['lower'])}–{number(d['upper'])} band"),
    ("threshold", "cooldown"): lambda d: (
        f"cooling down for {number(d['cooldown_left_s'])} s more after the last change "
        f"(utilization {number(d['utilization'])})"),
    ("hpa", "scale_up"): lambda d: f"{_hpa_ratio(d)}, recommending {number(d['recommendation'])}",
    ("hpa", "scale_up_rate_limited"): lambda d: (
        f"{_hpa_ratio(d)}, recommending {number(d['recommendation'])}, limited to "
        f"{number(d['scale_up_limit'])} by the scale-up rate policy"),
    ("hpa", "scale_down"): lambda d: (
        f"{_hpa_ratio(d)}, recommending {number(d['recommendation'])}; the stabilization window allows "
        f"{number(d['stabilized'])}"),
    ("hpa", "stabilization_hold"): lambda d: (
        f"{_hpa_ratio(d)}, recommending {number(d['recommendation'])}, but a higher recommendation in the "
        f"stabilization window holds {number(d['stabilized'])}"),
    ("hpa", "in_tolerance"): lambda d: f"{_hpa_ratio(d)}, within the ±{number(d['tolerance'])} tolerance",
    ("hpa", "not_ready_hold"): lambda d: (
        f"{_hpa_ratio(d)}, but counting the {number(d['not_ready'])} cold-starting replicas brings it to "
        f"{number(d['ratio_with_not_ready'])}"),
    ("hpa", "hold"): lambda d: f"{_hpa_ratio(d)}, recommending the current {number(d['recommendation'])}",
    ("hpa", "no_metrics"): lambda d: "no ready replica reports a utilization",
    ("kpa", "stable"): _kpa_stable,
    ("kpa", "panic_enter"): lambda d: "entering " + _kpa_panic(d),
    ("kpa", "panic"): _kpa_panic,
    ("kpa", "panic_hold"): lambda d: (
        f"{_kpa_panic(d)}; never scaling down in panic, it holds the highest count asked for"),
    ("kpa", "panic_exit"): lambda d: f"leaving panic mode; {_kpa_stable(d)}",
    ("predictive", "scale_out_forecast"): _predictive_sizes,
    ("predictive", "scale_out_load"): _predictive_sizes,
    ("predictive", "hold"): _predictive_sizes,
    ("predictive", "hold_forecast_lower"): lambda d: (
        f"{_predictive_sizes(d)}; it never scales in on the forecast alone"),
    ("predictive", "scale_in"): lambda d: (
        f"{_predictive_sizes(d)}; the scale-in window allows {number(d['stabilized'])}"),
    ("predictive", "scale_in_delayed"): lambda d: (
        f"{_predictive_sizes(d)}, but a recent recommendation in the scale-in window holds "
        f"{number(d['stabilized'])}"),
    ("oracle", "oracle_schedule"): lambda d: (
        f"the clairvoyant schedule has {number(d['scheduled'])} up: the most it needs over this tick and the "
        f"next {number(d['lead_ticks'])} (a cold start ahead); this tick's requests need {number(d['need'])}"),
    ("q_learning", "greedy"): lambda d: (
        f"greedy action {d['action']} in a state seen {number(d['visits'])} times in training"
        f"{_q_shield(d)}: {_q_state(d)}"),
    ("q_learning", "explore"): lambda d: f"exploring (ε-greedy): random action {d['action']}; {_q_state(d)}",
    ("q_learning", "fallback_predictive"): lambda d: (
        f"a state not learned in training ({d['fallback']['reason']}): the predictive rule's "
        f"{d['fallback']['rule']} asks for {number(d['fallback']['target'])}{_q_shield(d)} ({_q_state(d)})"),
}


def _generic(rule: str, details: dict) -> str:
    shown = [f"{k}={number(v)}" for k, v in details.items() if isinstance(v, (int, float, np.number))]
    return f"rule {rule}" + (f" ({', '.join(shown)})" if shown else "")


def reason(record: dict) -> str:
    """Why the policy decided as it did: its rule's template, or the rule
    and its numbers if there is no template for it."""
    details = record.get("details") or {}
    template = TEMPLATES.get((record["policy"], record["rule"]))
    if template is None:
        return _generic(record["rule"], details)
    try:
        text = template(details)
    except KeyError:  # a policy that changed its details: still say what we know
        return _generic(record["rule"], details)
    if "bounded_by" in details:
        text += f", bounded by {details['bounded_by']}"
    return text


FLAT = 0.02  # a relative change below 2% reads as flat / in line


def _relative(value: float, reference: float) -> float:
    return value / reference - 1 if reference > 0 else (math.inf if value > 0 else 0.0)


def forecast_change(record: dict) -> str:
    """What the forecaster predicts (its forecast at the horizon against its
    forecast for the next tick), then how the rate just observed compares
    with the next-tick forecast."""
    forecast = record.get("forecast_rps") or []
    if not forecast:
        return ""
    now, following, ahead = record["observation"]["arrival_rate_rps"], forecast[0], forecast[-1]
    minutes = len(forecast) * tick_s(record) / 60
    span = f"over the next {number(minutes)} min ({number(following)}→{number(ahead)} req/s)"
    trend = _relative(ahead, following)
    if abs(trend) < FLAT:
        text = f"forecast flat {span}"
    elif math.isinf(trend):
        text = f"forecast rises from zero {span}"
    else:
        text = f"forecast {'rises' if trend > 0 else 'falls'} {abs(trend) * 100:.0f}% {span}"
    gap = _relative(now, following)
    if abs(gap) < FLAT:
        return f"{text}; the latest rate {number(now)} req/s is in line with it"
    if math.isinf(gap):
        return f"{text}; the latest rate is {number(now)} req/s against a forecast of zero"
    return (f"{text}; the latest rate {number(now)} req/s is {abs(gap) * 100:.0f}% "
            f"{'above' if gap > 0 else 'below'} the next-tick forecast")


def _digits_apart(a: float, b: float) -> int:
    """Significant digits (3 to 8) that print ``a`` and ``b`` differently."""
    return next((d for d in range(3, 9) if f"{a:.{d}g}" != f"{b:.{d}g}"), 8)


def q_comparison(record: dict) -> str:
    """The action values: ``Q(up_1)=1.21 beat Q(hold)=0.84`` (the action taken,
    or the best, against the runner-up), or how the action taken fell short."""
    # Untried actions have no estimate (null in the record): they are not compared.
    q = {k: v for k, v in (record.get("q_values") or {}).items() if v is not None and math.isfinite(v)}
    if not q:
        return ""
    ranked = sorted(q.items(), key=lambda item: item[1], reverse=True)
    best, q_best = ranked[0]
    if len(set(q.values())) == 1:
        return f"all Q-values are {number(q_best)}"
    details = record.get("details") or {}
    taken = details.get("action")
    if taken in q and q[taken] < q_best:
        d = _digits_apart(q[taken], q_best)
        if details.get("near_tie_hold"):
            return (f"Q({taken})={q[taken]:.{d}g} within {number(q_best - q[taken])} of Q({best})={q_best:.{d}g}, "
                    f"a near-tie: held")
        return f"Q({taken})={q[taken]:.{d}g} although Q({best})={q_best:.{d}g} was higher"
    if taken in q:
        best = taken
    second, q_second = next(item for item in ranked if item[0] != best)
    if q_best == q_second:
        return f"Q({best})={number(q_best)} tied with Q({second})={number(q_second)}"
    d = _digits_apart(q_best, q_second)
    text = f"Q({best})={q_best:.{d}g} beat Q({second})={q_second:.{d}g}"
    if near_tie(q_best, q_second):
        text += f", a near-tie ({q_best - q_second:.2g} apart)"
    return text


def explain(record: dict) -> str:
    """One decision as a sentence: when, what, why, the forecast, the Q-values."""
    clauses = [c for c in (reason(record), forecast_change(record), q_comparison(record)) if c]
    return f"{clock(record['time_s'])} {action(record)}: {'; '.join(clauses)}."


# ---------------------------------------------------------------- which decisions matter


def check_explain(explain_cfg) -> None:
    """Validate the ``explain`` config section (see ``ExplainConfig``)."""
    require(explain_cfg.window_ticks >= 1, "explain.window_ticks", explain_cfg.window_ticks, "must be >= 1")
    require(explain_cfg.top_k >= 0, "explain.top_k", explain_cfg.top_k, "must be >= 0 (0: no decision table)")


def rank_by_proxy(decisions: list[dict], ticks: pd.DataFrame, window_ticks: int, k: int) -> pd.DataFrame:
    """The ``k`` scaling actions with the largest consequence proxy.

    Proxy: ``|replicas after - before| × Σ (arrivals × utilization)`` over
    the ``window_ticks`` ticks after the decision, in the run as it happened
    (``ticks``: the policy's world). A change of capacity matters in
    proportion to the busy traffic it meets; this costs no re-run, and
    :func:`elastic_des.analysis.counterfactual.replay` measures the real difference.
    Ties keep the earlier decision first.
    """
    if window_ticks < 1:
        raise ValueError(f"window_ticks = {window_ticks}: must be >= 1")
    rows = []
    busy = (ticks["arrivals"] * ticks["utilization"]).to_numpy()
    for record in decisions:
        change = record["replicas_after"] - record["replicas_before"]
        if change == 0:
            continue
        # Row i of ``ticks`` is the observation of decision i; the window is the rows after it.
        window = busy[record["tick"] + 1: record["tick"] + 1 + window_ticks]
        rows.append({"tick": record["tick"], "time_s": record["time_s"], "change": change,
                     "proxy": abs(change) * float(window.sum()), "explanation": explain(record)})
    table = pd.DataFrame(rows, columns=["tick", "time_s", "change", "proxy", "explanation"])
    return table.sort_values(["proxy", "tick"], ascending=[False, True], kind="stable").head(k).reset_index(drop=True)
