"""The per-request state of one world: only the requests loaded and not yet retired.

A world's dispatcher, replica pool and controller read and write each
request's columns by its index ``i`` (arrival order). A
:class:`RequestStore` holds those columns for a moving range of requests:

* it *loads* requests from the run's windows
  (:mod:`elastic_des.engine.windows`) only as the simulation reaches them:
  :meth:`RequestStore.load_until` is called with the end of the next tick;
* it *retires* the oldest requests once they and every request before them
  have an outcome (served or dropped): :meth:`RequestStore.retire` hands
  their rows over, in index order, and forgets them.

So memory holds the requests in flight and the next tick's arrivals,
whatever the length of the run. Request ``i`` is at position ``i - base``
of every list; lists, not numpy arrays, because single-item reads and
writes of a list are several times faster, and the lists are mutated in
place (never replaced), so the dispatcher and the pool may keep references
to them.

Input columns are whatever the windows carry (``arrival`` always; e.g.
``service``, ``prefill``, ``decode``, ``kv``); a boolean column
``too_long`` instead fills the set :attr:`RequestStore.too_long` of the
indices it marks. Columns that are one and the same array in the windows
(a slots model plans with its service times themselves: ``planning`` is
``service``) share one list. The request sizes ``prompt`` and ``output``,
which every window carries but few worlds read request by request, become
lists only when first read (:class:`_ListedOnFirstRead`). Outcome columns are ``start_s``, ``finish_s``,
``first_token_s`` if the pool records first tokens itself (a continuously
batching one; NaN until known) and ``dropped`` (a drop reason of
:mod:`elastic_des.engine.dispatcher`, 0 while not dropped). A drop's time
is not kept: no output reads it.
"""

from __future__ import annotations

from collections import deque
from operator import itemgetter
from typing import Iterable, Iterator, Optional

import numpy as np

# The outcome times of every store, and the first token's of a store whose pool records it
# (a slots pool's first token is its start plus the request's ``offset`` column).
OUTCOME_COLUMNS = ("start_s", "finish_s")
FIRST_TOKEN_COLUMN = "first_token_s"
NAN = float("nan")


class _ListedOnFirstRead:
    """An input column held as a list only once something reads it as one.

    Until then only the held window ranges hold it (enough for
    :meth:`RequestStore.retire`). The first read makes the list of the held
    requests from them and sets it as the store's attribute, which hides
    this descriptor from then on, and from then on
    :meth:`RequestStore.load_until` and :meth:`RequestStore.retire` keep it
    like the other lists. (Never through the store's ``__dict__``: reading
    it turns the instance's attributes into a plain dict, which slows every
    attribute read of the hot path, ``store.base`` among them.)
    """

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, store: Optional["RequestStore"], owner=None):
        if store is None:
            return self
        if self.name not in store.columns:
            raise AttributeError(f"no column {self.name!r} in this store")
        values = [value for window, start, stop in store._held for value in window[self.name][start:stop].tolist()]
        setattr(store, self.name, values)
        store._lists.append(self.name)
        return values


