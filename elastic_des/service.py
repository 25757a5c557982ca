"""How long a replica slot takes to serve a request.

Service times are computed for the whole stream at once, before the
simulation, from the request sizes (token model) or from a shared stream of
unit exponentials (M/M/c validation). Either way the same request gets a
service time that depends only on its size and the model, so two worlds
replaying one stream differ only in capacity (common random numbers).
"""

from __future__ import annotations

import numpy as np

from elastic_des import rng as rng_streams
from elastic_des.errors import ConfigError, require_non_negative, require_positive
from elastic_des.workload import Workload


def mean_service_s(model, workload_cfg) -> float:
    """Analytic mean service time of ``model`` for the configured request sizes."""
    if model.service_model == "exponential":
        return float(model.mean_service_s)
    from elastic_des.distributions import make_distribution

    prompt = make_distribution(workload_cfg.prompt_tokens, "scenario.workload.prompt_tokens").mean
    output = make_distribution(workload_cfg.output_tokens, "scenario.workload.output_tokens").mean
    return model.overhead_s + prompt / model.prefill_tokens_per_s + output / model.decode_tokens_per_s


def validate_model(model, field: str) -> None:
    require_positive(f"{field}.slots_per_replica", model.slots_per_replica)
    require_positive(f"{field}.gpus_per_replica", model.gpus_per_replica)
    require_non_negative(f"{field}.usd_per_gpu_hour", model.usd_per_gpu_hour)
    require_non_negative(f"{field}.cold_start_s", model.cold_start_s)
    if model.service_model == "exponential":
        require_positive(f"{field}.mean_service_s", model.mean_service_s)
    elif model.service_model == "tokens":
        require_positive(f"{field}.prefill_tokens_per_s", model.prefill_tokens_per_s)
        require_positive(f"{field}.decode_tokens_per_s", model.decode_tokens_per_s)
        require_non_negative(f"{field}.overhead_s", model.overhead_s)
    else:
        raise ConfigError(f"{field}.service_model = {model.service_model!r}: must be 'tokens' or 'exponential'")


def service_times(model, workload: Workload, seed: int) -> np.ndarray:
    """Service time in seconds of every request of ``workload`` on ``model``."""
    if model.service_model == "exponential":
        unit = rng_streams.stream(seed, "service_unit_exponential").exponential(1.0, len(workload))
        return unit * model.mean_service_s
    return (
        model.overhead_s
        + workload.prompt_tokens / model.prefill_tokens_per_s
        + workload.output_tokens / model.decode_tokens_per_s
    )
