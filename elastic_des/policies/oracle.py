"""The clairvoyant oracle: the limit every other policy is measured against.

It reads the workload's future requests (arrival and service times) before
the run, computes each tick's need (:func:`~elastic_des.engine.clairvoyant.tick_needs`:
the fewest replicas with which that tick's actual requests meet the SLO
target, by a Kiefer–Wolfowitz replay with the queue carried over) and the
minimum-cost schedule for those needs
(:func:`~elastic_des.engine.provisioning.min_cost_schedule`: each replica
level kept through an idle gap shorter than a cold start), then follows it.

A replica ordered at decision ``d`` (time ``d·tick_s``) is ready at
``d·tick_s + cold_start_s``, so tick ``j`` is the last one decision
``j - ceil(cold_start_s / tick_s)`` can still provision for, and nothing
needed before then can be released and reordered in time: the target at
decision ``d`` is the schedule's highest count over ticks ``d`` to
``d + ceil(cold_start_s / tick_s)``. The fleet at t = 0 covers ticks 0 to
``ceil(cold_start_s / tick_s)``. Ordering at tick granularity costs a little
more than the schedule (whose cost, ``cost/oracle_usd`` in every summary,
is computed analytically with replicas ready exactly when needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext
from elastic_des.errors import ConfigError


class OraclePolicy(Policy):
    name = "oracle"
    clairvoyant = True

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        if context.future is None or context.future.plan is None:
            raise ConfigError(
                "policy = oracle: the oracle needs the workload's future requests (arrival and service times) "
                "before the run starts, and this workload cannot be read ahead (its requests are generated as "
                "the simulation runs); use another policy, or a workload sampled up front"
            )
        self.plan = context.future.plan
        self.lead = math.ceil(context.cold_start_s / context.tick_s - 1e-9)

    def _target(self, tick: int) -> int:
        return int(self.plan.alive[tick:tick + self.lead + 1].max())

    def initial_replicas(self) -> int:
        return self.bounded(self._target(0), {})

    def decide(self, obs: Observation) -> Decision:
        decision_tick = obs.tick + 1  # the decision after tick i acts from the start of tick i + 1
        target = self._target(decision_tick)
        details = {
            "need": int(self.plan.needs[decision_tick]),  # decisions come only before the last tick
            "lead_ticks": self.lead,
            "scheduled": target,
        }
        return Decision(self.bounded(target, details), "oracle_schedule", details)


@dataclass
class OracleConfig:
    """The clairvoyant limit (no settings: it reads the future requests)."""

    _target_: str = "elastic_des.policies.oracle.OraclePolicy"
