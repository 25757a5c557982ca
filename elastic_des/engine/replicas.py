"""GPU replicas and the pool that provisions, drains and bills them.

A replica goes through four states::

    PROVISIONING --(cold start)--> READY --(scale in)--> DRAINING --(idle)--> TERMINATED
         \\______________________(scale in before ready)_____________________/

It is billed from the start of provisioning to termination, whether or not
it serves anything: a cold start costs money before it earns any. A READY
replica holds up to ``slots`` requests in service at once; a DRAINING one
finishes what it holds but takes nothing new.

SimPy's ``Resource`` cannot change its capacity, and creating a ``Request``
object per customer is most of its cost, so the pool keeps plain counters
and a stack of replicas with a free slot instead. Requests are packed onto
the replica on top of the stack, which leaves other replicas idle and so
cheap to remove when the fleet shrinks.
"""

from __future__ import annotations

from typing import Callable, Optional

import simpy

PROVISIONING, READY, DRAINING, TERMINATED = "provisioning", "ready", "draining", "terminated"


class Replica:
    """One model server. ``busy`` counts the slots in use."""

    __slots__ = ("id", "state", "busy", "provisioned_s", "ready_s", "terminated_s")

    def __init__(self, replica_id: int, now: float):
        self.id = replica_id
        self.state = PROVISIONING
        self.busy = 0
        self.provisioned_s = now
        self.ready_s: Optional[float] = None
        self.terminated_s: Optional[float] = None

    def __repr__(self) -> str:
        return f"Replica({self.id}, {self.state}, busy={self.busy})"


