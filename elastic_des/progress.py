"""Progress of a long task: a bar for a person at a terminal, log lines otherwise.

At a terminal a tqdm bar shows progress in place. When stderr is not a
terminal (nohup, CI, a Hydra launcher, a pipe) a bar would either be hidden
or print garbage, and a task that says nothing for minutes looks hung, so
:class:`Progress` logs a line instead: ``<label>: 40% (64/160 ep), 1m12s
elapsed, ~1m48s left``, once every ``interval_s`` of wall time (30 s) or
every tenth of the work, whichever comes first, but never two lines within
``quiet_s`` (5 s) of each other or of the start: a task shorter than that
prints nothing, and a fast one only a few lines.

Progress is wall-clock information about the run, never part of its
results: nothing here touches a random stream or an output file.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Optional

log = logging.getLogger(__name__)


def interactive() -> bool:
    """True when stderr is a terminal and we are not under CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """``with Progress(total, label, unit) as p: ... p.advance_to(done)``.

    enabled: False shows nothing (``output.progress=false``).
    interval_s, quiet_s: see the module docstring (log lines only).
    """

    def __init__(self, total: float, label: str, unit: str, enabled: bool = True,
                 interval_s: float = 30.0, quiet_s: float = 5.0):
        if total < 0:
            raise ValueError(f"total = {total}: must be >= 0")
        self.total, self.label, self.unit = float(total), label, unit
        self.interval_s, self.quiet_s = interval_s, quiet_s
        self.bar = None
        self.logging = enabled and not interactive()
        if enabled and not self.logging:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=round(total), desc=label, unit=unit, delay=2.0, leave=False)
        self.done = 0.0
        self._start = time.monotonic()
        self._last_line = self._start
        self._last_tenth = 0
        self._shown = 0
        self._lines = 0
        # When the first advance came and how much was done by then: the rate
        # the time left is read from starts there, so setup before the work
        # (say, a clairvoyant plan before the simulation) does not inflate it.
        self._first: Optional[tuple[float, float]] = None
        self.postfix = ""

    @property
    def active(self) -> bool:
        """Whether anything is shown (callers may skip work that only feeds it)."""
        return self.bar is not None or self.logging

    def __enter__(self) -> "Progress":
        return self

    def update(self, n: float) -> None:
        """``n`` more units done."""
        self.advance_to(self.done + n)

    def advance_to(self, done: float) -> None:
        """``done`` units done in all (e.g. the simulated time reached)."""
        self.done = done
        if self.bar is not None:
            step = round(done) - self._shown
            if step > 0:
                self.bar.update(step)
                self._shown += step
        elif self.logging:
            now = time.monotonic()
            if self._first is None:
                self._first = (now, done)
            tenth = int(10 * done / self.total) if self.total > 0 else 10
            if now - self._last_line >= self.quiet_s and (tenth > self._last_tenth or now - self._last_line >= self.interval_s):
                self._line(now)

    def set_postfix(self, text: str) -> None:
        """A short note shown after the count (e.g. the latest evaluation)."""
        self.postfix = text
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def _line(self, now: float) -> None:
        elapsed = now - self._start
        share = self.done / self.total if self.total > 0 else 1.0
        left = f", ~{_clock(self._time_left(now))} left" if 0 < share < 1 else ""
        note = f"; {self.postfix}" if self.postfix else ""
        self._last_tenth = int(10 * share)
        log.info("%s: %d%% (%g/%g %s), %s elapsed%s%s", self.label, int(100 * share), round(self.done, 1),
                 round(self.total, 1), self.unit, _clock(elapsed), left, note)
        self._last_line = now
        self._lines += 1

    def _time_left(self, now: float) -> float:
        """The time the rest takes at the rate since the first advance (since the start before one)."""
        since, done_then = self._first if self._first is not None else (self._start, 0.0)
        if self.done <= done_then:
            since, done_then = self._start, 0.0
        return (now - since) * (self.total - self.done) / (self.done - done_then)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.logging and self._lines and self._last_tenth < 10:  # a task that reported progress says it finished
            self.done = max(self.done, self.total)
            self._line(time.monotonic())

    def __exit__(self, *exc) -> None:
        self.close()
