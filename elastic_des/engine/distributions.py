"""Random quantities as objects with ``sample(rng, size)``, an analytic ``mean`` and ``quantile``.

Following Ciw, a distribution knows its own mean (and variance, so its
coefficient of variation ``cv``) so tests can compare samples against
theory, and it never owns a generator: the caller passes the stream.
Gamma and Weibull are parameterised by mean and CV, as ServeGen describes
the inter-arrival times of its clients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from scipy.optimize import brentq
from scipy.special import gammaln

from elastic_des.errors import ConfigError, require, require_non_negative, require_positive


class Distribution:
    """A non-negative random variable."""

    mean: float

    @property
    def variance(self) -> float:
        raise NotImplementedError

    @property
    def scv(self) -> float:
        """Squared coefficient of variation, variance / mean²."""
        return self.variance / self.mean**2 if self.mean > 0 else 0.0

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

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value, dtype=float)

    def quantile(self, q: float) -> float:
        return self.value


@dataclass(frozen=True)
class Exponential(Distribution):
    mean: float

    @property
    def variance(self) -> float:
        return self.mean**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)

    def quantile(self, q: float) -> float:
        return -self.mean * math.log1p(-q)


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Log-normal parameterised by its mean and coefficient of variation."""

    mean: float
    cv: float

    @property
    def variance(self) -> float:
        return (self.mean * self.cv) ** 2

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

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def quantile(self, q: float) -> float:
        return self.low + q * (self.high - self.low)


@dataclass(frozen=True)
class Gamma(Distribution):
    """Gamma with mean ``mean`` and coefficient of variation ``cv``
    (shape ``1/cv²``, scale ``mean·cv²``; ``cv = 1`` is exponential)."""

    mean: float
    cv: float

    def __post_init__(self):
        if not (self.mean > 0 and self.cv > 0):
            raise ValueError(f"Gamma(mean={self.mean}, cv={self.cv}): both must be > 0")

    @property
    def variance(self) -> float:
        return (self.mean * self.cv) ** 2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean / shape, size)


def weibull_shape(cv: float) -> float:
    """The Weibull shape ``k`` whose CV is ``cv``: solves
    ``Γ(1+2/k) / Γ(1+1/k)² - 1 = cv²`` (the CV falls as ``k`` grows)."""
    if not cv > 0:
        raise ValueError(f"cv = {cv}: must be > 0")
    target = math.log1p(cv**2)

    def gap(log_k: float) -> float:
        k = math.exp(log_k)
        return gammaln(1 + 2 / k) - 2 * gammaln(1 + 1 / k) - target

    return math.exp(brentq(gap, math.log(0.02), math.log(500.0), xtol=1e-12))


@dataclass(frozen=True)
class Weibull(Distribution):
    """Weibull with mean ``mean`` and coefficient of variation ``cv`` (shape
    from :func:`weibull_shape`, scale ``mean / Γ(1+1/k)``), for CVs from
    about 0.003 (shape 500) upwards."""

    mean: float
    cv: float

    def __post_init__(self):
        if not (self.mean > 0 and self.cv > 0):
            raise ValueError(f"Weibull(mean={self.mean}, cv={self.cv}): both must be > 0")
        object.__setattr__(self, "shape", weibull_shape(self.cv))

    @property
    def variance(self) -> float:
        return (self.mean * self.cv) ** 2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        scale = self.mean / math.exp(gammaln(1 + 1 / self.shape))
        return scale * rng.weibull(self.shape, size)


INTERARRIVAL_FAMILIES = ("exponential", "gamma", "weibull")
WEIBULL_MIN_CV = 0.003  # shape 500, the end of weibull_shape's search


def interarrival_distribution(family: str, mean: float, cv: float, field: str) -> Distribution:
    """An inter-arrival distribution of ``family`` with ``mean`` and ``cv``;
    ``field`` names the config path of the family in errors."""
    name = str(family).lower()
    if name not in INTERARRIVAL_FAMILIES:
        raise ConfigError(f"{field} = {family!r}: must be one of {', '.join(INTERARRIVAL_FAMILIES)}")
    if not (math.isfinite(cv) and cv > 0) or (name == "weibull" and cv < WEIBULL_MIN_CV):
        raise ConfigError(f"{field} = {family!r} with cv = {cv!r}: the CV must be finite and > 0 "
                          f"(>= {WEIBULL_MIN_CV} for weibull)")
    if name == "exponential":
        return Exponential(mean)
    return Gamma(mean, cv) if name == "gamma" else Weibull(mean, cv)


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
