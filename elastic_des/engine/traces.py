"""Reading real request traces, with errors that name the file, row and column.

Three formats are supported:

* ``timestamps``: one row per request, its arrival time and its prompt and
  output token counts, in the columns a
  :class:`~elastic_des.engine.request_columns.RequestColumns` names or finds
  (``auto``: the Azure LLM inference traces, BurstGPT and Mooncake read as
  published), the times in its ``time_unit``. A null token column: the trace
  has no such counts (:mod:`elastic_des.engine.workload` draws them). Only
  differences of times matter: the first request arrives at 0. A ``.csv``
  file is read as CSV (the header is row 1), a ``.jsonl`` file as JSON Lines
  (one object per line; line n is row n; the first object's keys are its
  columns); other columns or keys are ignored.
* ``rates``: aggregate request rates per window, as in the ServeGen data
  (``window_start_s, total_rate_rps``). Arrivals are sampled from the rates.
* ``clients``: per window and client, the client's rate, inter-arrival CV and
  fitted inter-arrival family, as ServeGen describes its clients
  (``window_start_s, client, rate_rps, interarrival_cv, family``; further
  columns such as the family's ``shape, scale`` are ignored: the renewal
  process is rebuilt from rate and CV). Replayed as a mixture of renewal
  processes (:mod:`elastic_des.engine.arrivals`).

A file ending in ``.gz`` is read as gzip.
Traces shipped with the package live in ``elastic_des/data/traces`` (see the
LICENSE notes there); a bare file name is looked up there.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from elastic_des.engine.distributions import INTERARRIVAL_FAMILIES, WEIBULL_MIN_CV
from elastic_des.engine.request_columns import RequestColumns, check_columns, numeric_unit
from elastic_des.errors import ConfigError

PACKAGED_TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6}
CSV_SUFFIXES, JSONL_SUFFIXES = (".csv", ".csv.gz"), (".jsonl", ".jsonl.gz")
RATE_COLUMNS = ("window_start_s", "total_rate_rps")
CLIENT_COLUMNS = ("window_start_s", "client", "rate_rps", "interarrival_cv", "family")


@dataclass(frozen=True)
class RequestTrace:
    """Requests of a timestamp trace: seconds since the first request, sizes
    (None: not in the trace, the column is null), and the columns they were
    read from (``auto`` resolved)."""

    time_s: np.ndarray
    prompt_tokens: Optional[np.ndarray]
    output_tokens: Optional[np.ndarray]
    columns: RequestColumns


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


# Given the columns a file has, the ones to read; raises a ConfigError if the file lacks some.
Select = Callable[[list[str]], Sequence[str]]


def _read_csv(path: Path, select: Select) -> pd.DataFrame:
    """The file's cells as strings, indexed by their row in the file (the header is row 1)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"trace {path}: not a readable CSV file ({exc})") from exc
    select(list(frame.columns))
    if frame.empty:
        raise ConfigError(f"trace {path}: has a header but no rows")
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    return frame


def _read_jsonl(path: Path, select: Select) -> pd.DataFrame:
    """The columns ``select`` picks from the first record's keys, as strings
    (as a CSV file's cells are), indexed by line; blank lines are skipped."""
    values: dict[str, list[str]] = {}
    rows: list[int] = []
    try:
        packed = path.name.lower().endswith(".gz")
        with (gzip.open(path, "rt", encoding="utf-8") if packed else path.open(encoding="utf-8")) as lines:
            for row, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"trace {path}: row {row}: not JSON ({exc.msg}): {line.strip()[:80]!r}") from exc
                if not isinstance(record, dict):
                    raise ConfigError(f"trace {path}: row {row}: not a JSON object: {line.strip()[:80]!r}")
                if not rows:  # the first record shows the file's keys
                    values = {column: [] for column in select(list(record))}
                for column in values:
                    if column not in record:
                        raise ConfigError(f"trace {path}: row {row} column {column}: missing (keys found: {list(record)})")
                    value = record[column]
                    values[column].append(value if isinstance(value, str) else json.dumps(value))
                rows.append(row)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConfigError(f"trace {path}: not a readable JSON Lines file ({exc})") from exc
    if not rows:
        raise ConfigError(f"trace {path}: no rows")
    return pd.DataFrame(values, index=rows, dtype=str)


