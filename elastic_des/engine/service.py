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
from elastic_des.engine.workload import Workload


def mean_service_s(model, workload_cfg) -> float:
    """Analytic mean service time of ``model`` for the configured request sizes."""
    if model.service_model == "exponential":
        return float(model.mean_service_s)
    from elastic_des.engine.distributions import make_distribution

    prompt = make_distribution(workload_cfg.prompt_tokens, "scenario.workload.prompt_tokens").mean
    output = make_distribution(workload_cfg.output_tokens, "scenario.workload.output_tokens").mean
    return model.overhead_s + prompt / model.prefill_tokens_per_s + output / model.decode_tokens_per_s


def service_prior(model, workload_cfg, workload: Workload, service_s: np.ndarray) -> tuple[float, float]:
    """The planners' prior ``(mean, SCV)`` of the service time per request.

    A timestamps trace brings its own request sizes, so its prior is the
    mean and SCV of the trace's service times on ``model`` (``service_s``);
    otherwise it is analytic: for the token model
    ``overhead + P/prefill + O/decode`` with independent sizes ``P`` and
    ``O`` has variance ``Var(P)/prefill² + Var(O)/decode²`` (the rounding of
    sizes to whole tokens ignored); an exponential service has SCV 1.
    """
    if workload.sizes_from_trace and model.service_model != "exponential" and len(service_s):
        mean = float(np.mean(service_s))
        return mean, float(np.var(service_s) / mean**2) if mean > 0 else 0.0
    mean = mean_service_s(model, workload_cfg)
    if model.service_model == "exponential":
        return mean, 1.0
    from elastic_des.engine.distributions import make_distribution

    prompt = make_distribution(workload_cfg.prompt_tokens, "scenario.workload.prompt_tokens")
    output = make_distribution(workload_cfg.output_tokens, "scenario.workload.output_tokens")
    variance = prompt.variance / model.prefill_tokens_per_s**2 + output.variance / model.decode_tokens_per_s**2
    return mean, variance / mean**2


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
