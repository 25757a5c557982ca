"""Building the objects a config names by ``_target_``, from an allow-list.

A ``policy`` or ``forecaster`` node names the class that implements it
(``_target_: elastic_des.policies.hpa.HPAPolicy``) and Hydra instantiates
it. A recorded config (a run folder's ``.hydra/config.yaml``) is data that
may come from someone else, so only the project's own classes may be built:
a ``_target_`` outside :data:`ALLOWED_TARGET_PREFIXES` is refused, naming
the key, before anything is called. The target must name a class defined in
a module of the project itself (``module.Class``), not anything reachable
through it (``elastic_des.policies.hpa.math.floor`` is refused too).
"""

from __future__ import annotations

import importlib
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from elastic_des.errors import ConfigError

# Modules whose classes a config may instantiate.
ALLOWED_TARGET_PREFIXES = ("elastic_des.policies.", "elastic_des.forecasters.", "elastic_des.agent.policy.")


def _is_project_class(target: Any) -> bool:
    """``target`` is ``<allowed module>.<Class>``, the class defined in that module."""
    if not (isinstance(target, str) and target.startswith(ALLOWED_TARGET_PREFIXES) and "." in target):
        return False
    module_name, _, name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)  # only modules of this package get here
    except ImportError:
        return False
    obj = getattr(module, name, None)
    return isinstance(obj, type) and obj.__module__ == module_name


def check_targets(node: Any, field: str) -> None:
    """Refuse any ``_target_`` in ``node`` (at any depth) outside the allow-list."""
    if hasattr(node, "items"):
        for key, value in node.items():
            path = f"{field}.{key}" if field else str(key)
            if key == "_target_" and not _is_project_class(value):
                raise ConfigError(
                    f"{path} = {value!r}: only the project's own classes can be built "
                    f"(a class of a module starting with {', '.join(ALLOWED_TARGET_PREFIXES)})"
                )
            check_targets(value, path)
    elif isinstance(node, (list, tuple)) or (hasattr(node, "__len__") and hasattr(node, "__getitem__") and not isinstance(node, str)):
        for i, value in enumerate(node):
            check_targets(value, f"{field}[{i}]")


def build(node: Any, field: str) -> Any:
    """Instantiate a ``_target_`` config node, naming ``field`` on failure."""
    check_targets(node, field)
    try:
        return instantiate(node)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(f"{field}: cannot build {node.get('_target_')!r}: {cause or exc}") from exc
