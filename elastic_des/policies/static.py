"""A fixed fleet, sized once for the planned peak.

By default the size is the fewest replicas that meet the SLO at the
scenario's peak rate according to Erlang C (:func:`replicas_for_slo`); set
``replicas`` to fix it by hand. This is how a fleet serving a large model is
run when cold starts of minutes make autoscaling impractical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from elastic_des.errors import ConfigError
from elastic_des.engine.observation import Observation
from elastic_des.engine.policy import Decision, Policy, PolicyContext


class StaticPolicy(Policy):
    name = "static"

    def __init__(self, replicas: Optional[int] = None, field: str = "policy.replicas"):
        if replicas is not None and replicas < 1:
            raise ConfigError(f"{field} = {replicas}: must be >= 1 or null (size for the peak)")
        self.replicas = replicas
        self.field = field

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        if self.replicas is not None:
            self.size = self.replicas
        else:
            self.size = context.replicas_for(context.peak_rate_rps)
        if not context.min_replicas <= self.size <= context.max_replicas:
            raise ConfigError(
                f"{self.field} = {self.size}: outside {context.fleet_field} [min_replicas, max_replicas] = "
                f"[{context.min_replicas}, {context.max_replicas}]"
                + ("" if self.replicas is not None else f" (sized by Erlang C for the peak {context.peak_rate_rps:.1f} req/s)")
            )

    def initial_replicas(self) -> int:
        return self.size

    def decide(self, obs: Observation) -> Decision:
        return Decision(self.size, "static", {"replicas": self.size, "peak_rate_rps": self.context.peak_rate_rps})


@dataclass
class StaticConfig:
    _target_: str = "elastic_des.policies.static.StaticPolicy"
    replicas: Optional[int] = None
