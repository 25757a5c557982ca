"""Per-request records, per-tick series and the run summary.

Results are typed tables (pandas DataFrames built from arrays) and a
flat summary dict whose keys are namespaced (``latency/p99_s``,
``cost/usd``): the same keys in ``summary.json``, in sweep tables and in
plots. Plots read only these DataFrames.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from elastic_des.engine.dispatcher import DROPPED_QUEUE_FULL, DROPPED_TIMEOUT, DROPPED_TOO_LONG, NOT_DROPPED
from elastic_des.engine.histogram import LogHistogram
from elastic_des.engine.slo import SLO, tpot_s

DROP_REASONS = {NOT_DROPPED: "served", DROPPED_QUEUE_FULL: "queue_full", DROPPED_TIMEOUT: "timeout",
                DROPPED_TOO_LONG: "too_long"}
# Served requests whose latency, TTFT, TPOT and wait are kept for exact
# summaries (4 values of 8 bytes each: 64 MB); see Outcomes.
EXACT_VALUES = 2_000_000
EXACT_COLUMNS = ("latency", "ttft", "tpot", "wait")
# A reversal (a move against the previous move's direction) sooner than this
# after that move is a flap: the HPA's default scale-down stabilization
# window, and the Q-agent's default cooldown. ``scaling/flaps`` counts them.
FLAP_WINDOW_S = 300.0


def request_table(arrival_s, start_s, finish_s, dropped, service_s, prompt_tokens, output_tokens,
                  first_token_s=None) -> pd.DataFrame:
    """One row per request: times, sizes, latencies (see :mod:`~elastic_des.engine.slo`)
    and what became of it. ``first_token_s`` None: no tokens (TTFT and TPOT NaN).
    The frame takes the columns' arrays as they are, not copies: the caller hands
    over arrays of its own (:func:`rows_table`'s, new)."""
    start = np.asarray(start_s, dtype=float)
    finish = np.asarray(finish_s, dtype=float)
    arrival = np.asarray(arrival_s, dtype=float)
    first = np.full(len(arrival), np.nan) if first_token_s is None else np.asarray(first_token_s, dtype=float)
    return pd.DataFrame({
        "arrival_s": arrival,
        "start_s": start,
        "first_token_s": first,
        "finish_s": finish,
        "wait_s": start - arrival,
        "ttft_s": first - arrival,
        "tpot_s": tpot_s(first, finish, output_tokens),
        "latency_s": finish - arrival,
        "service_s": np.asarray(service_s, dtype=float),
        "prompt_tokens": np.asarray(prompt_tokens, dtype=np.int64),
        "output_tokens": np.asarray(output_tokens, dtype=np.int64),
        "outcome": pd.Categorical.from_codes(np.asarray(dropped, dtype=np.int8), list(DROP_REASONS.values())),
    }, copy=False)  # a copy of every column into one block would cost as much again as making them


# The columns of request_table's arguments, as Outcomes hands retired rows over.
ROW_COLUMNS = ("arrival_s", "start_s", "finish_s", "dropped", "service_s", "prompt_tokens", "output_tokens",
               "first_token_s")


# The columns that request_table makes integers, joined straight into integers.
_INTEGER_COLUMNS = ("prompt_tokens", "output_tokens")


def rows_table(chunks: Sequence[dict[str, np.ndarray]]) -> pd.DataFrame:
    """The :func:`request_table` of consecutive chunks of rows (:data:`ROW_COLUMNS`)."""
    return request_table(*(np.concatenate([c[name] for c in chunks],
                                          dtype=np.int64 if name in _INTEGER_COLUMNS else None, casting="unsafe")
                           if chunks else np.empty(0) for name in ROW_COLUMNS))


class Outcomes:
    """What became of a world's requests, reduced as they retire.

    :meth:`add` takes the rows a :class:`~elastic_des.engine.records.RequestStore`
    retires (index order) and keeps counts, sums and
    :class:`~elastic_des.engine.histogram.LogHistogram` s of the served
    requests' latency, TTFT and TPOT. Counts and SLO attainment are exact.
    The run-level means and percentiles are exact (the very numbers of the
    request table) while the world has served at most ``exact_limit``
    requests (default :data:`EXACT_VALUES`, about 64 MB of values); past that the
    values are let go and the means come from running sums (equal up to the
    order of summation) and the percentiles from the histograms, within
    their relative error (0.5%) of the exact ones: memory that does not
    grow with the run. :attr:`exact` says which. The histograms serve only
    past the limit, so the values are counted into them when it is passed
    (every kept value at once, then each chunk as it retires): counts are
    integers, the same however the values are grouped, and a run within the
    limit never pays for them.

    ``tables``: keep the rows of every request (:meth:`table`, the world's
    ``requests`` frame); ``on_rows``: hand each retired chunk's rows
    (arrays, :data:`ROW_COLUMNS`) to a writer instead, which makes tables of
    them with :func:`rows_table` (``requests.parquet`` in row groups as the
    run goes). Tables are made from many chunks at once: a frame per tick
    would cost more than the simulation.
    """

    def __init__(self, slo: SLO, tables: bool = False,
                 on_rows: Optional[Callable[[dict[str, np.ndarray]], None]] = None,
                 exact_limit: Optional[int] = None):
        self.slo = slo
        self.exact_limit = EXACT_VALUES if exact_limit is None else exact_limit
        self._values: Optional[dict[str, list[np.ndarray]]] = {name: [] for name in EXACT_COLUMNS}
        self.histograms = {name: LogHistogram() for name in ("latency", "ttft", "tpot")}
        self.counts = dict.fromkeys(DROP_REASONS, 0)
        self.met = self.waited = 0
        self.latency_sum = self.wait_sum = 0.0
        self.chunks: Optional[list[dict[str, np.ndarray]]] = [] if tables else None
        self.on_rows = on_rows

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, rows: dict[str, np.ndarray]) -> None:
        """Count retired ``rows``: ``arrival``, ``start_s``, ``finish_s``,
        ``dropped``, ``prompt``, ``output``, and ``first_token_s`` or (on a
        slots model with tokens) ``offset``, the first token's delay after
        the start; ``service``, or on a batching model the time from start to finish."""
        dropped = rows["dropped"]
        if not len(dropped):
            return
        all_served = not np.count_nonzero(dropped)
        if all_served:  # most chunks drop nothing: no need to count by reason, nor to select the served
            self.counts[NOT_DROPPED] += len(dropped)
        else:
            for reason, count in enumerate(np.bincount(dropped, minlength=len(DROP_REASONS)).tolist()):
                self.counts[reason] += count
        tokens = True
        if "offset" in rows:  # a slots model with tokens: the first token comes offset after the start
            first = rows["start_s"] + rows["offset"]
        else:  # a batching pool's own record, or no tokens at all
            first = rows.get("first_token_s")
            if first is None:
                first, tokens = np.full(len(dropped), np.nan), False
        served_columns = rows["arrival"], rows["start_s"], rows["finish_s"], first, rows["output"]
        if not all_served:
            served = dropped == NOT_DROPPED
            served_columns = tuple(column[served] for column in served_columns)
        arrival, start, finish, served_first, output = served_columns
        latency, wait = finish - arrival, start - arrival
        if tokens:
            ttft = served_first - arrival
            tpot = tpot_s(served_first, finish, output)
        else:  # NaN, as their differences from a NaN first token would be (read only, so shared)
            ttft = tpot = served_first
        self.met += int(np.count_nonzero(self.slo.met(latency, ttft, tpot)))
        self.waited += int(np.count_nonzero(wait > 0))
        # ndarray.sum() without its Python wrapper (this runs every tick): the same np.add.reduce.
        self.latency_sum += float(np.add.reduce(latency))
        self.wait_sum += float(np.add.reduce(wait))
        # Without tokens TTFT and TPOT are NaN, which percentiles and histograms leave out: not kept.
        measured = {"latency": latency, "ttft": ttft, "tpot": tpot, "wait": wait} if tokens else \
            {"latency": latency, "wait": wait}
        if self._values is not None:
            for name, values in measured.items():
                self._values[name].append(values)
            if self.counts[NOT_DROPPED] > self.exact_limit:
                for name in self.histograms:
                    self._count(name, self._exact_values(name))
                self._values = None
        else:
            for name in self.histograms:
                if name in measured:
                    self._count(name, measured[name])
        if self.chunks is not None or self.on_rows is not None:
            service = rows["service"] if "service" in rows else rows["finish_s"] - rows["start_s"]
            chunk = dict(zip(ROW_COLUMNS, (rows["arrival"], rows["start_s"], rows["finish_s"], dropped, service,
                                           rows["prompt"], rows["output"], first)))
            if self.chunks is not None:
                self.chunks.append(chunk)
            if self.on_rows is not None:
                self.on_rows(chunk)

    def _count(self, name: str, values: np.ndarray) -> None:
        """Count the non-NaN ``values`` of ``name`` into its histogram."""
        self.histograms[name].add(values[~np.isnan(values)])

    def table(self) -> Optional[pd.DataFrame]:
        """Every request's row, if kept (``tables=True``)."""
        return None if self.chunks is None else rows_table(self.chunks)

    @property
    def exact(self) -> bool:
        """Whether the means and percentiles are exact (see the class docs)."""
        return self._values is not None

    def _exact_values(self, name: str) -> np.ndarray:
        return np.concatenate(self._values[name]) if self._values[name] else np.empty(0)

    def percentiles(self, name: str, percents: Sequence[float]) -> list[float]:
        """Percentiles of the served requests' ``name`` (latency, ttft or tpot; NaNs left out)."""
        if self._values is None:
            return self.histograms[name].quantiles([p / 100 for p in percents])
        values = self._exact_values(name)  # a new array, ours to reorder
        missing = np.isnan(values)
        if missing.any():
            values = values[~missing]
        # overwrite_input: partition the values in place rather than a copy of
        # them (a large array's copy is paid for in page faults); the same result.
        return ([float(x) for x in np.percentile(values, percents, overwrite_input=True)] if len(values)
                else [math.nan] * len(percents))

    def mean(self, name: str) -> float:
        """The mean ``name`` (latency or wait) of the served requests."""
        served = self.counts[NOT_DROPPED]
        if not served:
            return math.nan
        if self._values is None:
            return (self.latency_sum if name == "latency" else self.wait_sum) / served
        return float(self._exact_values(name).mean())


