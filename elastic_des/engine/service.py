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
the largest batch it should run: ``max_num_seqs``, at most the number of
mean requests (prompt + output) its KV budget holds, at most the batch whose
step time still meets a TPOT objective, and at most the batch at which a
request of the SLO's quantile of output length still meets the latency
budget. At that batch its throughput is
``X = c / (d * t_step(c) + c * p)`` requests/s (``d`` mean decode tokens,
``p`` mean prefill seconds: decode runs at ``c / t_step(c)`` tokens/s in the
share of time not spent prefilling, ``1 - X p``), so each "slot" serves a
request in ``S = c / X = d * t_step(c) + c * p`` seconds. This is the
replica's throughput at full load, where sizing matters; at lighter load
requests run faster than ``S``, so the plan errs on the safe side. At full
load a request of ``n`` decode tokens takes about ``S * n / d`` (decode gets
the share ``d t_step(c) / S`` of the time), which caps ``c`` once more: the
request at the SLO's quantile of output lengths must finish in the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from elastic_des import rng as rng_streams
from elastic_des.engine.distributions import make_distribution

SLOT_MODELS = ("tokens", "exponential")
SERVICE_MODELS = SLOT_MODELS + ("batching",)


def _size_distributions(workload_cfg):
    return (make_distribution(workload_cfg.prompt_tokens, "scenario.workload.prompt_tokens"),
            make_distribution(workload_cfg.output_tokens, "scenario.workload.output_tokens"))


def _mean_sizes(workload_cfg) -> tuple[float, float]:
    prompt, output = _size_distributions(workload_cfg)
    return prompt.mean, output.mean


def step_s(model, batch: float) -> float:
    """Duration of one decode step of a batch of ``batch`` sequences."""
    return model.step_base_s + model.step_per_seq_s * batch


def prefill_s(model, prompt_tokens):
    """Prefill seconds of prompts of ``prompt_tokens`` (0 without a prefill rate)."""
    if model.prefill_tokens_per_s is None:
        return prompt_tokens * 0.0
    return prompt_tokens / model.prefill_tokens_per_s


@dataclass(frozen=True)
class ServingPlan:
    """A replica as the Erlang C planners see it: ``slots`` servers, each
    serving a request in ``mean_service_s`` on average; ``latency_s`` is the
    end-to-end budget they size against. ``capacity_rps`` is what a full
    replica serves, ``slots / mean_service_s``."""

    slots: int
    mean_service_s: float
    latency_s: float

    @property
    def capacity_rps(self) -> float:
        return self.slots / self.mean_service_s


