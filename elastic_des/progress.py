"""A progress bar over simulated time, shown only to a person at a terminal."""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional

from tqdm.auto import tqdm


def interactive() -> bool:
    """True when stderr is a terminal and we are not under CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class SimTimeBar:
    """``with SimTimeBar(total_s, label) as on_tick: ... on_tick(now)``.

    The bar appears only after two seconds of wall time (tqdm's ``delay``),
    so short runs print nothing.
    """

    def __init__(self, total_s: float, label: str, enabled: bool = True):
        self.bar: Optional[tqdm] = None
        if enabled and interactive():
            self.bar = tqdm(total=round(total_s), desc=label, unit="sim-s", delay=2.0, leave=False)
        self._shown = 0

    def __enter__(self) -> Optional[Callable[[float], None]]:
        return self.update if self.bar is not None else None

    def update(self, now_s: float) -> None:
        step = round(now_s) - self._shown
        if step > 0:
            self.bar.update(step)
            self._shown += step

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