class RequestStore:
    """The columns of the requests loaded and not yet retired; see the module docs."""

    prompt = _ListedOnFirstRead()
    output = _ListedOnFirstRead()

    def __init__(self, windows: Iterable[dict[str, np.ndarray]], first_tokens: bool = False):
        self._windows: Iterator[dict[str, np.ndarray]] = iter(windows)
        self._window: Optional[dict[str, np.ndarray]] = None
        self._position = 0  # the next request of self._window to load
        self.base = 0  # index of the first request held
        self.loaded = 0  # requests loaded so far: indices [base, loaded) are held
        self.too_long: set[int] = set()
        self.columns: list[str] = []
        self._same_as: dict[str, str] = {}  # column: the earlier column whose array (and list) it shares
        self._lists: list[str] = ["arrival"]  # the input columns with a list of their own
        self.arrival: list[float] = []
        # The input columns of the held requests once more, as the ranges of
        # the windows they were loaded from, [window, start, stop], one per
        # window: retire hands slices of these over rather than turning the
        # lists back into arrays.
        self._held: deque[list] = deque()
        # Kept only where a pool writes them: a column per request costs on every load and retire.
        self.outcome_columns = (*OUTCOME_COLUMNS, FIRST_TOKEN_COLUMN) if first_tokens else OUTCOME_COLUMNS
        for name in self.outcome_columns:
            setattr(self, name, [])
        self.dropped: list[int] = []
        self._next_window()

    @classmethod
    def of(cls, first_tokens: bool = False, **columns: np.ndarray) -> "RequestStore":
        """A store of one window holding ``columns`` (arrays of one length, ``arrival`` sorted)."""
        return cls([{name: np.asarray(values) for name, values in columns.items()}], first_tokens)

    def _next_window(self) -> None:
        self._window = next(self._windows, None)
        self._position = 0
        if self._window is None:
            return
        window = self._window
        for name in window:
            if name != "too_long" and name not in self.columns:
                if self.loaded:
                    raise ValueError(f"column {name!r} appears after the first window")
                self.columns.append(name)
                same = next((other for other in self._lists if other != name and window[other] is window[name]), None)
                if isinstance(getattr(type(self), name, None), _ListedOnFirstRead):
                    pass  # a list once read
                elif same is not None:
                    self._same_as[name] = same
                    setattr(self, name, getattr(self, same))
                elif name != "arrival":
                    setattr(self, name, [])
                    self._lists.append(name)
        for name, same in self._same_as.items():
            if window[name] is not window[same]:
                raise ValueError(f"column {name!r} is not column {same!r} in every window")

    def load_until(self, end_s: float) -> None:
        """Load every request arriving before ``end_s``."""
        while self._window is not None:
            window = self._window
            start = self._position
            stop = int(window["arrival"].searchsorted(end_s))  # side "left"; the method skips np.searchsorted's wrapper
            if stop > start:
                for name in self._lists:
                    getattr(self, name).extend(window[name][start:stop].tolist())
                held = self._held
                if held and held[-1][0] is window:  # the window's range grows: one range per window
                    held[-1][2] = stop
                else:
                    held.append([window, start, stop])
                if "too_long" in window:
                    marked = np.flatnonzero(window["too_long"][start:stop])
                    self.too_long.update((marked + self.loaded).tolist())
                count = stop - start
                for name in self.outcome_columns:
                    getattr(self, name).extend([NAN] * count)
                self.dropped.extend([0] * count)
                self.loaded += count
                self._position = stop
            if stop < len(window["arrival"]):
                return
            self._next_window()

    def retire(self) -> dict[str, np.ndarray]:
        """The rows of the oldest requests that, with every request before them,
        have an outcome, as arrays in index order: the input columns,
        ``dropped`` and the outcome times; they are forgotten."""
        count = self._outcomes_known()
        # Drop reasons are small ints (bytes, converted in C); np.fromiter is
        # about twice as fast as np.array on a list of floats.
        rows = {"dropped": np.frombuffer(bytearray(self.dropped[:count]), np.int8)}
        rows.update(self._retire_inputs(count))
        for name in self.outcome_columns:
            rows[name] = np.fromiter(getattr(self, name)[:count], float, count)
        for name in (*self._lists, *self.outcome_columns):
            del getattr(self, name)[:count]
        del self.dropped[:count]
        self.base += count
        return rows

    def _outcomes_known(self) -> int:
        """How many of the oldest held requests, taken in order, have an outcome.

        A finish time not yet known is the very object :data:`NAN` that
        :meth:`load_until` filled it with, so ``list.index`` finds the first
        one in C (it tests identity first); the request there is done anyway
        if it was dropped.
        """
        finish_s, dropped = self.finish_s, self.dropped
        position = 0
        while True:
            try:
                position = finish_s.index(NAN, position)
            except ValueError:
                return len(finish_s)
            if not dropped[position]:
                return position
            position += 1

    def _retire_inputs(self, count: int) -> dict[str, np.ndarray]:
        """The input columns of the ``count`` oldest requests, as float arrays,
        taken from the held window ranges. Requests of a single window are
        that window's slice itself, not a copy: rows kept after retiring (a
        request table, a row group being filled) then hold their window's
        columns, which is no more memory than copies of those rows would be."""
        parts = []
        held = self._held
        while count:
            entry = held[0]
            window, start, stop = entry
            taken = min(count, stop - start)
            parts.append((window, start, start + taken))
            if taken == stop - start:
                held.popleft()
            else:
                entry[1] = start + taken
            count -= taken
        if len(parts) == 1:
            window, start, stop = parts[0]
            return {name: window[name][start:stop].astype(float, copy=False) for name in self.columns}
        return {name: np.concatenate([window[name][start:stop] for window, start, stop in parts]).astype(float, copy=False)
                if parts else np.empty(0) for name in self.columns}


class Gather:
    """Reads the same ``positions`` of several list columns as float arrays:
    the controller's per-tick gather of the requests that finished, made in
    C (one ``operator.itemgetter`` for every column, and ``np.fromiter``)
    rather than item by item in Python."""

    __slots__ = ("positions", "_get")

    def __init__(self, positions: list[int]):
        self.positions = positions
        # An itemgetter of one position returns that item rather than a tuple (and of none, fails).
        self._get = itemgetter(*positions) if len(positions) > 1 else None

    def take(self, column: list) -> np.ndarray:
        """``column[j]`` for each ``j`` of the positions, in their order."""
        if self._get is None:
            return np.fromiter(map(column.__getitem__, self.positions), float, len(self.positions))
        return np.fromiter(self._get(column), float, len(self.positions))
