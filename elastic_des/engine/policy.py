"""The contract between the controller and a scaling policy.

At every decision tick the controller hands the policy an
:class:`~elastic_des.engine.observation.Observation` and gets back a
:class:`Decision`: the number of replicas the fleet should have
(provisioning or ready), the rule that produced it and the numbers behind
the rule, which the decision forensics turn into a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from elastic_des.engine.clairvoyant import OraclePlan
from elastic_des.engine.observation import Observation
from elastic_des.theory import replicas_for_slo


@dataclass(frozen=True)
class FutureRequests:
    """What a clairvoyant planner knows of the run's requests in advance: the
    queue's timeout (``inf``: none) and the clairvoyant plan computed for this
    world from every request's arrival and service time (replayed window by
    window from the seeded streams, never held whole)."""

    queue_timeout_s: float
    plan: Optional[OraclePlan] = None


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know before the run starts.

    peak_rate_rps is the scenario's planned peak: a static fleet is sized
    for it, as an operator sizes a fixed fleet from a capacity plan.
    initial_rate_rps is the planned peak rate until the first decision's
    replicas can serve (``tick_s + cold_start_s``): the traffic at the
    start, for which the fleet at t = 0 is sized as if it had been scaled
    before the run (a run does not start at the minimum fleet into a
    running service's traffic).
    fleet_field is the config path of the fleet, for error messages.
    mean_service_s, service_scv: the analytic prior of the service time per
    request (from the trace's own request sizes when replaying a timestamps
    trace); at decision time planners use the observation's estimate.
    future: the workload's future requests, for clairvoyant planners (the
    oracle); None when the workload cannot be read ahead.
    """

    fleet_field: str
    min_replicas: int
    max_replicas: int
    slots_per_replica: int
    mean_service_s: float
    cold_start_s: float
    tick_s: float
    slo_latency_s: float
    slo_target: float
    peak_rate_rps: float
    mean_rate_rps: float
    initial_rate_rps: float
    rng: np.random.Generator
    service_scv: float = 1.0
    future: Optional[FutureRequests] = None

    def replicas_for(self, rate_rps: float) -> int:
        """The Erlang C size (:func:`~elastic_des.theory.replicas_for_slo`)
        for ``rate_rps`` with the prior service time, unbounded by the fleet."""
        return replicas_for_slo(rate_rps, self.mean_service_s, self.slots_per_replica, self.slo_latency_s,
                                self.slo_target, max_replicas=10**6)


@dataclass(frozen=True)
class Decision:
    """A target replica count and why.

    rule: a short identifier of what fired (``above_band``, ``hold`` …).
    details: the numbers the rule used, by name (``utilization``, ``upper`` …).
    q_values: per-action values, for learning agents.
    """

    target: int
    rule: str
    details: dict[str, Any] = field(default_factory=dict)
    q_values: Optional[dict[str, float]] = None


class Policy:
    """Base class: override :meth:`initial_replicas` and :meth:`decide`.
    A ``clairvoyant`` policy reads ``context.future`` (the oracle)."""

    name = "policy"
    clairvoyant = False

    def reset(self, context: PolicyContext) -> None:
        self.context = context

    def initial_replicas(self) -> int:
        """Warm replicas at t=0: by default the Erlang C size for the
        starting traffic (``context.initial_rate_rps``), within the fleet's
        bounds, the same for every elastic policy."""
        return self.bounded(self.context.replicas_for(self.context.initial_rate_rps), {})

    def decide(self, obs: Observation) -> Decision:
        raise NotImplementedError

    def applied(self, obs: Observation, decided: int, target: int) -> None:
        """The target applied at this tick was ``target``, not the ``decided``
        one this policy returned (a counterfactual replay forcing another
        action). A policy that remembers its own actions (a cooldown, a
        rate limit, a learning agent's last move) makes that memory follow
        what happened; the default remembers nothing."""

    def bounded(self, target: int, details: dict[str, Any]) -> int:
        """``target`` within the fleet's bounds; a bound that bit is noted in
        ``details["bounded_by"]`` so the explanation can say so."""
        bounded = min(max(target, self.context.min_replicas), self.context.max_replicas)
        if bounded != target:
            details["bounded_by"] = "max_replicas" if bounded < target else "min_replicas"
        return bounded
