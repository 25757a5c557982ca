"""The Q-table: two values per (state, action), the Bellman update, and its file.

Q-learning (Watkins 1989) keeps an estimate ``Q(s, a)`` of the discounted
return of taking action ``a`` in state ``s`` and acting greedily afterwards,
and after each transition ``(s, a, r, s')`` moves it toward the Bellman
target::

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * Q(s', a*) - Q(s, a))

The reward has a cost part and an SLA part combined by a Lagrange
multiplier λ (:mod:`elastic_des.agent.reward`), so the table keeps one
estimate of each, ``cost[s, a]`` and ``sla[s, a]`` (both <= 0), and acts on
``Q = cost + λ · sla``. Both are backed up from the same greedy next action
``a* = argmax_a' Q(s', a')``; because the return is linear in the rewards,
``Q`` is then exactly what one table would learn for the reward at λ, and
training can move λ (dual ascent on the SLA constraint) without relearning.

The table starts at zero; rewards are penalties (<= 0), so untried actions
look best and a learner tries each one (optimism in the face of
uncertainty). That zero is a placeholder, not an estimate, so it never
enters an estimate: the bootstrap runs over the actions tried in ``s'``
(0 if none was), the first update of a pair uses ``alpha = 1`` (see
:func:`visit_rate`), and :meth:`QTable.greedy` picks only among the actions
tried in a state and returns None for a state never visited.

A model is two files: ``<name>.npz`` with the arrays ``cost``, ``sla`` and
``visits`` (read with ``allow_pickle=False``: loading a model never runs
code) and ``<name>.json`` with the metadata: format version, state encoding,
actions, reward weights, the multiplier, training settings and the npz's
SHA-256, so a truncated, replaced or mismatched file is reported, never
half-used.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from elastic_des.atomic import atomic_path, write_json
from elastic_des.errors import ConfigError

FORMAT = "elastic_des.q_table"
FORMAT_VERSION = 2


NEAR_TIE = 1e-3  # Q-values closer than 0.1% of the larger magnitude are a near-tie


def near_tie(a: float, b: float, tolerance: float = NEAR_TIE) -> bool:
    """Whether ``a`` and ``b`` are within ``tolerance`` of the larger magnitude."""
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


class QTable:
    """``cost[s, a]``, ``sla[s, a]``, the multiplier that combines them, and
    how often each (state, action) was updated."""

    def __init__(self, cost: np.ndarray, sla: np.ndarray, visits: np.ndarray, hold_action: int,
                 multiplier: float = 1.0):
        if cost.ndim != 2 or cost.shape != sla.shape or cost.shape != visits.shape:
            raise ValueError(f"cost {cost.shape}, sla {sla.shape} and visits {visits.shape} must be equal 2-d shapes")
        if not 0 <= hold_action < cost.shape[1]:
            raise ValueError(f"hold_action = {hold_action}: not an action of a {cost.shape[1]}-action table")
        if not (np.isfinite(multiplier) and multiplier >= 0):
            raise ValueError(f"multiplier = {multiplier}: must be finite and >= 0")
        self.cost, self.sla, self.visits = cost, sla, visits
        self.hold_action = hold_action
        self.multiplier = float(multiplier)

    @classmethod
    def zeros(cls, n_states: int, n_actions: int, hold_action: int, multiplier: float = 1.0) -> "QTable":
        shape = (n_states, n_actions)
        return cls(np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=np.int64), hold_action, multiplier)

    def copy(self) -> "QTable":
        return QTable(self.cost.copy(), self.sla.copy(), self.visits.copy(), self.hold_action, self.multiplier)

    @property
    def shape(self) -> tuple[int, int]:
        return self.cost.shape

    def values(self, state: int) -> np.ndarray:
        """``Q(state, ·) = cost + multiplier · sla``."""
        return self.cost[state] + self.multiplier * self.sla[state]

    def update(self, state: int, action: int, cost: float, sla: float, next_state: int, alpha: float,
               gamma: float) -> float:
        """One Bellman backup of both parts (rewards ``-cost`` and ``-sla``);
        returns the temporal-difference error of the combined value."""
        best = self.greedy(next_state)
        next_cost = 0.0 if best is None else self.cost[next_state, best]
        next_sla = 0.0 if best is None else self.sla[next_state, best]
        before = self.cost[state, action] + self.multiplier * self.sla[state, action]
        self.cost[state, action] += alpha * (-cost + gamma * next_cost - self.cost[state, action])
        self.sla[state, action] += alpha * (-sla + gamma * next_sla - self.sla[state, action])
        self.visits[state, action] += 1
        target = -cost - self.multiplier * sla + gamma * (next_cost + self.multiplier * next_sla)
        return float(target - before)

    def _best(self, state: int, allowed: np.ndarray) -> int:
        q = np.where(allowed, self.values(state), -np.inf)
        best = np.flatnonzero(q == q.max())
        # Ties go to holding (no change is the cheapest mistake), else the first.
        return self.hold_action if self.hold_action in best else int(best[0])

    def greedy(self, state: int, min_visits: int = 1) -> Optional[int]:
        """The best action tried in ``state``; None if ``state`` has fewer than
        ``min_visits`` updates in all (too little to trust)."""
        tried = self.visits[state] > 0
        if not tried.any() or self.visits[state].sum() < min_visits:
            return None
        return self._best(state, tried)

    def near_tie_hold(self, state: int, action: int, tolerance: float) -> int:
        """Holding instead of ``action`` when holding was tried in ``state`` and
        its value is within ``tolerance`` of the larger magnitude of
        ``action``'s (a near-tie, :func:`near_tie`); else ``action``."""
        hold = self.hold_action
        if tolerance > 0 and action != hold and self.visits[state, hold] > 0:
            q = self.values(state)
            if near_tie(q[action], q[hold], tolerance):
                return hold
        return action

    def optimistic(self, state: int) -> int:
        """The best action counting untried ones at their initial value (for learning)."""
        return self._best(state, np.ones(self.shape[1], dtype=bool))

    def epsilon_greedy(self, state: int, epsilon: float, rng: np.random.Generator) -> tuple[int, bool]:
        """A uniformly random action with probability ``epsilon``, else :meth:`optimistic`.
        Returns the action and whether it was a random one."""
        if rng.random() < epsilon:
            return int(rng.integers(self.shape[1])), True
        return self.optimistic(state), False

    # -- files ----------------------------------------------------------
    def save(self, path: Path, metadata: dict) -> None:
        """Write ``path`` (.npz) and its metadata ``path.with_suffix('.json')``."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ConfigError(f"model path {path}: must end in .npz")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:  # a file object: numpy would append .npz to a name
                np.savez_compressed(handle, cost=self.cost, sla=self.sla, visits=self.visits)
        write_json(metadata_path(path), {
            **metadata,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "shape": list(self.shape),
            "hold_action": self.hold_action,
            "lagrange_multiplier": self.multiplier,
            "npz_sha256": _sha256(path),
        })

    @classmethod
    def load(cls, path: Path) -> tuple["QTable", dict]:
        """Read a model written by :meth:`save`; ConfigError naming the file on any defect."""
        path = Path(path)
        meta_path = metadata_path(path)
        for p in (path, meta_path):
            if not p.is_file():
                raise ConfigError(f"model file {p}: not found")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"model metadata {meta_path}: not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ConfigError(f"model metadata {meta_path}: not a {FORMAT} file")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"model metadata {meta_path}: format_version = {meta.get('format_version')!r}, "
                              f"this version of elastic_des reads {FORMAT_VERSION}")
        if meta.get("npz_sha256") != _sha256(path):
            raise ConfigError(f"model file {path}: its SHA-256 differs from the one in {meta_path.name}; "
                              "the table is corrupt or was replaced without its metadata")
        try:
            with np.load(path, allow_pickle=False) as data:
                cost, sla, visits = data["cost"], data["sla"], data["visits"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"model file {path}: cannot read the table ({exc})") from None
        shape = tuple(meta.get("shape", ()))
        if cost.shape != shape or sla.shape != shape or visits.shape != shape:
            raise ConfigError(f"model file {path}: table shape {cost.shape} (sla {sla.shape}, visits {visits.shape}) "
                              f"!= metadata shape {shape}")
        for name, values in (("cost", cost), ("sla", sla)):
            if values.dtype.kind != "f" or not np.isfinite(values).all():
                raise ConfigError(f"model file {path}: {name} values must be finite floats")
        if visits.dtype.kind not in "iu" or (visits < 0).any():
            raise ConfigError(f"model file {path}: visits must be non-negative integers")
        hold = meta.get("hold_action")
        if not isinstance(hold, int) or not 0 <= hold < shape[1]:
            raise ConfigError(f"model metadata {meta_path}: hold_action = {hold!r} is not an action index")
        multiplier = meta.get("lagrange_multiplier")
        if not isinstance(multiplier, (int, float)) or not np.isfinite(multiplier) or multiplier < 0:
            raise ConfigError(f"model metadata {meta_path}: lagrange_multiplier = {multiplier!r}: "
                              "must be a finite number >= 0")
        return cls(cost.astype(float), sla.astype(float), visits.astype(np.int64), hold, float(multiplier)), meta


def visit_rate(visits: int, power: float, minimum: float) -> float:
    """The learning rate of a pair's update after ``visits`` earlier ones:
    ``max(minimum, (visits + 1) ** -power)``, 1 for the first. With
    ``power`` in (0.5, 1] the rates satisfy the Robbins-Monro conditions
    until they reach ``minimum``, which keeps tracking the policy as it improves."""
    return max(minimum, (visits + 1) ** -power)


def metadata_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
