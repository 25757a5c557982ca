"""Random quantities as objects with ``sample(rng, size)``, an analytic ``mean`` and ``quantile``.

Following Ciw, a distribution knows its own mean so tests can compare samples
against theory, and it never owns a generator: the caller passes the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from elastic_des.errors import ConfigError, require, require_non_negative, require_positive


class Distribution:
    """A non-negative random variable."""

    mean: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def quantile(self, q: float) -> float:
        """The value below which a share ``q`` (in (0, 1)) of samples falls."""
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Distribution):
    value: float

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value, dtype=float)

    def quantile(self, q: float) -> float:
        return self.value


@dataclass(frozen=True)
class Exponential(Distribution):
    mean: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)

    def quantile(self, q: float) -> float:
        return -self.mean * math.log1p(-q)


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Log-normal parameterised by its mean and coefficient of variation."""

    mean: float
    cv: float

    def _log_parameters(self) -> tuple[float, float]:
        sigma2 = math.log1p(self.cv**2)
        return math.log(self.mean) - sigma2 / 2.0, math.sqrt(sigma2)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        mu, sigma = self._log_parameters()
        return rng.lognormal(mu, sigma, size)

    def quantile(self, q: float) -> float:
        mu, sigma = self._log_parameters()
        return math.exp(mu + sigma * NormalDist().inv_cdf(q))


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def quantile(self, q: float) -> float:
        return self.low + q * (self.high - self.low)


def make_distribution(cfg, field: str) -> Distribution:
    """Build a distribution from a ``DistributionConfig``; ``field`` names it in errors."""
    kind = cfg.kind
    if kind == "constant":
        require_non_negative(f"{field}.mean", cfg.mean)
        return Constant(float(cfg.mean))
    if kind == "exponential":
        require_positive(f"{field}.mean", cfg.mean)
        return Exponential(float(cfg.mean))
    if kind == "lognormal":
        require_positive(f"{field}.mean", cfg.mean)
        require_positive(f"{field}.cv", cfg.cv)
        return LogNormal(float(cfg.mean), float(cfg.cv))
    if kind == "uniform":
        require_non_negative(f"{field}.low", cfg.low)
        require(cfg.high >= cfg.low, f"{field}.high", cfg.high, f"must be >= low ({cfg.low})")
        return Uniform(float(cfg.low), float(cfg.high))
    raise ConfigError(f"{field}.kind = {kind!r}: must be one of constant, exponential, lognormal, uniform")
