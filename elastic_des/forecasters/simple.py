"""Classical forecasters: simple moving average, EWMA and seasonal naive.

They predict a flat line at their current estimate (SMA, EWMA) or repeat
the values seen one season ago (seasonal naive), which is the reference any
learned forecaster must beat.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from elastic_des.errors import require, require_positive
from elastic_des.engine.forecast import Forecaster


class SMAForecaster(Forecaster):
    """Mean of the last ``window`` observed rates."""

    name = "sma"

    def __init__(self, window: int = 5):
        require(window >= 1, "forecaster.window", window, "must be >= 1")
        self.window = window
        self.history: deque[float] = deque(maxlen=window)

    def reset(self, tick_s: float) -> None:
        self.history.clear()

    def update(self, rate_rps: float) -> None:
        self.history.append(float(rate_rps))

    def predict(self, horizon: int) -> np.ndarray:
        level = float(np.mean(self.history)) if self.history else 0.0
        return np.full(horizon, level)


class EWMAForecaster(Forecaster):
    """Exponentially weighted moving average with smoothing ``alpha``."""

    name = "ewma"

    def __init__(self, alpha: float = 0.3):
        require(0 < alpha <= 1, "forecaster.alpha", alpha, "must be in (0, 1]")
        self.alpha = alpha
        self.level: float | None = None

    def reset(self, tick_s: float) -> None:
        self.level = None

    def update(self, rate_rps: float) -> None:
        rate_rps = float(rate_rps)
        self.level = rate_rps if self.level is None else self.alpha * rate_rps + (1 - self.alpha) * self.level

    def predict(self, horizon: int) -> np.ndarray:
        return np.full(horizon, 0.0 if self.level is None else self.level)


class SeasonalNaiveForecaster(Forecaster):
    """The rate observed at the same time one ``period_s`` ago.

    Until a full season has been seen it falls back to the last observation.
    """

    name = "seasonal_naive"

    def __init__(self, period_s: float = 86_400.0):
        require_positive("forecaster.period_s", period_s)
        self.period_s = period_s
        self.history: list[float] = []
        self.period_ticks = 1

    def reset(self, tick_s: float) -> None:
        self.period_ticks = max(1, int(round(self.period_s / tick_s)))
        self.history = []

    def update(self, rate_rps: float) -> None:
        self.history.append(float(rate_rps))

    def predict(self, horizon: int) -> np.ndarray:
        if not self.history:
            return np.zeros(horizon)
        n, p = len(self.history), self.period_ticks
        # Tick n + k (k = 0 .. horizon-1) repeats tick n + k - p, one season back.
        past = np.arange(n, n + horizon) - p
        while (past >= n).any():
            past = np.where(past >= n, past - p, past)
        # Only the ticks it repeats, not the whole history: an array of that each
        # tick would make a month's run quadratic in its ticks.
        history = self.history
        return np.array([history[i] if i >= 0 else history[-1] for i in past.tolist()])


@dataclass
class SMAConfig:
    """window: ticks averaged."""

    _target_: str = "elastic_des.forecasters.simple.SMAForecaster"
    window: int = 5


@dataclass
class EWMAConfig:
    """alpha: weight of the newest rate, in (0, 1]."""

    _target_: str = "elastic_des.forecasters.simple.EWMAForecaster"
    alpha: float = 0.3


@dataclass
class SeasonalNaiveConfig:
    """period_s: the season (a day by default), in seconds."""

    _target_: str = "elastic_des.forecasters.simple.SeasonalNaiveForecaster"
    period_s: float = 86_400.0
