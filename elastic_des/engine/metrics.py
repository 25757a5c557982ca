"""Per-request records, per-tick series and the run summary.

Results are typed tables (pandas DataFrames built once from arrays) and a
flat summary dict whose keys are namespaced (``latency/p99_s``,
``cost/usd``): the same keys in ``summary.json``, in sweep tables and in
plots. Plots read only these DataFrames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from elastic_des.engine.dispatcher import DROPPED_QUEUE_FULL, DROPPED_TIMEOUT, DROPPED_TOO_LONG, NOT_DROPPED
from elastic_des.engine.slo import SLO, tpot_s

DROP_REASONS = {NOT_DROPPED: "served", DROPPED_QUEUE_FULL: "queue_full", DROPPED_TIMEOUT: "timeout",
                DROPPED_TOO_LONG: "too_long"}


def request_table(arrival_s, start_s, finish_s, dropped, service_s, prompt_tokens, output_tokens,
                  first_token_s=None) -> pd.DataFrame:
    """One row per request: times, sizes, latencies (see :mod:`~elastic_des.engine.slo`)
    and what became of it. ``first_token_s`` None: no tokens (TTFT and TPOT NaN)."""
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
    })


def _percentiles(values: np.ndarray, percents) -> list[float]:
    values = values[~np.isnan(values)]
    return [float(x) for x in np.percentile(values, percents)] if len(values) else [float("nan")] * len(percents)


def summarize(requests: pd.DataFrame, ticks: pd.DataFrame, decisions: list[dict], *, slo: SLO,
              slo_target: float, cost_usd: float, gpu_hours: float, duration_s: float) -> dict[str, float]:
    """The headline numbers of one world."""
    total = len(requests)
    served = (requests["outcome"] == "served").to_numpy()
    latency = requests["latency_s"].to_numpy()[served]
    wait = requests["wait_s"].to_numpy()[served]
    ttft = requests["ttft_s"].to_numpy()[served]
    tpot = requests["tpot_s"].to_numpy()[served]
    met = int(np.count_nonzero(slo.met(latency, ttft, tpot)))
    compliance = met / total if total else float("nan")
    p50, p95, p99 = np.percentile(latency, (50, 95, 99)) if len(latency) else (np.nan,) * 3
    ttft_p50, ttft_p95, ttft_p99 = _percentiles(ttft, (50, 95, 99))
    tpot_p50, tpot_p99 = _percentiles(tpot, (50, 99))
    targets = [d["replicas_after"] for d in decisions]
    before = [d["replicas_before"] for d in decisions]
    steps = np.sign(np.subtract(targets, before)) if decisions else np.zeros(0)
    moves = steps[steps != 0]
    replica_s = ticks["replicas_ready"] + ticks["replicas_provisioning"] + ticks["replicas_draining"]
    return {
        "requests/total": total,
        "requests/served": int(served.sum()),
        "requests/dropped": int(total - served.sum()),
        "drops/queue_full": int((requests["outcome"] == "queue_full").sum()),
        "drops/timeout": int((requests["outcome"] == "timeout").sum()),
        "drops/too_long": int((requests["outcome"] == "too_long").sum()),
        "drops/rate": (total - int(served.sum())) / total if total else float("nan"),
        "sla/compliance": compliance,
        "sla/target": slo_target,
        "sla/met": bool(compliance >= slo_target),
        # The objectives that are set (sla/latency_slo_s, sla/ttft_slo_s, sla/tpot_slo_s).
        **{f"sla/{name}_slo_s": value for name, value in
           (("latency", slo.latency_s), ("ttft", slo.ttft_s), ("tpot", slo.tpot_s)) if value is not None},
        "latency/mean_s": float(latency.mean()) if len(latency) else float("nan"),
        "latency/p50_s": float(p50),
        "latency/p95_s": float(p95),
        "latency/p99_s": float(p99),
        "latency/ttft_p50_s": ttft_p50,
        "latency/ttft_p95_s": ttft_p95,
        "latency/ttft_p99_s": ttft_p99,
        "latency/tpot_p50_s": tpot_p50,
        "latency/tpot_p99_s": tpot_p99,
        "wait/mean_s": float(wait.mean()) if len(wait) else float("nan"),
        "wait/p_wait": float(np.mean(wait > 0)) if len(wait) else float("nan"),
        "utilization/mean": float(np.average(ticks["utilization"])) if len(ticks) else float("nan"),
        "cost/usd": cost_usd,
        "cost/gpu_hours": gpu_hours,
        "cost/usd_per_1k_requests": 1000 * cost_usd / total if total else float("nan"),
        "replicas/mean": float(replica_s.mean()) if len(ticks) else float("nan"),
        "replicas/max": int(replica_s.max()) if len(ticks) else 0,
        "scaling/actions": int(len(moves)),
        "scaling/up": int(np.sum(moves > 0)),
        "scaling/down": int(np.sum(moves < 0)),
        "scaling/direction_changes": int(np.sum(moves[1:] != moves[:-1])) if len(moves) > 1 else 0,
        "workload/mean_rate_rps": total / duration_s,
    }
