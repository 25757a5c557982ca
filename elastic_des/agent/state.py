"""The agent's state: a handful of bands of what the controller observes.

Tabular Q-learning needs a small, discrete state. Each component below is a
number computed from one :class:`~elastic_des.engine.observation.Observation`,
cut into bands by a list of increasing ``edges``: band ``k`` holds the values
``v`` with ``edges[k-1] < v <= edges[k]``, so a component with ``n`` edges
has ``n + 1`` bands and band = the number of edges strictly below ``v``.

Every component is a ratio or a per-replica count, so a state means the same
at 1 and at 100 req/s (a fleet ten times larger facing ten times the load is
in the same state): the agent trained on one scale acts on another.

============  =================================================  ===============  ==========================
component     value                                              default edges    bands
============  =================================================  ===============  ==========================
load          arrival rate × measured mean service time /        0.5, 0.8, 1.0    ≤.5, ≤.8, ≤1, overloaded
              ready slots (the offered load on what serves now)
queue         requests waiting per ready replica                 0, 2             none, ≤2, >2
queue_growth  change of that since the previous tick             0                not growing, growing
trend         forecast rate at the horizon / forecast rate       0.95, 1.05       down, flat, up
              for the next tick (the forecaster's own slope)
pending       replicas provisioning / ready replicas             0, 0.5           none, ≤half, more
burst         index of dispersion of per-second arrivals         2                Poisson-like, bursty
size          target replicas / the model size (Erlang C for     0.85, 1.0, 1.3   under, at, above, far above
              the forecast peak within the cold-start lead, or
              the observed rate if higher; measured service)
recent_move   direction of the last scaling action, if it        -1, 0 (fixed)    down, none, up
              was less than ``cooldown_s`` ago
============  =================================================  ===============  ==========================

The default encoding has 4 × 3 × 2 × 3 × 3 × 2 × 4 × 3 = 5184 states, many of
them unreachable (a growing queue that is empty). The values are computed
by :class:`~elastic_des.agent.mdp.AutoscaleMDP`; this module only bands and
numbers them, and describes the encoding for a model file.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from elastic_des.errors import ConfigError

COMPONENTS = ("load", "queue", "queue_growth", "trend", "pending", "burst", "size", "recent_move")

MEANING = {
    "load": "arrival rate x measured mean service time / ready slots",
    "queue": "requests waiting per ready replica",
    "queue_growth": "change of requests waiting per ready replica since the previous tick",
    "trend": "forecast rate at the horizon / forecast rate for the next tick",
    "pending": "replicas provisioning / ready replicas",
    "burst": "index of dispersion (variance / mean) of per-second arrival counts in the tick",
    "size": "target replicas / model size (Erlang C for the forecast peak within the cold-start lead "
            "or the observed rate, whichever is higher)",
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

    load: list[float] = field(default_factory=lambda: [0.5, 0.8, 1.0])
    queue: list[float] = field(default_factory=lambda: [0.0, 2.0])
    queue_growth: list[float] = field(default_factory=lambda: [0.0])
    trend: list[float] = field(default_factory=lambda: [0.95, 1.05])
    pending: list[float] = field(default_factory=lambda: [0.0, 0.5])
    burst: list[float] = field(default_factory=lambda: [2.0])
    size: list[float] = field(default_factory=lambda: [0.85, 1.0, 1.3])


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
