"""Per-request records, per-tick series and the run summary.

Results are typed tables (pandas DataFrames built once from arrays) and a
flat summary dict whose keys are namespaced (``latency/p99_s``,
``cost/usd``): the same keys in ``summary.json``, in sweep tables and in
plots. Plots read only these DataFrames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from elastic_des.engine.dispatcher import DROPPED_QUEUE_FULL, DROPPED_TIMEOUT, NOT_DROPPED

DROP_REASONS = {NOT_DROPPED: "served", DROPPED_QUEUE_FULL: "queue_full", DROPPED_TIMEOUT: "timeout"}


def request_table(arrival_s, start_s, finish_s, dropped, service_s, prompt_tokens, output_tokens) -> pd.DataFrame:
    """One row per request: times, sizes and what became of it."""
    start = np.asarray(start_s, dtype=float)
    finish = np.asarray(finish_s, dtype=float)
    arrival = np.asarray(arrival_s, dtype=float)
    return pd.DataFrame({
        "arrival_s": arrival,
        "start_s": start,
        "finish_s": finish,
        "wait_s": start - arrival,
        "latency_s": finish - arrival,
        "service_s": np.asarray(service_s, dtype=float),
        "prompt_tokens": np.asarray(prompt_tokens, dtype=np.int64),
        "output_tokens": np.asarray(output_tokens, dtype=np.int64),
        "outcome": pd.Categorical.from_codes(np.asarray(dropped, dtype=np.int8), list(DROP_REASONS.values())),
    })


def summarize(requests: pd.DataFrame, ticks: pd.DataFrame, decisions: list[dict], *, slo_latency_s: float,
              slo_target: float, cost_usd: float, gpu_hours: float, duration_s: float) -> dict[str, float]:
    """The headline numbers of one world."""
    total = len(requests)
    served = requests["outcome"] == "served"
    latency = requests["latency_s"].to_numpy()[served.to_numpy()]
    wait = requests["wait_s"].to_numpy()[served.to_numpy()]
    met = int(np.count_nonzero(latency <= slo_latency_s))
    compliance = met / total if total else float("nan")
    p50, p95, p99 = np.percentile(latency, (50, 95, 99)) if len(latency) else (np.nan,) * 3
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
        "drops/rate": (total - int(served.sum())) / total if total else float("nan"),
        "sla/compliance": compliance,
        "sla/target": slo_target,
        "sla/met": bool(compliance >= slo_target),
        "sla/latency_slo_s": slo_latency_s,
        "latency/mean_s": float(latency.mean()) if len(latency) else float("nan"),
        "latency/p50_s": float(p50),
        "latency/p95_s": float(p95),
        "latency/p99_s": float(p99),
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
