"""The worlds of one run, one after another or side by side.

The candidate and baseline worlds of a dual-world run share nothing but
their inputs (the config, the seed, the requests replayed from the seeded
streams), so they can run in two processes at once. A world run in a
worker process is the same computation on the same inputs, so its result
is bit-for-bit what the serial run gives (``tests/test_workers.py``).

``run.workers``: ``auto`` uses two processes when there are two worlds and
two cores are free (usable CPUs minus the one-minute load average), else
one; ``1`` or ``2`` forces it. The worker is forked, so it inherits the
built policy, forecaster and request source instead of rebuilding them, and
only its :class:`~elastic_des.engine.simulation.WorldResult` (or the error
it raised) is sent back; its request rows, if written, go to a file of its
own (:mod:`elastic_des.request_files`).
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any, Callable, Sequence

from elastic_des.errors import ConfigError

WORKERS_AUTO = "auto"


def check_workers(value: Any, field: str = "run.workers") -> None:
    """``value`` is ``auto`` or a whole number of processes >= 1."""
    if value == WORKERS_AUTO:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field} = {value!r}: must be 'auto' or an integer >= 1")


def free_cores() -> float:
    """Usable CPUs not busy on average over the last minute."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cpus - os.getloadavg()[0]


def process_count(setting: Any, worlds: int) -> int:
    """How many processes run ``worlds`` worlds under ``run.workers = setting``."""
    check_workers(setting)
    wanted = (2 if free_cores() >= 2 else 1) if setting == WORKERS_AUTO else setting
    return max(1, min(wanted, worlds, 2))


def _work(job: Callable[[], Any], connection) -> None:
    try:
        result = (True, job())
    except BaseException as exc:  # sent back and raised in the parent, whatever it is
        result = (False, exc)
    connection.send(result)
    connection.close()


def run_worlds(jobs: Sequence[Callable[[], Any]], processes: int) -> list[Any]:
    """The results of ``jobs`` (one per world), in order; with ``processes = 2`` the
    last job runs in a forked worker while this process runs the others."""
    if processes < 2 or len(jobs) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [job() for job in jobs]
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(target=_work, args=(jobs[-1], send), name="elastic_des-world")
    worker.start()
    send.close()
    try:
        results = [job() for job in jobs[:-1]]
        ok, value = receive.recv()
    finally:
        worker.join()
    if not ok:
        raise value
    return [*results, value]
