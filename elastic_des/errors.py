"""One error type for bad input, with messages that name the offending field.

Every validation in elastic_des raises :class:`ConfigError` (a ``ValueError``)
with the dotted config path, the value found and the constraint it broke,
so ``scenario.workload.base_rate_rps = -3.0: must be > 0`` is all a user needs
to fix a YAML file. Nothing is silently clamped.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """Bad input: a config value, a trace file or a model file."""


class ConfigWarning(UserWarning):
    """Input that runs but probably does not mean what it says (a spike after
    the end of the run, a trace without requests, an overload an unbounded
    queue absorbs): a warning naming the field, never silence."""


def require(condition: bool, field: str, value: Any, constraint: str) -> None:
    """Raise :class:`ConfigError` naming ``field`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{field} = {value!r}: {constraint}")


def require_positive(field: str, value: float) -> None:
    require(value is not None and value > 0, field, value, "must be > 0")


def require_non_negative(field: str, value: float) -> None:
    require(value is not None and value >= 0, field, value, "must be >= 0")
