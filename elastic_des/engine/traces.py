"""Reading real request traces, with errors that name the file, row and column.

Two formats are supported:

* ``timestamps``: one row per request, as in the Azure LLM inference traces
  2023 (``TIMESTAMP, ContextTokens, GeneratedTokens``). Request sizes come
  from the trace.
* ``rates``: aggregate request rates per window, as in the ServeGen data
  (``window_start_s, total_rate_rps``). Arrivals are sampled from the rates.
* ``clients``: per window and client, the client's rate, inter-arrival CV and
  fitted inter-arrival family, as ServeGen describes its clients
  (``window_start_s, client, rate_rps, interarrival_cv, family``; further
  columns such as the family's ``shape, scale`` are ignored: the renewal
  process is rebuilt from rate and CV). Replayed as a mixture of renewal
  processes (:mod:`elastic_des.engine.arrivals`). A ``.csv.gz`` file is read
  as gzip.

Traces shipped with the package live in ``elastic_des/data/traces`` (see the
LICENSE notes there); a bare file name is looked up there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from elastic_des.engine.distributions import INTERARRIVAL_FAMILIES, WEIBULL_MIN_CV
from elastic_des.errors import ConfigError

PACKAGED_TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
TIMESTAMP_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
RATE_COLUMNS = ("window_start_s", "total_rate_rps")
CLIENT_COLUMNS = ("window_start_s", "client", "rate_rps", "interarrival_cv", "family")


@dataclass(frozen=True)
class RequestTrace:
    """Requests of a timestamp trace: seconds since the first request, sizes."""

    time_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


@dataclass(frozen=True)
class RateTrace:
    """Piecewise-constant rates: window ``i`` starts at ``window_start_s[i]``."""

    window_start_s: np.ndarray
    rate_rps: np.ndarray
    window_s: float


def resolve_trace_path(path: str, field: str = "scenario.workload.trace.path") -> Path:
    """An existing file: ``path`` as given, else a trace shipped with the package."""
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    packaged = PACKAGED_TRACES / path
    if not candidate.is_absolute() and packaged.is_file():
        return packaged
    shipped = ", ".join(sorted(p.name for p in PACKAGED_TRACES.glob("*.csv*")))
    raise ConfigError(f"{field} = {path!r}: no such file (traces shipped with the package: {shipped})")


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"trace {path}: not a readable CSV file ({exc})") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"trace {path}: missing column(s) {missing}; expected {list(columns)}, found {list(frame.columns)}")
    if frame.empty:
        raise ConfigError(f"trace {path}: has a header but no rows")
    return frame


def _numeric_column(frame: pd.DataFrame, path: Path, column: str, minimum: float) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < minimum)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"trace {path}: row {row + 2} column {column} = {frame[column].iloc[row]!r}: "
            f"must be a number >= {minimum:g}"
        )
    return values


def load_request_trace(path: Path) -> RequestTrace:
    """Load an Azure-format timestamp trace, sorted by time."""
    frame = _read_csv(path, TIMESTAMP_COLUMNS)
    stamps = pd.to_datetime(frame["TIMESTAMP"], errors="coerce", format="ISO8601")
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"trace {path}: row {row + 2} column TIMESTAMP = {frame['TIMESTAMP'].iloc[row]!r}: "
            "not a timestamp (expected e.g. 2023-11-16 18:17:03.979)"
        )
    seconds = (stamps - stamps.min()).dt.total_seconds().to_numpy()
    prompt = _numeric_column(frame, path, "ContextTokens", 0)
    output = _numeric_column(frame, path, "GeneratedTokens", 0)
    order = np.argsort(seconds, kind="stable")
    return RequestTrace(seconds[order], prompt[order], output[order])


def load_rate_trace(path: Path) -> RateTrace:
    """Load a ServeGen-format rate trace with equally spaced windows."""
    frame = _read_csv(path, RATE_COLUMNS)
    starts = _numeric_column(frame, path, "window_start_s", 0)
    rates = _numeric_column(frame, path, "total_rate_rps", 0)
    if len(starts) < 2:
        raise ConfigError(f"trace {path}: needs at least two windows to know the window length")
    steps = np.diff(starts)
    if (steps <= 0).any() or not np.allclose(steps, steps[0]):
        row = int(np.flatnonzero((steps <= 0) | ~np.isclose(steps, steps[0]))[0]) + 1
        raise ConfigError(
            f"trace {path}: row {row + 2} column window_start_s = {starts[row]:g}: "
            f"windows must be increasing and equally spaced ({steps[0]:g} s)"
        )
    return RateTrace(starts - starts[0], rates, float(steps[0]))


@dataclass(frozen=True)
class ClientTrace:
    """A ServeGen client file: one row per (window, client) with a rate > 0.

    ``window`` is the index of each row's window; windows are ``window_s``
    long and the trace has ``windows`` of them (the last start plus one).
    """

    window: np.ndarray
    client: np.ndarray
    rate_rps: np.ndarray
    interarrival_cv: np.ndarray
    family: np.ndarray
    window_s: float
    windows: int

    def aggregate(self) -> RateTrace:
        """The total rate per window, summed over clients."""
        rates = np.bincount(self.window, weights=self.rate_rps, minlength=self.windows)
        return RateTrace(np.arange(self.windows) * self.window_s, rates, self.window_s)


def load_client_trace(path: Path) -> ClientTrace:
    """Load a ServeGen per-client file; windows must lie on one grid."""
    frame = _read_csv(path, CLIENT_COLUMNS)
    starts = _numeric_column(frame, path, "window_start_s", 0)
    rates = _numeric_column(frame, path, "rate_rps", 0)
    cvs = _numeric_column(frame, path, "interarrival_cv", 0)
    bad = cvs <= 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"trace {path}: row {row + 2} column interarrival_cv = {cvs[row]:g}: must be > 0")
    grid = np.unique(starts)
    if len(grid) < 2:
        raise ConfigError(f"trace {path}: needs at least two windows to know the window length")
    window_s = float(np.diff(grid).min())
    index = (starts - grid[0]) / window_s
    off = ~np.isclose(index, np.rint(index))
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ConfigError(
            f"trace {path}: row {row + 2} column window_start_s = {starts[row]:g}: "
            f"not on the trace's grid of {window_s:g} s windows"
        )
    window = np.rint(index).astype(np.int64)
    family = frame["family"].str.strip().str.lower().to_numpy()
    unknown = ~np.isin(family, INTERARRIVAL_FAMILIES)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise ConfigError(
            f"trace {path}: row {row + 2} column family = {frame['family'].iloc[row]!r}: "
            f"must be one of {', '.join(INTERARRIVAL_FAMILIES)} (any case)"
        )
    narrow = (family == "weibull") & (cvs < WEIBULL_MIN_CV)
    if narrow.any():
        row = int(np.flatnonzero(narrow)[0])
        raise ConfigError(f"trace {path}: row {row + 2} column interarrival_cv = {cvs[row]:g}: "
                          f"must be >= {WEIBULL_MIN_CV} for a Weibull client")
    return ClientTrace(window, frame["client"].to_numpy(), rates, cvs, family, window_s, int(window.max()) + 1)


def load_aggregate_rates(path: Path, trace_format: str) -> RateTrace:
    """The rate windows of a ``rates`` trace, or of a ``clients`` trace summed over its clients."""
    return load_client_trace(path).aggregate() if trace_format == "clients" else load_rate_trace(path)
