"""The agent's state: a handful of bands of what the controller observes.

Tabular Q-learning needs a small, discrete state. Each component below is a
number computed from one :class:`~elastic_des.engine.observation.Observation`,
cut into bands by a list of increasing ``edges``: band ``k`` holds the values
``v`` with ``edges[k-1] < v <= edges[k]``, so a component with ``n`` edges
has ``n + 1`` bands and band = the number of edges strictly below ``v``.

==============  ==============================================  ==================  =========================
component       value                                           default edges       bands
==============  ==============================================  ==================  =========================
utilization     busy / serving slots over the last tick         0.5, 0.7, 0.85      ≤.5, ≤.7, ≤.85, >.85
queue           requests waiting per ready replica              0, 2                none, ≤2, >2
trend           forecast rate at the horizon / forecast rate    0.95, 1.05          down, flat, up
                for the next tick (the forecaster's slope)
headroom        target replicas − replicas the SLO needs at     -2, -1, 0, 1        ≤-2, -1, 0, +1, ≥+2
                the forecast peak within the cold-start lead
pending         replicas still provisioning                     0                   none, some
recent_move     direction of the last scaling action, if it     -1, 0 (fixed)       down, none, up
                was less than ``cooldown_s`` ago
==============  ==============================================  ==================  =========================

The default encoding has 4 × 3 × 3 × 5 × 2 × 3 = 1080 states. The values are
computed by :class:`~elastic_des.agent.mdp.AutoscaleMDP`; this module only
bands and numbers them, and describes the encoding for a model file.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from elastic_des.errors import ConfigError

COMPONENTS = ("utilization", "queue", "trend", "headroom", "pending", "recent_move")

MEANING = {
    "utilization": "busy / serving slots over the last tick",
    "queue": "requests waiting per ready replica",
    "trend": "forecast rate at the horizon / forecast rate for the next tick",
    "headroom": "target replicas - replicas needed (Erlang C) for the forecast peak within the cold-start lead",
    "pending": "replicas provisioning",
    "recent_move": "direction (-1, 0, +1) of the last scaling action if less than cooldown_s ago, else 0",
}

# recent_move takes the values -1, 0, +1: these edges give it one band each.
RECENT_MOVE_EDGES = (-1.0, 0.0)


@dataclass
class StateConfig:
    """Band edges of the state components (see :mod:`elastic_des.agent.state`).

    Each list must be strictly increasing; a component with ``n`` edges has
    ``n + 1`` bands. A trained model only fits the encoding it was trained
    with: loading it under other edges is an error.
    """

    utilization: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.85])
    queue: list[float] = field(default_factory=lambda: [0.0, 2.0])
    trend: list[float] = field(default_factory=lambda: [0.95, 1.05])
    headroom: list[float] = field(default_factory=lambda: [-2.0, -1.0, 0.0, 1.0])
    pending: list[float] = field(default_factory=lambda: [0.0])


class StateEncoder:
    """Bands component values and numbers the band combinations 0 … n_states-1."""

    def __init__(self, edges: Mapping[str, Sequence[float]], field: str = "policy.state"):
        configurable = COMPONENTS[:-1]
        unknown = set(edges) - set(configurable)
        if unknown:
            raise ConfigError(f"{field}: unknown component(s) {sorted(unknown)}; expected {list(configurable)}")
        self.edges: dict[str, tuple[float, ...]] = {}
        for name in configurable:
            if name not in edges:
                raise ConfigError(f"{field}.{name}: missing band edges")
            values = tuple(float(e) for e in edges[name])
            if not values:
                raise ConfigError(f"{field}.{name} = []: needs at least one edge")
            if not all(math.isfinite(e) for e in values):
                raise ConfigError(f"{field}.{name} = {list(values)}: edges must be finite")
            if any(b <= a for a, b in zip(values, values[1:])):
                raise ConfigError(f"{field}.{name} = {list(values)}: edges must be strictly increasing")
            self.edges[name] = values
        self.edges["recent_move"] = RECENT_MOVE_EDGES
        self.sizes = tuple(len(self.edges[name]) + 1 for name in COMPONENTS)
        self.n_states = math.prod(self.sizes)
        # Mixed-radix place values: the first component varies slowest.
        self._place = tuple(math.prod(self.sizes[i + 1:]) for i in range(len(COMPONENTS)))

    @classmethod
    def from_config(cls, cfg: Any, field: str = "policy.state") -> "StateEncoder":
        """From a :class:`StateConfig`, a DictConfig or a plain mapping."""
        return cls({name: list(cfg[name]) if isinstance(cfg, Mapping) else list(getattr(cfg, name))
                    for name in COMPONENTS[:-1] if _has(cfg, name)}, field)

    def bands(self, values: Mapping[str, float]) -> tuple[int, ...]:
        """The band of each component's value."""
        out = []
        for name in COMPONENTS:
            value = values[name]
            if math.isnan(value):
                raise ValueError(f"state component {name} is NaN")
            out.append(bisect_left(self.edges[name], value))
        return tuple(out)

    def index(self, bands: Sequence[int]) -> int:
        """The state number of a band combination."""
        return sum(b * p for b, p in zip(bands, self._place))

    def unindex(self, state: int) -> tuple[int, ...]:
        """The band combination of a state number."""
        if not 0 <= state < self.n_states:
            raise ValueError(f"state = {state}: must be in [0, {self.n_states})")
        return tuple((state // p) % s for p, s in zip(self._place, self.sizes))

    def encode(self, values: Mapping[str, float]) -> int:
        return self.index(self.bands(values))

    def describe(self) -> dict:
        """The encoding as plain data, for a model file's metadata."""
        return {
            "components": [
                {"name": name, "edges": list(self.edges[name]), "bands": size, "meaning": MEANING[name]}
                for name, size in zip(COMPONENTS, self.sizes)
            ],
            "band_rule": "band k holds edges[k-1] < value <= edges[k]",
            "order": "row-major over components, first component slowest",
            "n_states": self.n_states,
        }


def _has(cfg: Any, name: str) -> bool:
    return name in cfg if isinstance(cfg, Mapping) else hasattr(cfg, name)
