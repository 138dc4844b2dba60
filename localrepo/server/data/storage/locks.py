"""Per-hash locks of the blob store, held within one process and across processes.

Why: one blob can back several images. A delete that finds a blob unreferenced and
removes it must not interleave with an upload of the same bytes that has stored (or
found) the blob and is about to commit its row: the row would lack its bytes. Both
hold the blob's lock from the store (or the check) to the commit (or the removal), and
so does the sweep (server/fsck.py) while it re-checks and removes an orphan object.

Chosen over "never delete inline, let the sweep do it": a deleted image's bytes go at
once (users expect a delete to delete), and an object store has no atomic rename, so
a sweep could not put back an object an upload had just reused (the local store's
``remove_orphan`` trick) without a lock anyway.

Two layers, taken in this order: a striped ``threading.Lock`` (threads of one process),
then a lock other processes see, chosen by the database (which every process shares):

- PostgreSQL: a session-level advisory lock keyed by (a constant, 32 bits of the hash),
  on a few dedicated connections per process (a stripe always on the same one); waiting
  polls ``pg_try_advisory_lock``, so one thread's wait never holds a connection from
  another's. If a connection is lost, the server drops the locks it held; it reconnects
  for the next one.
- SQLite (every process on one machine): an ``fcntl`` byte-range lock, one byte per
  stripe, in ``<data folder>/blobs.lock``. POSIX record locks belong to the process,
  hence the thread layer first.

Two hashes may share a stripe or a key: they then wait for each other, nothing worse.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

STRIPES = 256
_PG_CLASS = 0x6C72  # "lr": the first key of this server's advisory locks


class ProcessLocks(Protocol):
    """The cross-process layer, per stripe (the caller holds that stripe's thread lock)."""

    def acquire(self, sha256: str, stripe: int, *, blocking: bool) -> bool: ...

    def release(self, sha256: str, stripe: int) -> None: ...


class Held:
    """A lock taken with ``BlobLocks.try_lock``: ``release`` it once."""

    def __init__(self, locks: BlobLocks, sha256: str, stripe: int):
        self._locks, self._sha, self._stripe = locks, sha256, stripe

    def release(self) -> None:
        self._locks._release(self._sha, self._stripe)


class BlobLocks:
    def __init__(self, across: ProcessLocks | None = None, stripes: int = STRIPES):
        self._threads = [threading.Lock() for _ in range(stripes)]
        self._across = across

    def _stripe(self, sha256: str) -> int:
        return int(sha256[:8], 16) % len(self._threads)

    @contextlib.contextmanager
    def locked(self, sha256: str) -> Iterator[None]:
        stripe = self._stripe(sha256)
        with self._threads[stripe]:
            if self._across is not None:
                self._across.acquire(sha256, stripe, blocking=True)
            try:
                yield
            finally:
                if self._across is not None:
                    self._across.release(sha256, stripe)

    def try_lock(self, sha256: str) -> Held | None:
        """``locked`` without waiting (for the event loop): None if busy."""
        stripe = self._stripe(sha256)
        lock = self._threads[stripe]
        if not lock.acquire(blocking=False):
            return None
        if self._across is not None and not self._across.acquire(sha256, stripe, blocking=False):
            lock.release()
            return None
        return Held(self, sha256, stripe)

    def _release(self, sha256: str, stripe: int) -> None:
        try:
            if self._across is not None:
                self._across.release(sha256, stripe)
        finally:
            self._threads[stripe].release()


class FileRangeLocks:
    """One byte per stripe of a lock file; for processes sharing one machine."""

    def __init__(self, path: Path):
        self._path = path
        self._fd = -1
        self._open = threading.Lock()

    def _file(self) -> int:
        # Opened once and never closed: closing any descriptor of the file would drop
        # every POSIX lock this process holds on it.
        with self._open:
            if self._fd < 0:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                with contextlib.suppress(OSError):  # one an older umask left readable
                    os.fchmod(self._fd, 0o600)
            return self._fd

    def acquire(self, sha256: str, stripe: int, *, blocking: bool) -> bool:
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.lockf(self._file(), flags, 1, stripe)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def release(self, sha256: str, stripe: int) -> None:
        fcntl.lockf(self._file(), fcntl.LOCK_UN, 1, stripe)


class AdvisoryLocks:
    """PostgreSQL advisory locks on a few dedicated autocommit connections: a stripe's
    locks always on the same one (a session lock is released by its own session), and
    several, so that lock traffic of busy threads does not queue on one connection."""

    def __init__(self, engine: Any, connections: int = 4, poll_seconds: float = 0.002):
        self._engine = engine
        self._conns: list[Any] = [None] * connections
        self._mutexes = [threading.Lock() for _ in range(connections)]
        self._poll = poll_seconds

    @staticmethod
    def _key(sha256: str) -> int:
        return int(sha256[:8], 16) - 2**31  # PostgreSQL's int4

    def _run(self, sql: str, sha256: str, stripe: int) -> bool:
        from sqlalchemy import text

        slot = stripe % len(self._conns)
        with self._mutexes[slot]:
            for attempt in (1, 2):
                try:
                    if self._conns[slot] is None:
                        self._conns[slot] = self._engine.connect()
                    params = {"c": _PG_CLASS, "k": self._key(sha256)}
                    row = self._conns[slot].execute(text(sql), params).first()
                    return bool(row[0])
                except Exception:
                    with contextlib.suppress(Exception):
                        self._conns[slot].close()
                    self._conns[slot] = None
                    if attempt == 2:
                        raise
        return False  # pragma: no cover - the loop returns or raises

    def acquire(self, sha256: str, stripe: int, *, blocking: bool) -> bool:
        wait = self._poll
        while not self._run("SELECT pg_try_advisory_lock(:c, :k)", sha256, stripe):
            if not blocking:
                return False
            time.sleep(wait)
            wait = min(wait * 2, 0.05)
        return True

    def release(self, sha256: str, stripe: int) -> None:
        self._run("SELECT pg_advisory_unlock(:c, :k)", sha256, stripe)
