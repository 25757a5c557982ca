"""The summary's scaling counts: moves, reversals and flaps, from the decision record.

A move is a decision whose target differs from the replicas before it; a
reversal is a move against the previous move's direction, however long
after it; a flap is a reversal sooner than ``FLAP_WINDOW_S`` after the
previous move (the stability the Q-agent issue asks about: "direction
reversals within the cooldown").
"""

from __future__ import annotations

import pandas as pd

from elastic_des.engine.metrics import FLAP_WINDOW_S, Outcomes, summarize
from elastic_des.engine.slo import SLO


def scaling_counts(moves: list[tuple[float, int, int]]) -> dict:
    """The ``scaling/*`` keys of a summary whose decisions are ``(time_s, before, after)``."""
    decisions = [{"time_s": t, "replicas_before": before, "replicas_after": after} for t, before, after in moves]
    ticks = pd.DataFrame({"replicas_ready": [1], "replicas_provisioning": [0], "replicas_draining": [0],
                          "utilization": [0.5]})
    summary = summarize(Outcomes(SLO(latency_s=30.0)), ticks, decisions, slo=SLO(latency_s=30.0),
                        slo_target=0.999, cost_usd=0.0, gpu_hours=0.0, duration_s=3600.0)
    return {k.split("/")[1]: v for k, v in summary.items() if k.startswith("scaling/")}


def test_holds_are_not_moves_and_a_reversal_is_a_flap_only_within_the_window():
    counts = scaling_counts([
        (0.0, 2, 3),       # up
        (60.0, 3, 3),      # hold: not a move
        (120.0, 3, 2),     # down, 120 s after the up: a flapping reversal
        (1000.0, 2, 2),    # hold
        (2000.0, 2, 4),    # up, 1880 s after the down: a reversal, not a flap
        (2000.0 + FLAP_WINDOW_S, 4, 3),  # down exactly one window later: not a flap
        (2400.0, 3, 2),    # down again: no reversal
        (2460.0, 2, 3),    # up 60 s later: a flap
    ])
    assert counts == {"actions": 6, "up": 3, "down": 3, "direction_changes": 4, "flaps": 2}


def test_no_decisions_no_moves():
    assert scaling_counts([]) == {"actions": 0, "up": 0, "down": 0, "direction_changes": 0, "flaps": 0}
