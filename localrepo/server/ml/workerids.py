"""Who holds a training job: a worker's id is ``host:pid``, and a job is taken back into
the queue only when its worker is gone (docs/server.md, "Training workers").

Contract: ``worker_id(host, pid)`` names a worker; ``gone_here(worker, host, alive)``
says whether the worker that holds a job is certainly gone: none named, or a process of
this host (``host``) that ``alive(pid)`` says is not running. A worker of another host is
never "gone" by this test: only its heartbeat's age can tell (``stale_before``). Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ..data.tables import iso_at

# A worker heartbeats with each batch of image features and each step of a training; one
# silent for this long has died (or its host has), and its job goes back to the queue.
STALE_SECONDS = 600
# How often a worker looks for the jobs of workers that died (`worker --requeue-every`).
REQUEUE_EVERY_SECONDS = 60.0


def worker_id(host: str, pid: int) -> str:
    return f"{host}:{pid}"


def gone_here(worker: str | None, host: str, alive: Callable[[int], bool]) -> bool:
    if not worker:
        return True
    name, _, pid = worker.rpartition(":")
    if name != host or not pid.isdigit():
        return False
    return not alive(int(pid))


def stale_before(now: datetime, seconds: float = STALE_SECONDS) -> str:
    """The stored timestamp before which a heartbeat is too old."""
    return iso_at(now - timedelta(seconds=seconds))
