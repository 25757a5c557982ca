"""A closed-loop load test of one batching replica, as ``vllm bench serve`` runs it.

``concurrency`` clients each send a request and, when it finishes, the next
one, until ``requests`` have been sent (``vllm bench serve --max-concurrency
C --num-prompts N``; with ``C = N`` every request is sent at once, as with
``--request-rate inf`` and no concurrency limit). Requests the replica
cannot admit yet (``max_num_seqs`` or its KV budget) wait in FIFO order.
The result is what the benchmark prints: output throughput (generated
tokens over the benchmark's duration), mean and median TPOT, mean TTFT.
This is how the calibrated world presets are checked against published
measurements (``tests/test_presets.py``, ``benchmarks/serving.py``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from elastic_des.engine.batching import BatchingPool
from elastic_des.engine.records import RequestStore
from elastic_des.engine.slo import tpot_s


@dataclass(frozen=True)
class LoadTestResult:
    concurrency: int
    requests: int
    output_tokens_per_s: float
    tpot_mean_s: float
    tpot_median_s: float
    ttft_mean_s: float
    duration_s: float


def closed_loop(model, concurrency: int, requests: int, prompt_tokens: float, output_tokens: float) -> LoadTestResult:
    """Run the load test on one replica of the batching ``model`` (a ``ModelConfig``)
    with every request of ``prompt_tokens`` in and ``output_tokens`` out."""
    if not 1 <= concurrency <= requests:
        raise ValueError(f"concurrency = {concurrency}: must be in [1, requests = {requests}]")
    prompt = np.full(requests, float(prompt_tokens))
    output = np.full(requests, float(output_tokens))
    env = simpy.Environment()
    rate = model.prefill_tokens_per_s
    pool = BatchingPool(
        env, max_num_seqs=model.max_num_seqs, cold_start_s=0.0, step_base_s=model.step_base_s,
        step_per_seq_s=model.step_per_seq_s, kv_budget_tokens=model.kv_budget_tokens,
    )
    work = RequestStore.of(first_tokens=True, arrival=np.zeros(requests),
                           prefill=prompt / rate if rate is not None else np.zeros(requests),
                           decode=np.maximum(output - 1.0, 0.0), kv=prompt + output)
    work.load_until(np.inf)
    pool.serve(work)
    if np.any(prompt + output > pool.kv_budget):
        raise ValueError(f"a request of {prompt_tokens:g} + {output_tokens:g} tokens exceeds kv_budget_tokens")
    sent_s = np.full(requests, np.nan)
    finish_s = np.full(requests, np.nan)
    waiting: deque = deque()  # (deadline, request): the shape of the dispatcher's queue, never expiring
    pool.queue = waiting
    sent = 0

    def send() -> None:
        nonlocal sent
        i, sent = sent, sent + 1
        sent_s[i] = env.now
        replica = pool.acquire(i)
        if replica is None:
            waiting.append((np.inf, i))
        else:
            pool.start_service(i, replica)

    def hand_over(replica) -> bool:
        if not waiting or not pool.reserve(waiting[0][1], replica):
            return False
        pool.start_service(waiting.popleft()[1], replica)
        return True

    def complete(i: int, replica) -> bool:
        finish_s[i] = env.now
        if sent < requests:
            send()
        return replica is not None and hand_over(replica)

    pool.on_complete = complete
    pool.on_free_slot = hand_over
    pool.start(1)
    for _ in range(concurrency):
        send()
    env.run()
    first = np.asarray(pool.first_token_s)
    tpot = tpot_s(first, finish_s, output)
    duration = float(np.nanmax(finish_s))
    return LoadTestResult(
        concurrency=concurrency, requests=requests, output_tokens_per_s=float(output.sum() / duration),
        tpot_mean_s=float(np.nanmean(tpot)), tpot_median_s=float(np.nanmedian(tpot)),
        ttft_mean_s=float(np.mean(first - sent_s)), duration_s=duration,
    )
