"""Schemas of a world: the served model, the replica that serves it and the
fleet's bounds and queue, and the static baseline world. Part of the run
config (:mod:`elastic_des.config`); ``conf/world/*.yaml`` set their values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING


@dataclass
class ModelConfig:
    """A served model and the replica that serves it.

    service_model ``tokens`` (the *slots* model): a replica holds
    ``slots_per_replica`` requests in service at once, each served
    independently in ``overhead_s + prompt/prefill_tokens_per_s +
    output/decode_tokens_per_s`` seconds.
    service_model ``exponential`` (slots too): exponential service with mean
    ``mean_service_s`` (for M/M/c validation; token counts are ignored).
    service_model ``batching``: continuous batching
    (:mod:`elastic_des.engine.batching`). A replica runs up to
    ``max_num_seqs`` sequences whose prompt plus output fits its
    ``kv_budget_tokens``; a prompt is prefilled at ``prefill_tokens_per_s``
    (null: instantly, no TTFT), stalling decode, and every decode step of
    ``step_base_s + step_per_seq_s * batch`` seconds gives each running
    sequence one token.
    Cost: ``gpus_per_replica * usd_per_gpu_hour``, billed per second from the
    start of provisioning to termination.
    """

    name: str = MISSING
    service_model: str = "tokens"
    prefill_tokens_per_s: Optional[float] = 5000.0
    decode_tokens_per_s: float = 40.0
    overhead_s: float = 0.0
    mean_service_s: float = 1.0
    slots_per_replica: int = 8
    step_base_s: float = 0.01
    step_per_seq_s: float = 0.0
    max_num_seqs: int = 256
    kv_budget_tokens: Optional[int] = None
    gpus_per_replica: int = 1
    usd_per_gpu_hour: float = 2.5
    cold_start_s: float = 120.0


@dataclass
class FleetConfig:
    """Bounds and queueing of a fleet of replicas.

    initial_replicas: ready at t=0 (null: the policy's initial target).
    queue_capacity: requests that may wait; a request that finds the queue
    full is dropped (null: unbounded).
    queue_timeout_s: a request that waits longer is dropped (null: never).
    """

    min_replicas: int = 1
    max_replicas: int = 64
    initial_replicas: Optional[int] = None
    queue_capacity: Optional[int] = 1000
    queue_timeout_s: Optional[float] = 60.0


@dataclass
class WorldConfig:
    """A served model on a fleet: the thing a policy sizes."""

    name: str = MISSING
    model: ModelConfig = MISSING
    fleet: FleetConfig = field(default_factory=FleetConfig)


@dataclass
class BaselineConfig:
    """The reference world of a dual-world run: a static fleet sized for peak.

    enabled: simulate it on the same arrivals as the policy's world (common
    random numbers), and report savings against it.
    world: its model and fleet (the ``world`` group, default ``llm``).
    replicas: its fixed size; null sizes it by Erlang C for the scenario's peak.
    """

    enabled: bool = True
    world: WorldConfig = MISSING
    replicas: Optional[int] = None
