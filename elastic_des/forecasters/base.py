"""The forecaster interface: learn from each tick's observed rate, predict ahead."""

from __future__ import annotations

import numpy as np


class Forecaster:
    """Predicts the arrival rate (req/s) of the next ticks.

    ``update`` is called once per tick with the rate observed in that tick;
    ``predict(h)`` returns the rates expected in each of the next ``h`` ticks.
    """

    name = "forecaster"

    def reset(self, tick_s: float) -> None:
        """Forget the history; ticks are ``tick_s`` seconds long."""
        raise NotImplementedError

    def update(self, rate_rps: float) -> None:
        raise NotImplementedError

    def predict(self, horizon: int) -> np.ndarray:
        raise NotImplementedError