def summarize(outcomes: Outcomes, ticks: pd.DataFrame, decisions: list[dict], *, slo: SLO,
              slo_target: float, cost_usd: float, gpu_hours: float, duration_s: float) -> dict[str, float]:
    """The headline numbers of one world."""
    total = outcomes.total
    served = outcomes.counts[NOT_DROPPED]
    compliance = outcomes.met / total if total else float("nan")
    p50, p95, p99 = outcomes.percentiles("latency", (50, 95, 99))
    ttft_p50, ttft_p95, ttft_p99 = outcomes.percentiles("ttft", (50, 95, 99))
    tpot_p50, tpot_p99 = outcomes.percentiles("tpot", (50, 99))
    targets = [d["replicas_after"] for d in decisions]
    before = [d["replicas_before"] for d in decisions]
    steps = np.sign(np.subtract(targets, before)) if decisions else np.zeros(0)
    moving = steps != 0
    moves = steps[moving]
    move_times = np.array([d["time_s"] for d in decisions], dtype=float)[moving]
    reversed_ = moves[1:] != moves[:-1]
    replica_s = ticks["replicas_ready"] + ticks["replicas_provisioning"] + ticks["replicas_draining"]
    return {
        "requests/total": total,
        "requests/served": served,
        "requests/dropped": total - served,
        "drops/queue_full": outcomes.counts[DROPPED_QUEUE_FULL],
        "drops/timeout": outcomes.counts[DROPPED_TIMEOUT],
        "drops/too_long": outcomes.counts[DROPPED_TOO_LONG],
        "drops/rate": (total - served) / total if total else float("nan"),
        "sla/compliance": compliance,
        "sla/target": slo_target,
        "sla/met": bool(compliance >= slo_target),
        # The objectives that are set (sla/latency_slo_s, sla/ttft_slo_s, sla/tpot_slo_s).
        **{f"sla/{name}_slo_s": value for name, value in
           (("latency", slo.latency_s), ("ttft", slo.ttft_s), ("tpot", slo.tpot_s)) if value is not None},
        "latency/mean_s": outcomes.mean("latency"),
        "latency/p50_s": p50,
        "latency/p95_s": p95,
        "latency/p99_s": p99,
        "latency/ttft_p50_s": ttft_p50,
        "latency/ttft_p95_s": ttft_p95,
        "latency/ttft_p99_s": ttft_p99,
        "latency/tpot_p50_s": tpot_p50,
        "latency/tpot_p99_s": tpot_p99,
        "wait/mean_s": outcomes.mean("wait"),
        "wait/p_wait": outcomes.waited / served if served else float("nan"),
        "utilization/mean": float(np.average(ticks["utilization"])) if len(ticks) else float("nan"),
        "cost/usd": cost_usd,
        "cost/gpu_hours": gpu_hours,
        "cost/usd_per_1k_requests": 1000 * cost_usd / total if total else float("nan"),
        "replicas/mean": float(replica_s.mean()) if len(ticks) else float("nan"),
        "replicas/max": int(replica_s.max()) if len(ticks) else 0,
        "scaling/actions": int(len(moves)),
        "scaling/up": int(np.sum(moves > 0)),
        "scaling/down": int(np.sum(moves < 0)),
        "scaling/direction_changes": int(np.sum(reversed_)),
        "scaling/flaps": int(np.sum(reversed_ & (np.diff(move_times) < FLAP_WINDOW_S))),
        "workload/mean_rate_rps": total / duration_s,
    }
