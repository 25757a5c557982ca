"""Progress of long tasks: silent when short, steady log lines when no terminal."""

from __future__ import annotations

import logging

import pytest

from elastic_des import progress as progress_module
from elastic_des.progress import Progress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    monkeypatch.setenv("CI", "true")  # not interactive: log lines, no bar
    return fake


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "elastic_des.progress"]


def test_short_task_prints_nothing(clock, caplog):
    caplog.set_level(logging.INFO, logger="elastic_des.progress")
    with Progress(10, "job", "ep") as p:
        for _ in range(10):
            clock.now += 0.4
            p.update(1)
    assert _lines(caplog) == []


def test_long_task_logs_every_tenth_or_interval_and_a_final_line(clock, caplog):
    caplog.set_level(logging.INFO, logger="elastic_des.progress")
    with Progress(100, "training episodes", "ep", interval_s=30.0) as p:
        for step in range(100):
            clock.now += 1.0  # 100 s in all: a line per tenth after the 5 s quiet period
            p.update(1)
            if step == 50:
                p.set_postfix("eval_reward=1.0")
    lines = _lines(caplog)
    assert lines[0] == "training episodes: 10% (10/100 ep), 10s elapsed, ~1m30s left"
    assert len(lines) == 10  # 10%, 20%, ..., 100%: no closing line repeats the 100%
    assert lines[-1] == "training episodes: 100% (100/100 ep), 1m40s elapsed; eval_reward=1.0"


def test_time_left_is_read_from_the_work_not_the_setup_before_it(clock, caplog):
    caplog.set_level(logging.INFO, logger="elastic_des.progress")
    with Progress(100, "sim", "sim-s", interval_s=30.0) as p:
        clock.now = 600.0  # ten minutes of setup before the first advance
        p.advance_to(0.0)
        for _ in range(10):
            clock.now += 1.0
            p.update(1)
    lines = _lines(caplog)
    assert lines[0] == "sim: 0% (0/100 sim-s), 10m00s elapsed"  # the setup is over: the work begins
    # 10 units in the 10 s since the work began: 90 s left, not 10 min x 9
    assert lines[1] == "sim: 10% (10/100 sim-s), 10m10s elapsed, ~1m30s left"


def test_fast_task_logs_no_two_lines_within_the_quiet_period(clock, caplog):
    caplog.set_level(logging.INFO, logger="elastic_des.progress")
    with Progress(100, "sim", "sim-s") as p:
        for _ in range(100):
            clock.now += 0.12  # 12 s in all
            p.update(1)
    lines = _lines(caplog)
    # at 5 s and 10 s, and the closing line
    assert [line.split(":")[1].split("(")[0].strip() for line in lines] == ["42%", "84%", "100%"]


def test_slow_task_logs_at_the_interval_between_tenths(clock, caplog):
    caplog.set_level(logging.INFO, logger="elastic_des.progress")
    with Progress(1000, "sim", "sim-s", interval_s=30.0) as p:
        for step in range(60):  # 0.1% of the work per 30 s: no tenth is crossed
            clock.now += 30.0
            p.advance_to(step + 1)
    lines = _lines(caplog)
    assert len(lines) == 61  # one per 30 s interval (no tenth is crossed) and the closing line


def test_disabled_progress_shows_nothing(clock, caplog):
    caplog.set_level(logging.INFO, logger="elastic_des.progress")
    with Progress(10, "job", "ep", enabled=False) as p:
        assert not p.active
        clock.now += 100
        p.update(10)
    assert _lines(caplog) == []


def test_negative_total_is_refused():
    with pytest.raises(ValueError, match="total = -1"):
        Progress(-1, "x", "ep", enabled=False)
