"""The layout of a ``timestamps`` trace: which columns hold a request's
arrival time and token counts, and the unit of the times.

Services publish their request logs in layouts of their own: the Azure LLM
inference traces (``TIMESTAMP, ContextTokens, GeneratedTokens``, ISO-8601
datetimes), BurstGPT (``Timestamp`` in seconds, ``Request tokens``,
``Response tokens``), Mooncake / Kimi (``timestamp`` in milliseconds since
the first request, ``input_length``, ``output_length``). A
:class:`RequestColumns` names the columns, or leaves them ``auto``: the
file's one column whose name a public trace gives that column
(:data:`COLUMN_ALIASES`). A token column may be None: the trace has no such
counts and they are drawn from the configured distribution
(:mod:`elastic_des.engine.workload`). ``time_unit: auto`` reads datetimes as
such and numbers in a known layout's own unit (:data:`LAYOUT_TIME_UNITS`),
else a Unix time's by its magnitude (:data:`EPOCH_UNITS`), else in seconds.
Reading the file is :mod:`elastic_des.engine.traces`'.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from elastic_des.errors import ConfigError

TIME_UNITS = ("auto", "datetime", "s", "ms", "us")
AUTO = "auto"
# The names public LLM traces give each column of a timestamps trace, by the RequestColumns
# field that sets it. They compare ignoring case, spaces, underscores and hyphens: TIMESTAMP
# is also BurstGPT's Timestamp and Mooncake's timestamp, ContextTokens also context_tokens.
COLUMN_ALIASES = {
    "time_column": ("TIMESTAMP", "arrival_time", "arrival_timestamp", "time", "ts", "created_at", "start_time"),
    # Azure, BurstGPT, Mooncake, then common spellings of serving benchmarks and APIs.
    "prompt_column": ("ContextTokens", "Request tokens", "input_length", "prompt_tokens", "input_tokens",
                      "prompt_len", "input_len", "prompt_length", "num_prompt_tokens"),
    "output_column": ("GeneratedTokens", "Response tokens", "output_length", "output_tokens", "completion_tokens",
                      "output_len", "num_output_tokens"),
}
ROLES = {"time_column": "arrival time", "prompt_column": "prompt token count", "output_column": "output token count"}
# The workload's distribution a request's size is drawn from when its column is null.
DRAWN_SIZES = {"prompt_column": "prompt_tokens", "output_column": "output_tokens"}
# The unit of a layout's numeric times where the numbers cannot tell it, by the layout's
# columns (normalised as above): Mooncake's timestamp counts milliseconds since the first
# request, which read as seconds would play an hour of its trace over six weeks.
LAYOUT_TIME_UNITS = {("timestamp", "inputlength", "outputlength"): ("ms", "Mooncake")}
# Unix times by magnitude, largest first: in seconds they are about 1.7e9 today, so an
# earliest time of 1e11 or more is in milliseconds (1e11 s is the year 5138) and of 1e14 or
# more in microseconds.
EPOCH_UNITS = ((1e14, "us"), (1e11, "ms"))


def check_columns(path: Path, found: Sequence[str], columns: Sequence[str],
                  fields: Sequence[str] = ()) -> Sequence[str]:
    """``columns``, each of which must be among those ``found``; ``fields``
    name the config fields that set them, for the message."""
    missing = [i for i, column in enumerate(columns) if column not in found]
    if missing:
        own = "column in" if len(missing) == 1 else "columns in"
        fix = f"; name the file's own {own} {', '.join(fields[i] for i in missing)}" if fields else ""
        raise ConfigError(f"trace {path}: missing column(s) {[columns[i] for i in missing]}; "
                          f"expected {list(columns)}, found {list(found)}{fix}")
    return columns


def _normalised(name: str) -> str:
    return re.sub(r"[\s_-]", "", name).lower()


def _detect(path: Path, found: Sequence[str], role: str, field: str) -> str:
    """The one column ``found`` in the file whose name is among ``COLUMN_ALIASES[role]``
    (``role`` is a ``RequestColumns`` field, set to ``auto`` at config path ``field``)."""
    aliases = COLUMN_ALIASES[role]
    known = {_normalised(alias) for alias in aliases}
    matches = [column for column in found if _normalised(column) in known]
    setting = f"{field}.{role}"
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"trace {path}: {setting} = 'auto' finds {len(matches)} columns that may hold the "
                          f"{ROLES[role]}: {matches}; set {setting} to the one to read")
    fix = f"set {setting} to the file's column"
    if role in DRAWN_SIZES:
        workload = field.rpartition(".")[0]
        fix += f", or to null to draw the sizes from {workload}.{DRAWN_SIZES[role]}"
    raise ConfigError(f"trace {path}: {setting} = 'auto' finds no column of the {ROLES[role]}: columns found "
                      f"{list(found)}, names tried {list(aliases)} (any case, ignoring spaces, _ and -); {fix}")


@dataclass(frozen=True)
class RequestColumns:
    """Where a ``timestamps`` trace keeps each request's arrival time and token
    counts, and the unit of the times. Fields are named as in ``TraceConfig``.

    time_column, prompt_column, output_column: the column's name (a JSON
    key), or ``auto`` (the default): the file's one column whose name is
    among the role's :data:`COLUMN_ALIASES`. A token column may be None: the
    trace has no such counts, they are drawn from the configured
    distribution (:mod:`elastic_des.engine.workload`).
    time_unit: ``datetime`` (ISO-8601 timestamps), ``s``, ``ms`` or ``us``
    (numbers), or ``auto``: datetimes if the first request's time is not a
    plain number, else the unit :func:`numeric_unit` infers. A plain number
    is never read as a date.
    """

    time_column: Optional[str] = AUTO
    prompt_column: Optional[str] = AUTO
    output_column: Optional[str] = AUTO
    time_unit: str = "auto"

    @classmethod
    def of(cls, trace_cfg) -> RequestColumns:
        """The layout a ``TraceConfig`` sets."""
        return cls(**{f.name: getattr(trace_cfg, f.name) for f in dataclasses.fields(cls)})

    def check(self, trace_format: str, field: str) -> None:
        """Only a ``timestamps`` trace at config path ``field`` sets a layout, and a known time unit."""
        if trace_format != "timestamps":
            for name, default in dataclasses.asdict(RequestColumns()).items():
                if getattr(self, name) != default:
                    raise ConfigError(f"{field}.{name} = {getattr(self, name)!r}: applies only to format timestamps, "
                                      f"not {trace_format}; remove it (default {default!r})")
        if self.time_column is None:
            raise ConfigError(f"{field}.time_column = null: the arrivals of a timestamps trace are its own; name "
                              f"the column of their times or leave it 'auto' (only the token columns may be null)")
        if self.time_unit not in TIME_UNITS:
            raise ConfigError(f"{field}.time_unit = {self.time_unit!r}: must be one of {', '.join(TIME_UNITS)}")

    def resolved(self, path: Path, found: Sequence[str], field: str) -> RequestColumns:
        """This layout (at config path ``field``) for the file at ``path`` with
        columns ``found``: every ``auto`` column replaced by the one it picks,
        every named column checked to be there."""
        named = [role for role in ROLES if getattr(self, role) not in (AUTO, None)]
        check_columns(path, found, [getattr(self, role) for role in named], [f"{field}.{role}" for role in named])
        return dataclasses.replace(self, **{role: _detect(path, found, role, field)
                                            for role in ROLES if getattr(self, role) == AUTO})

    def picks(self, resolved: RequestColumns) -> dict[str, str]:
        """The column (or time unit) ``resolved`` (this layout, read from a file) took for each ``auto`` field."""
        return {name: getattr(resolved, name) for name in (*ROLES, "time_unit") if getattr(self, name) == AUTO}

    @property
    def names(self) -> list[str]:
        """The columns to read (of a resolved layout): time, then the token columns that are set."""
        return [name for name in (self.time_column, self.prompt_column, self.output_column) if name is not None]


def numeric_unit(numbers: pd.Series, columns: RequestColumns) -> tuple[str, str]:
    """The unit ``time_unit: auto`` reads the times ``numbers`` (indexed by
    row, the first a number) in, and why: a known layout's own
    (:data:`LAYOUT_TIME_UNITS`), else a Unix time's by its magnitude
    (:data:`EPOCH_UNITS`), else seconds."""
    layout = tuple(None if name is None else _normalised(name)
                   for name in (columns.time_column, columns.prompt_column, columns.output_column))
    if layout in LAYOUT_TIME_UNITS:
        unit, name = LAYOUT_TIME_UNITS[layout]
        return unit, f"the columns are {name}'s, whose times are in {unit}"
    earliest = float(numbers.min())  # NaN cells (not numbers) are refused when the column is read
    for threshold, unit in EPOCH_UNITS:
        if earliest >= threshold:
            return unit, f"the earliest time, {earliest:.6g}, is a Unix time in {unit}"
    return "s", f"row {numbers.index[0]} is a number"
