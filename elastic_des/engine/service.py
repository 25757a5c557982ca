"""What serving a request costs on a world's model, and how planners see it.

Two families of service model:

* the *slots* models (``tokens``, ``exponential``): a replica has
  ``slots_per_replica`` independent slots and a request holds one for a
  service time computed here for the whole stream at once, before the
  simulation, from its sizes (``tokens``) or from a shared stream of unit
  exponentials (``exponential``, for M/M/c validation);
* the ``batching`` model (:mod:`elastic_des.engine.batching`): how long a
  request takes depends on what else runs beside it, so only its *work* is
  computed here (prefill seconds, decode tokens, KV tokens it reserves).

Either way a request's work depends only on its size and the model, so two
worlds replaying one stream differ only in capacity (common random numbers).

**How the Erlang C planners size a batching replica** (:func:`serving_plan`).
A batching replica is modelled for planning as ``c`` M/M/c servers, ``c``
the largest batch it may run: ``max_num_seqs``, at most the number of mean
requests (prompt + output) its KV budget holds, and at most the batch whose
step time still meets a TPOT objective. At that batch its throughput is
``X = c / (d * t_step(c) + c * p)`` requests/s (``d`` mean decode tokens,
``p`` mean prefill seconds: decode runs at ``c / t_step(c)`` tokens/s in the
share of time not spent prefilling, ``1 - X p``), so each "slot" serves a
request in ``S = c / X = d * t_step(c) + c * p`` seconds. This is the
replica's throughput at full load, where sizing matters; at lighter load
requests run faster than ``S``, so the plan errs on the safe side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elastic_des import rng as rng_streams
from elastic_des.engine.workload import Workload

SLOT_MODELS = ("tokens", "exponential")
SERVICE_MODELS = SLOT_MODELS + ("batching",)


def _mean_sizes(workload_cfg) -> tuple[float, float]:
    from elastic_des.engine.distributions import make_distribution

    prompt = make_distribution(workload_cfg.prompt_tokens, "scenario.workload.prompt_tokens").mean
    output = make_distribution(workload_cfg.output_tokens, "scenario.workload.output_tokens").mean
    return prompt, output


def step_s(model, batch: float) -> float:
    """Duration of one decode step of a batch of ``batch`` sequences."""
    return model.step_base_s + model.step_per_seq_s * batch


def prefill_s(model, prompt_tokens):
    """Prefill seconds of prompts of ``prompt_tokens`` (0 without a prefill rate)."""
    if model.prefill_tokens_per_s is None:
        return prompt_tokens * 0.0
    return prompt_tokens / model.prefill_tokens_per_s


def max_batch(model, workload_cfg, tpot_slo_s=None) -> int:
    """The largest batch a batching replica runs at full load (see module docs)."""
    prompt, output = _mean_sizes(workload_cfg)
    batch = model.max_num_seqs
    if model.kv_budget_tokens is not None:
        batch = min(batch, max(1, int(model.kv_budget_tokens // (prompt + output))))
    if tpot_slo_s is not None and model.step_per_seq_s > 0:
        batch = min(batch, max(1, math.floor((tpot_slo_s - model.step_base_s) / model.step_per_seq_s)))
    return batch


@dataclass(frozen=True)
class ServingPlan:
    """A replica as the Erlang C planners see it: ``slots`` servers, each
    serving a request in ``mean_service_s`` on average; ``latency_s`` is the
    end-to-end budget they size against."""

    slots: int
    mean_service_s: float
    latency_s: float


def serving_plan(model, workload_cfg, slo) -> ServingPlan:
    """The planning view of ``model`` for requests of ``workload_cfg`` under ``slo``.

    The latency budget is the end-to-end SLO, tightened by a TTFT SLO (the
    TTFT budget plus the mean decode time); with neither set, the mean
    service time itself (no room to wait).
    """
    if model.service_model in SLOT_MODELS:
        slots, service = model.slots_per_replica, mean_service_s(model, workload_cfg)
        decode = service
    else:
        prompt, output = _mean_sizes(workload_cfg)
        slots = max_batch(model, workload_cfg, slo.tpot_s)
        decode = max(output - 1.0, 0.0) * step_s(model, slots)
        service = decode + slots * prefill_s(model, prompt)
    budgets = [b for b in (slo.latency_s, None if slo.ttft_s is None else slo.ttft_s + decode) if b is not None]
    return ServingPlan(slots=int(slots), mean_service_s=float(service),
                       latency_s=float(min(budgets)) if budgets else float(service))


def mean_service_s(model, workload_cfg) -> float:
    """Analytic mean service time of ``model`` for the configured request sizes
    (for ``batching``, the per-request time at full batch; see module docs)."""
    if model.service_model == "exponential":
        return float(model.mean_service_s)
    if model.service_model == "batching":
        prompt, output = _mean_sizes(workload_cfg)
        batch = max_batch(model, workload_cfg)
        return max(output - 1.0, 0.0) * step_s(model, batch) + batch * prefill_s(model, prompt)
    prompt, output = _mean_sizes(workload_cfg)
    return model.overhead_s + prompt / model.prefill_tokens_per_s + output / model.decode_tokens_per_s


def service_times(model, workload: Workload, seed: int) -> np.ndarray:
    """Service time in seconds of every request of ``workload`` on a slots ``model``."""
    if model.service_model == "exponential":
        unit = rng_streams.stream(seed, "service_unit_exponential").exponential(1.0, len(workload))
        return unit * model.mean_service_s
    return (
        model.overhead_s
        + workload.prompt_tokens / model.prefill_tokens_per_s
        + workload.output_tokens / model.decode_tokens_per_s
    )


def first_token_offsets(model, workload: Workload) -> np.ndarray:
    """Seconds from the start of service to the first token on a slots ``model``
    (its prefill and one decoded token); NaN for ``exponential``, which has no tokens."""
    if model.service_model == "exponential":
        return np.full(len(workload), np.nan)
    return model.overhead_s + workload.prompt_tokens / model.prefill_tokens_per_s + 1.0 / model.decode_tokens_per_s


@dataclass(frozen=True)
class BatchWork:
    """The work of each request on a batching model: seconds of prefill, decode
    steps after the first token (which the prefill produces), and the KV-cache
    tokens it reserves while admitted (its prompt plus its whole output: see
    :mod:`elastic_des.engine.batching`)."""

    prefill_s: np.ndarray
    decode_tokens: np.ndarray
    kv_tokens: np.ndarray


def batch_work(model, workload: Workload) -> BatchWork:
    prompt = np.asarray(workload.prompt_tokens, dtype=float)
    output = np.asarray(workload.output_tokens, dtype=float)
    return BatchWork(
        prefill_s=prefill_s(model, prompt),
        decode_tokens=np.maximum(output - 1.0, 0.0),
        kv_tokens=prompt + output,
    )