class ReplicaPool:
    """The replicas of one fleet, resized by :meth:`set_target`.

    ``on_complete(request_index, replica)`` is called when a service the
    pool runs itself ends (a batching replica's, through :meth:`_end_service`),
    with the replica that served it if that replica is READY (None if it
    drains and so takes no new work); it returns True if it handed the slot
    to a waiting request, which then keeps the slot busy. A slot's service
    is a timeout the dispatcher starts and ends itself; it calls
    :meth:`release` for a slot it does not hand over.
    ``on_free_slot(replica)`` is called for each slot of a replica that
    becomes ready; it returns True if it handed the slot over likewise.
    """

    def __init__(self, env: simpy.Environment, slots: int, cold_start_s: float):
        if slots < 1:
            raise ValueError(f"slots = {slots}: a replica needs at least one slot")
        if cold_start_s < 0:
            raise ValueError(f"cold_start_s = {cold_start_s}: must be >= 0")
        self.env = env
        self.slots = slots
        self.cold_start_s = cold_start_s
        self.replicas: list[Replica] = []
        self.alive: list[Replica] = []  # not yet terminated
        self.free: list[Replica] = []  # READY with busy < slots
        self.target = 0
        self.n_provisioning = self.n_ready = self.n_draining = 0
        self.busy_slots = 0
        # Integrals over time, for utilization: busy slot-seconds and
        # serving (ready or draining) slot-seconds.
        self.busy_area = 0.0
        self.serving_area = 0.0
        self._t_area = 0.0
        self.terminated_billed_s = 0.0
        self.on_complete: Callable[[int, Optional[Replica]], bool] = lambda index, replica: False
        self.on_free_slot: Callable[[Replica], bool] = lambda replica: False

    # -- time integrals -------------------------------------------------
    def _advance_areas(self) -> None:
        now = self.env._now
        dt = now - self._t_area
        if dt:
            self.busy_area += self.busy_slots * dt
            self.serving_area += (self.n_ready + self.n_draining) * self.slots * dt
            self._t_area = now

    def billed_replica_s(self) -> float:
        """Replica-seconds billed from t=0 until now."""
        now = self.env.now
        return self.terminated_billed_s + sum(now - r.provisioned_s for r in self.alive)

    # -- slots ----------------------------------------------------------
    def acquire(self, i: int) -> Optional[Replica]:
        """Take a free slot for request ``i``, or None if every slot is busy.

        A slot fits any request; :class:`~elastic_des.engine.batching.BatchingPool`
        looks at ``i`` (its KV-cache need).
        """
        free = self.free
        if not free:
            return None
        replica = free[-1]
        replica.busy += 1
        if replica.busy == self.slots:
            free.pop()
        # _advance_areas(), inlined: this runs for most requests.
        now = self.env._now
        dt = now - self._t_area
        if dt:
            self.busy_area += self.busy_slots * dt
            self.serving_area += (self.n_ready + self.n_draining) * self.slots * dt
            self._t_area = now
        self.busy_slots += 1
        return replica

    def reserve(self, i: int, replica: Replica) -> bool:
        """Whether request ``i`` may take a free slot of ``replica`` (any slot fits any request)."""
        return True

    def _end_service(self, i: int, replica: Replica) -> bool:
        """Request ``i``'s service on ``replica`` ended: hand its slot on or free it.
        Returns whether ``replica`` is READY."""
        ready = replica.state == READY
        if not self.on_complete(i, replica if ready else None):  # else the slot went to a waiting request
            self.release(replica, ready)
        return ready

    def release(self, replica: Replica, ready: bool) -> None:
        """A slot of ``replica`` (READY if ``ready``, else draining) is no longer busy."""
        self._advance_areas()
        self.busy_slots -= 1
        replica.busy -= 1
        if ready:
            if replica.busy == self.slots - 1:
                self.free.append(replica)
        elif replica.busy == 0:  # a draining replica emptied
            self._terminate(replica)

    # -- lifecycle ------------------------------------------------------
    def start(self, ready_replicas: int) -> None:
        """Begin with ``ready_replicas`` warm replicas at t=0."""
        for _ in range(ready_replicas):
            self._make_ready(self._provision())
        self.target = ready_replicas

    def _new_replica(self) -> Replica:
        return Replica(len(self.replicas), self.env.now)

    def _provision(self) -> Replica:
        replica = self._new_replica()
        self.replicas.append(replica)
        self.alive.append(replica)
        self.n_provisioning += 1
        return replica

    def _make_ready(self, replica: Replica) -> None:
        if replica.state != PROVISIONING:
            return  # cancelled while it was starting
        self._advance_areas()
        self.n_provisioning -= 1
        self.n_ready += 1
        replica.state = READY
        replica.ready_s = self.env.now
        self.free.append(replica)
        self._fill(replica)

    def _fill(self, replica: Replica) -> None:
        """Serve the queue from the free slots of the READY ``replica``."""
        self._advance_areas()
        while replica.busy < self.slots and self.on_free_slot(replica):
            replica.busy += 1
            self.busy_slots += 1
            if replica.busy == self.slots:
                self.free.remove(replica)

    def _terminate(self, replica: Replica) -> None:
        self._advance_areas()
        if replica.state == PROVISIONING:
            self.n_provisioning -= 1
        elif replica.state == READY:
            self.n_ready -= 1
        else:
            self.n_draining -= 1
        replica.state = TERMINATED
        replica.terminated_s = self.env.now
        self.alive.remove(replica)
        self.terminated_billed_s += replica.terminated_s - replica.provisioned_s

    @property
    def active(self) -> int:
        """Replicas that count toward the target: provisioning or ready."""
        return self.n_provisioning + self.n_ready

    def set_target(self, target: int) -> None:
        """Provision or retire replicas until ``target`` are provisioning or ready.

        Scale-in retires the cheapest first: replicas still provisioning
        (newest first), then idle ready ones, then the least busy, which drain.
        """
        if target < 0:
            raise ValueError(f"target = {target}: must be >= 0")
        self.target = target
        for _ in range(target - self.active):
            replica = self._provision()
            self.env.timeout(self.cold_start_s).callbacks.append(lambda _, r=replica: self._make_ready(r))
        excess = self.active - target
        if excess <= 0:
            return
        starting = [r for r in reversed(self.alive) if r.state == PROVISIONING]
        for replica in starting[:excess]:
            self._terminate(replica)
        excess -= min(excess, len(starting))
        ready = sorted((r for r in self.alive if r.state == READY), key=lambda r: r.busy)
        for replica in ready[:excess]:
            if replica.busy < self.slots:
                self.free.remove(replica)
            if replica.busy == 0:
                self._terminate(replica)
            else:
                self._advance_areas()
                self.n_ready -= 1
                self.n_draining += 1
                replica.state = DRAINING
