"""Per-request latencies (queue wait, TTFT, TPOT, end to end) and the SLO they meet.

A request's latencies, from its arrival ``a``, admission ``s``, first token
``f`` and last token ``e`` with ``n`` output tokens:

* queue wait ``s - a``;
* TTFT ``f - a`` (queue wait + prefill);
* TPOT ``(e - f) / (n - 1)``, vLLM's time per output token after the first
  (NaN for one-token outputs, which meet any TPOT objective);
* end to end ``e - a``.

A served request meets the SLO if it meets every objective that is set;
a dropped one misses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


def tpot_s(first_token_s, finish_s, output_tokens) -> np.ndarray:
    """TPOT of each request; NaN where it has fewer than two output tokens."""
    steps = np.asarray(output_tokens, dtype=float) - 1.0
    # In place: a request table's columns are large, and each new array of them is paid for in page faults.
    tpot = np.subtract(finish_s, first_token_s, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot /= steps
    tpot[~(steps > 0)] = np.nan
    return tpot


@dataclass(frozen=True)
class SLO:
    """The objectives in seconds; None: not an objective."""

    latency_s: Optional[float] = None
    ttft_s: Optional[float] = None
    tpot_s: Optional[float] = None

    @classmethod
    def of(cls, slo_cfg) -> "SLO":
        """From a scenario's ``slo`` config."""
        return cls(slo_cfg.latency_s, getattr(slo_cfg, "ttft_s", None), getattr(slo_cfg, "tpot_s", None))

    def met(self, latency_s, ttft_s, tpot) -> np.ndarray:
        """Which served requests meet every set objective (NaN TPOT meets it)."""
        latency_s = np.asarray(latency_s, dtype=float)
        # The first objective's comparison is the mask (a new array): it runs every tick.
        ok = np.ones(latency_s.shape, dtype=bool) if self.latency_s is None else latency_s <= self.latency_s
        if self.ttft_s is not None:
            ok &= np.asarray(ttft_s, dtype=float) <= self.ttft_s
        if self.tpot_s is not None:
            tpot = np.asarray(tpot, dtype=float)
            ok &= np.isnan(tpot) | (tpot <= self.tpot_s)
        return ok
