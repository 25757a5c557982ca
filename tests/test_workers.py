"""Determinism across processes: the two-process dual world equals the serial one, bit for bit.

``run.workers=2`` runs the baseline world in a forked worker while the
candidate runs in the parent; the outputs (summary: its wall-clock
figures are in ``timing.json``; tick table, request table, decisions) must
be byte-identical to ``run.workers=1``.
"""

from __future__ import annotations

import os

import pytest

from elastic_des.app import run
from elastic_des.errors import ConfigError
from elastic_des.worlds import process_count, run_worlds
from test_determinism import TABLES, summary_bytes

SHORT = ("scenario.duration_s=3600", "output.report=false")  # both worlds, every table


@pytest.mark.parametrize("requests", ["true", "false"])
def test_determinism_two_processes_equal_serial_bit_for_bit(make_cfg, tmp_path, requests):
    folders = {}
    for workers in (1, 2):
        folders[workers] = tmp_path / f"workers_{workers}"
        run(make_cfg(*SHORT, f"output.requests={requests}", f"run.workers={workers}"), folders[workers])
    one, two = folders[1], folders[2]
    assert summary_bytes(one) == summary_bytes(two)
    tables = TABLES if requests == "true" else TABLES[:1]
    for table in (*tables, "decisions.jsonl"):
        assert (one / table).read_bytes() == (two / table).read_bytes(), table
    assert (requests == "true") == (two / "requests.parquet").exists()


def test_worker_runs_in_another_process_and_its_errors_reach_the_caller():
    pids = run_worlds([os.getpid, os.getpid], processes=2)
    assert pids[0] == os.getpid() and pids[1] != os.getpid()
    assert run_worlds([os.getpid, os.getpid], processes=1) == [os.getpid()] * 2

    def fails():
        raise ConfigError("world.fleet.max_replicas = 0: must be >= 1")

    with pytest.raises(ConfigError, match="max_replicas = 0"):
        run_worlds([os.getpid, fails], processes=2)


def test_process_count_follows_the_setting_and_the_worlds():
    assert process_count(1, 2) == 1
    assert process_count(2, 2) == 2
    assert process_count(2, 1) == 1  # no baseline world: nothing to run beside the candidate
    assert process_count("auto", 1) == 1
    assert process_count("auto", 2) in (1, 2)


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5"])
def test_bad_workers_name_the_field_and_value(make_cfg, tmp_path, value):
    with pytest.raises(ConfigError, match=rf"run\.workers = .*{value}"):
        run(make_cfg(f"run.workers={value}"), tmp_path)
