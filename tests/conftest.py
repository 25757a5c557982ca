"""Shared fixtures: compose configs the way ``run.py`` does."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from elastic_des.app import CONF_DIR

# Short runs for tests: two hours of the default scenario, no progress bar,
# no report (tests/test_report.py covers it).
FAST = ("scenario.duration_s=7200", "output.progress=false", "output.report=false")


def compose_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def make_cfg():
    """``make_cfg("policy=static", ...)``: a composed config, fast defaults first."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(*FAST, *overrides)

    return make