def serving_plan(model, workload_cfg, slo) -> ServingPlan:
    """The planning view of ``model`` for requests of ``workload_cfg`` under ``slo``.

    The latency budget is the end-to-end SLO, tightened by a TTFT SLO (the
    TTFT budget plus the mean decode time); with neither set, the mean
    service time itself (no room to wait). A batching replica's batch ``c``
    is capped as in the module docs, and further so that a request whose
    output is at the SLO's target quantile of output lengths (the 99th
    percentile for a 0.99 target) still finishes within that budget at full
    load: ``S(c) * d_q / d_mean <= budget``.
    """
    if model.service_model in SLOT_MODELS:
        service = mean_service_s(model, workload_cfg)
        return ServingPlan(model.slots_per_replica, service, _latency_budget(slo, service, service))
    prompt, output = _mean_sizes(workload_cfg)
    decode_tokens, prefill = max(output - 1.0, 0.0), float(prefill_s(model, prompt))
    batch = model.max_num_seqs
    if model.kv_budget_tokens is not None:
        batch = min(batch, max(1, int(model.kv_budget_tokens // (prompt + output))))
    if slo.tpot_s is not None and model.step_per_seq_s > 0:
        batch = min(batch, max(1, math.floor((slo.tpot_s - model.step_base_s) / model.step_per_seq_s)))

    def service_at(c: int) -> float:  # S(c) = d t_step(c) + c p
        return decode_tokens * step_s(model, c) + c * prefill

    # A request's time at full load grows with its decode length, S(c) d / d_mean
    # (module docs): the one at the SLO's quantile of output lengths must fit the budget.
    budget = _latency_budget(slo, service_at(1), decode_tokens * step_s(model, 1))
    output_q = max(_size_distributions(workload_cfg)[1].quantile(slo.target_compliance) - 1.0, 1.0)
    allowed = budget * max(decode_tokens, 1.0) / max(output_q, decode_tokens, 1.0)
    per_seq = decode_tokens * model.step_per_seq_s + prefill
    if per_seq > 0:
        batch = min(batch, max(1, math.floor((allowed - decode_tokens * model.step_base_s) / per_seq)))
    return ServingPlan(int(batch), float(service_at(batch)), _latency_budget(slo, service_at(batch),
                                                                             decode_tokens * step_s(model, batch)))


def _latency_budget(slo, service: float, decode: float) -> float:
    budgets = [b for b in (slo.latency_s, None if slo.ttft_s is None else slo.ttft_s + decode) if b is not None]
    return float(min(budgets)) if budgets else float(service)


def mean_service_s(model, workload_cfg) -> float:
    """Analytic mean service time of a slots ``model`` for the configured request sizes."""
    if model.service_model == "exponential":
        return float(model.mean_service_s)
    prompt, output = _mean_sizes(workload_cfg)
    return model.overhead_s + prompt / model.prefill_tokens_per_s + output / model.decode_tokens_per_s


def service_prior(model, workload_cfg, workload, service_s: Optional[np.ndarray],
                  plan: ServingPlan) -> tuple[float, float]:
    """The planners' prior ``(mean, SCV)`` of the service time per request.

    A timestamps trace brings its own request sizes (both, or one of them
    when the other's column is null and it is drawn), so its prior is the
    mean and SCV of the replayed requests' service times on ``model``
    (``service_s``, from :func:`planning_service_times`; None for other
    workloads): the configured distributions do not describe the trace's
    sizes. Otherwise (a trace's arrivals with both sizes drawn, too) it is
    analytic. For the
    token model ``overhead + P/prefill + O/decode`` with independent sizes
    ``P`` and ``O`` has variance ``Var(P)/prefill² + Var(O)/decode²``; for a
    batching replica planned at batch ``c``, ``S = (O-1) t_step(c) + c P/prefill``
    has variance ``t_step(c)² Var(O) + (c/prefill)² Var(P)`` (the rounding of
    sizes to whole tokens ignored); an exponential service has SCV 1.
    """
    if workload.sizes_from_trace and model.service_model != "exponential" and service_s is not None and len(service_s):
        mean = float(np.mean(service_s))
        return mean, float(np.var(service_s) / mean**2) if mean > 0 else 0.0
    if model.service_model == "exponential":
        return float(model.mean_service_s), 1.0
    prompt, output = _size_distributions(workload_cfg)
    if model.service_model == "batching":
        mean = plan.mean_service_s
        per_prompt_token = 0.0 if model.prefill_tokens_per_s is None else plan.slots / model.prefill_tokens_per_s
        variance = step_s(model, plan.slots) ** 2 * output.variance + per_prompt_token**2 * prompt.variance
    else:
        mean = mean_service_s(model, workload_cfg)
        variance = prompt.variance / model.prefill_tokens_per_s**2 + output.variance / model.decode_tokens_per_s**2
    return mean, variance / mean**2


def planning_service_times(model, requests, plan: ServingPlan, rng: np.random.Generator) -> np.ndarray:
    """Each request's service time as the Erlang C planners count it.

    On a slots model it is the request's real service time
    (:func:`service_times`). On a batching replica, where the time a request
    spends in service depends on the batch beside it, it is the request's
    share of a full-load replica planned at batch ``c`` (module docs):
    ``S_i = d_i t_step(c) + c p_i`` for its own decode tokens ``d_i`` and
    prefill seconds ``p_i``, whose mean is the plan's ``S``. The controller's
    service-time estimator reads these for the requests that completed, so
    the planners follow the request sizes the fleet actually serves; the
    oracle replays them on ``c`` servers per replica.
    """
    return request_columns(model, requests, plan, rng)["planning"]


def service_times(model, requests, rng: np.random.Generator) -> np.ndarray:
    """Service time in seconds of every request of ``requests`` (prompt and
    output tokens) on a slots ``model``; ``rng`` is the world's stream of unit
    exponentials (drawn in order window after window, so the draws do not
    depend on how the run is cut into windows)."""
    if model.service_model == "exponential":
        return rng.exponential(1.0, len(requests.prompt_tokens)) * model.mean_service_s
    return (
        model.overhead_s
        + requests.prompt_tokens / model.prefill_tokens_per_s
        + requests.output_tokens / model.decode_tokens_per_s
    )


def service_stream(seed: int) -> np.random.Generator:
    """The stream of :func:`service_times` for run seed ``seed`` (shared by both worlds)."""
    return rng_streams.stream(seed, "service_unit_exponential")


def request_columns(model, requests, plan: ServingPlan, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The columns a world of ``model`` needs for a window of ``requests``
    (a :class:`~elastic_des.engine.windows.RequestBatch`), as a
    :class:`~elastic_des.engine.records.RequestStore` loads them: ``arrival``,
    ``prompt``, ``output``, ``planning`` (:func:`planning_service_times`),
    and the service model's own: ``service`` and (with tokens) ``offset``
    (:func:`first_token_offsets`) on a slots model; the
    :class:`BatchWork` ``prefill``, ``decode``, ``kv`` and ``too_long``
    (larger than a replica's KV budget) on a batching one."""
    columns = {"arrival": requests.arrival_s, "prompt": requests.prompt_tokens, "output": requests.output_tokens}
    if model.service_model != "batching":
        service = service_times(model, requests, rng)
        columns.update(service=service, planning=service)
        if model.service_model != "exponential":
            columns["offset"] = first_token_offsets(model, requests)
        return columns
    work = batch_work(model, requests)
    columns.update(prefill=work.prefill_s, decode=work.decode_tokens, kv=work.kv_tokens,
                   planning=work.decode_tokens * step_s(model, plan.slots) + plan.slots * work.prefill_s)
    if model.kv_budget_tokens is not None:
        columns["too_long"] = work.kv_tokens > model.kv_budget_tokens
    return columns


def first_token_offsets(model, requests) -> np.ndarray:
    """Seconds from the start of service to the first token on a slots ``model``
    with tokens (its prefill and one decoded token)."""
    return model.overhead_s + requests.prompt_tokens / model.prefill_tokens_per_s + 1.0 / model.decode_tokens_per_s


@dataclass(frozen=True)
class BatchWork:
    """The work of each request on a batching model: seconds of prefill, decode
    steps after the first token (which the prefill produces), and the KV-cache
    tokens it reserves while admitted (its prompt plus its whole output: see
    :mod:`elastic_des.engine.batching`)."""

    prefill_s: np.ndarray
    decode_tokens: np.ndarray
    kv_tokens: np.ndarray


def batch_work(model, requests) -> BatchWork:
    prompt = np.asarray(requests.prompt_tokens, dtype=float)
    output = np.asarray(requests.output_tokens, dtype=float)
    return BatchWork(
        prefill_s=prefill_s(model, prompt),
        decode_tokens=np.maximum(output - 1.0, 0.0),
        kv_tokens=prompt + output,
    )
