"""The forecaster interface: learn from each tick's observed rate, predict ahead.

A forecaster lives through a run as follows: it is built from its config
(``_target_``), ``reset`` with the controller's tick length, given the
monitoring history that precedes the run through ``warm_up``, and then fed
one observed rate per tick through ``update``, with ``predict`` asked after
each update for the rates of the next ticks.
"""

from __future__ import annotations

import numpy as np

from elastic_des.errors import ConfigError


class Forecaster:
    """Predicts the arrival rate (req/s) of the next ticks.

    ``update`` is called once per tick with the rate observed in that tick;
    ``predict(h)`` returns the rates expected in each of the next ``h`` ticks.
    """

    name = "forecaster"

    def reset(self, tick_s: float) -> None:
        """Forget the history; ticks are ``tick_s`` seconds long."""
        raise NotImplementedError

    def warm_up(self, history_rps: np.ndarray) -> None:
        """Take in the rates observed in the ticks before the run, oldest first.

        A real autoscaler starts with its monitoring history, so the default
        replays it through :meth:`update`: a seasonal forecaster then knows
        yesterday from the first tick on. Learned forecasters also train on it.
        Call it after :meth:`reset`.
        """
        for rate in as_rates(history_rps, "warm-up history"):
            self.update(rate)

    def update(self, rate_rps: float) -> None:
        raise NotImplementedError

    def predict(self, horizon: int) -> np.ndarray:
        raise NotImplementedError


def as_rates(values, what: str) -> np.ndarray:
    """``values`` as a 1-d float array of finite, non-negative rates."""
    rates = np.asarray(values, dtype=float)
    if rates.ndim != 1:
        raise ConfigError(f"{what}: must be a 1-d sequence of rates, got shape {rates.shape}")
    bad = ~np.isfinite(rates) | (rates < 0)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{what}[{index}] = {float(rates[index])!r}: rates must be finite and >= 0")
    return rates
