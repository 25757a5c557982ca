"""Continuous-batching replicas: processor sharing with a batch-dependent speed.

A vLLM-style server runs up to ``max_num_seqs`` sequences at once. Every
decode step gives each running sequence one token and takes
``t_step(b) = step_base_s + step_per_seq_s * b`` seconds for a batch of
``b``, so while the batch holds ``b`` sequences each advances at
``1 / t_step(b)`` tokens per second: the replica is a processor-sharing
server whose speed depends on its batch.

**Decode by virtual time.** Each replica keeps a virtual clock ``v``, the
tokens every running sequence has decoded since the clock started; it runs
at ``1 / t_step(b)`` and stands still while the replica prefills. A sequence
joining with ``d`` tokens to decode gets the finish tag ``v + d`` and goes on
a heap; it is done when ``v`` reaches its tag. Only the replica's next
event is scheduled, at the time its smallest tag (or the end of the current
prefills) is reached at the current speed, and it is re-timed when the
batch changes: O(log b) per change, never an event per token.

**Prefill.** A request's prompt is prefilled at ``prefill_tokens_per_s``
(``prompt / rate`` seconds) in a per-replica FIFO, one prompt after another,
and decode stops while the replica prefills: a prefill step runs the prompts
alone, as vLLM's scheduler without chunked prefill does, so prefill and
decode share the GPU's time and neither is free. The prefill yields the
first token (TTFT = queue wait + waiting for earlier prefills + own
prefill); the sequence joins the decode batch for its ``output - 1``
remaining tokens when the replica's prefills are all done. Chunked prefill,
which interleaves prompt chunks with decode steps, is not modelled; its
effect on step time is inside the calibrated ``t0`` and ``t1``. Without a
prefill rate, requests join the batch on admission (pure processor sharing).

**KV cache and admission.** A replica has ``kv_budget_tokens`` of KV cache.
Reservation rule: a request is admitted only if its prompt plus its whole
output fits in what the running sequences have not reserved, and it holds
that reservation until it finishes. Reserving the final context up front
means no sequence is ever preempted (vLLM instead allocates blocks as tokens
are generated and preempts when it runs out: our rule admits a little less
at the same budget, and never recomputes). A request that does not fit
waits in the fleet's FIFO queue; the queue's head is dispatched to a replica
with a free sequence and room for it, and requests behind it wait too, in
order; a new request goes to the least loaded replica with room. A request larger than a whole replica's budget can never run and is
dropped on arrival (``too_long``), as vLLM rejects prompts beyond its
maximum context.

The dispatcher sees the same interface as the slots pool
(:class:`~elastic_des.engine.replicas.ReplicaPool`): ``busy`` counts the
admitted sequences (prefilling or decoding) and ``slots`` is
``max_num_seqs``. SimPy's private attributes are used here for speed, each
use commented, as in the dispatcher.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Optional

import numpy as np
import simpy
from simpy.events import NORMAL, Event

from elastic_des.engine.replicas import Replica, ReplicaPool

# A virtual-clock tag counts as reached within this relative rounding error.
_TAG_TOLERANCE = 1e-9


class BatchReplica(Replica):
    """A replica with a decode batch, a prefill queue and a KV budget."""

    __slots__ = ("kv_free", "v", "t_v", "step_s", "tags", "prefills", "prefill_end_s", "wake_at", "wake_id")

    def __init__(self, replica_id: int, now: float, kv_budget: float, step_base_s: float):
        super().__init__(replica_id, now)
        self.kv_free = kv_budget
        self.v = 0.0  # tokens decoded by every running sequence, at time t_v
        self.t_v = now
        self.step_s = step_base_s  # the current step time, t_step(len(tags))
        self.tags: list[tuple[float, int]] = []  # (finish tag, request) of the decoding sequences
        self.prefills: deque[int] = deque()  # requests prefilled or prefilling, awaiting the batch
        self.prefill_end_s = now  # when the prefills queued so far are done
        self.wake_at = float("inf")  # time of the pending wake-up (inf: none)
        self.wake_id = 0  # the id of the valid wake-up; older ones are stale


class BatchingPool(ReplicaPool):
    """A fleet of continuous-batching replicas; see the module docs.

    Each request's work (:class:`~elastic_des.engine.service.BatchWork`) is
    read from the dispatcher's request store, columns ``prefill``,
    ``decode`` and ``kv``, and its start and first token recorded in
    ``start_s`` and ``first_token_s``
    (request ``i`` at ``i - base``, as in
    :class:`~elastic_des.engine.records.RequestStore`). The store and the
    dispatcher's ``queue`` and ``purge_expired`` are bound by :meth:`attach`.
    """

    def __init__(self, env: simpy.Environment, *, max_num_seqs: int, cold_start_s: float, step_base_s: float,
                 step_per_seq_s: float, kv_budget_tokens: Optional[float]):
        if step_base_s <= 0:
            raise ValueError(f"step_base_s = {step_base_s}: must be > 0")
        if step_per_seq_s < 0:
            raise ValueError(f"step_per_seq_s = {step_per_seq_s}: must be >= 0")
        if kv_budget_tokens is not None and kv_budget_tokens <= 0:
            raise ValueError(f"kv_budget_tokens = {kv_budget_tokens}: must be > 0 or None")
        super().__init__(env, max_num_seqs, cold_start_s)
        self.t0, self.t1 = float(step_base_s), float(step_per_seq_s)
        self.kv_budget = float("inf") if kv_budget_tokens is None else float(kv_budget_tokens)
        self.queue: deque = deque()
        self.purge_expired = lambda: None

    def serve(self, requests) -> None:
        """Read each request's work from ``requests`` (a ``RequestStore``) and record its start and first token there."""
        if not hasattr(requests, "first_token_s"):
            raise ValueError("a batching pool records each request's first token: its RequestStore must be "
                             "made with first_tokens=True")
        self.requests = requests
        self.prefill, self.decode, self.kv = requests.prefill, requests.decode, requests.kv
        self.start_s, self.first_token_s = requests.start_s, requests.first_token_s

    def attach(self, dispatcher) -> None:
        """Serve ``dispatcher``: read its requests, see its queue (admission is FIFO) and start its services."""
        self.serve(dispatcher.requests)
        self.queue = dispatcher.queue
        self.purge_expired = dispatcher.purge_expired
        dispatcher.start_service = self.start_service

    # -- admission ------------------------------------------------------
    def _new_replica(self) -> Replica:
        return BatchReplica(len(self.replicas), self.env.now, self.kv_budget, self.t0)

    def reserve(self, i: int, replica: BatchReplica) -> bool:
        """Reserve request ``i``'s KV tokens on ``replica`` if they fit."""
        need = self.kv[i - self.requests.base]
        if need > replica.kv_free:
            return False
        replica.kv_free -= need
        return True

    def acquire(self, i: int) -> Optional[Replica]:
        """The least loaded READY replica with a free sequence and room for request ``i``, or None.

        Unlike the slots pool, which packs requests onto one replica, a
        batching fleet spreads them: a replica's sequences share its speed, so
        a router sends each request where the batch is smallest. None as
        well while others wait: admission is FIFO, so a newcomer
        that fits where the queue's head does not still queues behind it.
        """
        queue = self.queue
        if queue:
            if queue[0][0] <= self.env._now:  # _now: the current time, read without a property call
                self.purge_expired()
            if queue:
                return None
        best = None
        need = self.kv[i - self.requests.base]
        for replica in self.free:  # the least loaded replica that fits, as a load-balancing router picks
            if need <= replica.kv_free and (best is None or replica.busy < best.busy):
                best = replica
        if best is None:
            return None
        best.kv_free -= need
        self._advance_areas()
        best.busy += 1
        self.busy_slots += 1
        if best.busy == self.slots:
            self.free.remove(best)
        return best

    def start_service(self, i: int, replica: BatchReplica) -> None:
        """Request ``i`` was admitted to ``replica`` now: record its start, queue its prefill or join the batch."""
        now = self.env._now
        j = i - self.requests.base
        self.start_s[j] = now
        duration = self.prefill[j]
        if duration > 0:
            self._advance(replica, now)  # decode stops from now while it prefills
            start = replica.prefill_end_s if replica.prefills else now
            replica.prefill_end_s = start + duration
            replica.prefills.append(i)
            self.first_token_s[j] = replica.prefill_end_s
        else:
            self.first_token_s[j] = now
            self._advance(replica, now)
            self._join(replica, i)
        self._schedule(replica, now)

    # -- the virtual clock ----------------------------------------------
    def _advance(self, replica: BatchReplica, now: float) -> None:
        """Bring ``replica.v`` to ``now``: the clock runs only while decoding and not prefilling."""
        if replica.tags and not replica.prefills:
            replica.v += (now - replica.t_v) / replica.step_s
        replica.t_v = now

    def _join(self, replica: BatchReplica, i: int) -> None:
        heapq.heappush(replica.tags, (replica.v + self.decode[i - self.requests.base], i))
        replica.step_s = self.t0 + self.t1 * len(replica.tags)

    def _schedule(self, replica: BatchReplica, now: float) -> None:
        """Make sure a wake-up is pending no later than the replica's next event."""
        if replica.prefills:
            when = replica.prefill_end_s
        elif replica.tags:
            when = now + max(replica.tags[0][0] - replica.v, 0.0) * replica.step_s
            if when <= now:
                # The next tag is nearer than the float clock resolves at `now`
                # (late in a long run, a young replica's virtual clock is small:
                # its tag tolerance is finer than one step of `now`). A wake-up
                # at `now` would advance v by nothing and wake again at `now`,
                # for ever: wake at the next instant the clock can hold, whose
                # advance of v reaches the tag.
                when = math.nextafter(now, math.inf)
        else:
            return
        if when >= replica.wake_at:
            return  # an earlier wake-up is pending; it will look again
        replica.wake_at = when
        replica.wake_id += 1
        wake = Event(self.env)
        # Scheduled by hand, as env.schedule would (it asks for a delay, and
        # now + (when - now) need not equal when): _ok/_value mark the event
        # triggered with (replica, id), and _queue is SimPy's event heap of
        # (time, priority, event id, event) whose ids come from _eid.
        wake._ok = True
        wake._value = (replica, replica.wake_id)
        wake.callbacks.append(self._wake)
        heapq.heappush(self.env._queue, (when, NORMAL, next(self.env._eid), wake))

    def _wake(self, event: Event) -> None:
        replica, wake_id = event._value  # _value: set in _schedule
        if wake_id != replica.wake_id:
            return  # superseded by an earlier wake-up
        replica.wake_at = float("inf")
        now = self.env._now
        self._advance(replica, now)
        if replica.prefills and replica.prefill_end_s <= now:
            prefilled, replica.prefills = replica.prefills, deque()
            for i in prefilled:
                self._join(replica, i)
        done = []
        tags = replica.tags
        limit = replica.v + _TAG_TOLERANCE * max(1.0, abs(replica.v))
        while tags and tags[0][0] <= limit:
            done.append(heapq.heappop(tags)[1])
        if done:
            replica.step_s = self.t0 + self.t1 * len(tags)
            for i in done:
                self._finish(i, replica)
        self._schedule(replica, now)

    def _finish(self, i: int, replica: BatchReplica) -> None:
        """Request ``i`` got its last token: free its KV, then its sequence or hand it on."""
        replica.kv_free += self.kv[i - self.requests.base]
        if self._end_service(i, replica):
            self._fill(replica)  # the freed KV may fit more than one waiting request
