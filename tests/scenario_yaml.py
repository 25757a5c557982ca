"""Scenario YAML files written by a test, composed the way a user's are.

A user adds ``scenarios/<name>.yaml`` (its keys checked against ``ScenarioConfig``); a test
writes one under ``<tmp>/scenario/`` and puts ``<tmp>`` on Hydra's search
path. This is also the only way to set ``scenario.workload.trace`` (an
optional structured node, null by default): OmegaConf cannot merge a
command-line override into a null structured node (omry/omegaconf#1035).
"""

from __future__ import annotations

from pathlib import Path

import yaml


def scenario_overrides(folder: Path, name: str, body: dict) -> list[str]:
    """Write ``<folder>/scenario/<name>.yaml`` and return the overrides that select it."""
    path = Path(folder) / "scenario" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": name, **body}, sort_keys=False))
    return [f"hydra.searchpath=[file://{Path(folder).resolve()}]", f"scenario={name}"]
