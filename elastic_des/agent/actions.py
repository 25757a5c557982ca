"""The agent's actions: targets relative to the fleet or to a model-based size.

An action is written as a short string in ``policy.actions``:

=========  =====================================================  ==========
spec       target                                                 name
=========  =====================================================  ==========
``hold``   the current target                                     ``hold``
``+n``     the current target plus ``n`` replicas (``-n``: minus)  ``up_n``
``xf``     ``ceil(f × model size)``, the model size being the      ``size_xf``
           Erlang C size for the forecast peak within the
           cold-start lead or the observed rate, whichever is
           higher (see :class:`~elastic_des.agent.mdp.AutoscaleMDP`)
=========  =====================================================  ==========

Sizes relative to the model let one step meet a surge at any scale: at
100 req/s ``x1.5`` adds tens of replicas, where ``+2`` would take many ticks
(each a cold start late). Deltas stay useful for small corrections. Every
target is kept within the fleet's bounds, so ``-1`` at the minimum is a hold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from elastic_des.errors import ConfigError

_STEP = re.compile(r"^[+-][1-9][0-9]*$")
_SIZE = re.compile(r"^x([0-9]+(\.[0-9]+)?)$")


@dataclass(frozen=True)
class Action:
    """One action: ``kind`` hold, step (``amount`` replicas) or size (``amount`` × model size)."""

    spec: str
    kind: str
    amount: float

    @property
    def name(self) -> str:
        if self.kind == "hold":
            return "hold"
        if self.kind == "step":
            return f"{'up' if self.amount > 0 else 'down'}_{abs(int(self.amount))}"
        return f"size_x{self.amount:g}"

    def target(self, current: int, model_size: int) -> int:
        """The target before the fleet's bounds."""
        if self.kind == "hold":
            return current
        if self.kind == "step":
            return current + int(self.amount)
        return math.ceil(self.amount * model_size - 1e-9)  # 1.2 × 5 is 6, not 7 by rounding error


def parse_action(spec: str, field: str) -> Action:
    text = str(spec).strip()
    if text == "hold":
        return Action(text, "hold", 0.0)
    if _STEP.match(text):
        return Action(text, "step", float(int(text)))
    match = _SIZE.match(text)
    if match and float(match.group(1)) > 0:
        return Action(text, "size", float(match.group(1)))
    raise ConfigError(f"{field} = {spec!r}: an action is 'hold', a replica step such as '+1' or '-1', "
                      "or a multiple of the model size such as 'x1.5' (factor > 0)")


def parse_actions(specs: Sequence[str], field: str = "policy.actions") -> list[Action]:
    """The actions of ``specs``; ConfigError naming the field on a bad or repeated one or no ``hold``."""
    values = list(specs)
    actions = [parse_action(s, f"{field}[{i}]") for i, s in enumerate(values)]
    names = [a.name for a in actions]
    if "hold" not in names:
        raise ConfigError(f"{field} = {values}: must include 'hold'")
    if len(set(names)) != len(names):
        raise ConfigError(f"{field} = {values}: must not repeat an action")
    return actions