def _numeric_column(frame: pd.DataFrame, path: Path, column: str, minimum: float, note: str = "") -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < minimum)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"trace {path}: row {frame.index[row]} column {column} = {frame[column].iloc[row]!r}: "
            f"must be a number >= {minimum:g}{note}"
        )
    return values


def _read_requests(path: Path, columns: RequestColumns, field: str) -> tuple[pd.DataFrame, RequestColumns]:
    """The cells of a timestamps trace, and its layout ``columns`` resolved
    against the file's columns (:meth:`RequestColumns.resolved`)."""
    suffix = path.name.lower()
    if suffix.endswith(CSV_SUFFIXES):
        read = _read_csv
    elif suffix.endswith(JSONL_SUFFIXES):
        read = _read_jsonl
    else:
        raise ConfigError(f"{field}.path = {str(path)!r}: a timestamps trace must end in one of "
                          f"{', '.join(CSV_SUFFIXES + JSONL_SUFFIXES)} (CSV or JSON Lines)")
    layout: list[RequestColumns] = []

    def select(found: list[str]) -> list[str]:
        layout.append(columns.resolved(path, found, field))
        return layout[0].names

    return read(path, select), layout[0]


def _seconds(frame: pd.DataFrame, path: Path, columns: RequestColumns, field: str) -> tuple[np.ndarray, str]:
    """Each request's time, in seconds since the first request, and the unit
    it was read in (``auto`` resolved)."""
    column, unit = columns.time_column, columns.time_unit
    values = frame[column]
    numbers = pd.to_numeric(values, errors="coerce")
    why = f"{field}.time_unit = {unit!r}"
    if unit == "auto":
        if np.isnan(numbers.iloc[0]):
            unit, reason = "datetime", f"row {frame.index[0]} is not a number"
        else:
            unit, reason = numeric_unit(numbers, columns)
        why += f" and {reason}"
    if unit != "datetime":
        seconds = _numeric_column(frame, path, column, 0, f" (a time in {unit}: {why})")
        return (seconds - seconds.min()) / PER_SECOND[unit], unit
    # In UTC, so that times with different offsets (or none, taken as UTC) compare.
    stamps = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    bad = (stamps.isna() | numbers.notna()).to_numpy()  # a plain number is never a date
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"trace {path}: row {frame.index[row]} column {column} = {values.iloc[row]!r}: not an ISO-8601 "
            f"timestamp such as 2023-11-16 18:17:03.979 ({why}; set it to s, ms or us for numbers)"
        )
    return (stamps - stamps.min()).dt.total_seconds().to_numpy(), unit


def load_request_trace(path: Path, columns: RequestColumns = RequestColumns(),
                       field: str = "scenario.workload.trace") -> RequestTrace:
    """Load a ``timestamps`` trace laid out as ``columns`` (the ``TraceConfig``
    at config path ``field`` sets them), sorted by time."""
    frame, layout = _read_requests(path, columns, field)
    seconds, unit = _seconds(frame, path, layout, field)
    layout = dataclasses.replace(layout, time_unit=unit)
    order = np.argsort(seconds, kind="stable")
    prompt, output = (None if name is None else _numeric_column(frame, path, name, 0)[order]
                      for name in (layout.prompt_column, layout.output_column))
    return RequestTrace(seconds[order], prompt, output, layout)


def load_rate_trace(path: Path) -> RateTrace:
    """Load a ServeGen-format rate trace with equally spaced windows."""
    frame = _read_csv(path, lambda found: check_columns(path, found, RATE_COLUMNS))
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
    frame = _read_csv(path, lambda found: check_columns(path, found, CLIENT_COLUMNS))
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
