"""Shared fixtures: compose configs the way ``run.py`` does."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from elastic_des.app import CONF_DIR

# Short runs for tests: two hours of the default scenario, no progress bar,
# no report (tests/test_report.py covers it).
# A batching replica of 8 sequences instead of the preset's 256, for tests that need a
# short run to scale: one full-size replica serves the default scenario's early hours alone.
SMALL_REPLICAS = "world.model.max_num_seqs=8"
# The slots model with the first version's 8B preset (16 slots, overhead + prompt/8000 +
# output/80 seconds per request): for tests whose expectations are Erlang C over slots.
SLOTS_WORLD = ("world.model.service_model=tokens", "world.model.slots_per_replica=16",
               "world.model.prefill_tokens_per_s=8000", "world.model.decode_tokens_per_s=80",
               "world.model.overhead_s=0.05")
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
