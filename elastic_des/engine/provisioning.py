"""The exact minimum-cost provisioning schedule for per-tick replica needs.

Given the replicas each tick needs ready (``needs[k]`` during tick ``k``),
a cold start of ``cold_start_s`` billed like serving time, and the fleet
warm at ``t = 0`` for free, the cheapest schedule decomposes by *replica
level*: level ``l`` (the ``l``-th replica) must be up in every tick with
``needs >= l``; between two such ticks an idle gap of ``g`` seconds costs
``g`` if the replica is kept and ``cold_start_s`` if it is stopped and
cold-started again just in time, so it costs ``min(g, cold_start_s)``.
The gap before a level's first use counts the same way (kept warm from
t = 0, or started just in time); after its last use it stops. Replicas are
interchangeable, so no schedule is cheaper than the sum of its levels'
minima, and this one attains it (tested against a brute force over all
schedules on small cases).
"""

from __future__ import annotations

import numpy as np


def tick_lengths(ticks: int, tick_s: float, duration_s: float) -> np.ndarray:
    """Length of each tick, the last one cut at ``duration_s``."""
    starts = np.arange(ticks) * tick_s
    return np.minimum(tick_s, duration_s - starts)


def min_cost_schedule(needs: np.ndarray, tick_s: float, duration_s: float, cold_start_s: float) -> tuple[np.ndarray, float]:
    """``(alive, replica_s)``: replicas up per tick in the cheapest schedule
    (``alive >= needs``: kept through short gaps), and its billed replica-seconds."""
    needs = np.asarray(needs, dtype=np.int64)
    if np.any(needs < 0):
        raise ValueError(f"needs = {needs.tolist()}: must be >= 0")
    if cold_start_s < 0:
        raise ValueError(f"cold_start_s = {cold_start_s}: must be >= 0")
    lengths = tick_lengths(len(needs), tick_s, duration_s)
    ends = np.cumsum(lengths)
    alive = np.zeros(len(needs), dtype=np.int64)
    replica_s = 0.0
    for level in range(1, int(needs.max(initial=0)) + 1):
        on = np.flatnonzero(needs >= level)
        replica_s += float(lengths[on].sum())
        alive[on] += 1
        # Gaps: before the first use (from t = 0), and between uses.
        previous_end = np.concatenate([[-1], on[:-1]])
        for before, first in zip(previous_end, on):
            if first - before <= 1:
                continue
            gap_ticks = np.arange(before + 1, first)
            gap_s = float(ends[first - 1] - (ends[before] if before >= 0 else 0.0))
            if gap_s <= cold_start_s:
                alive[gap_ticks] += 1
                replica_s += gap_s
            else:
                replica_s += cold_start_s
    return alive, replica_s
