"""Rate limits: a token bucket per key (an API token; a sign-in address and user name).

Contract: ``await limiter.wait(key)`` is 0 when the request may proceed (it took a
token), else the seconds until one is free. Two kinds, one contract:

- ``TokenBucketLimiter`` keeps its buckets in this process's memory: for SQLite, whose
  server is one process (server/cli.py refuses ``--workers`` there);
- ``SharedLimiter`` keeps them in the database (data/ratelimits.py), so that a limit of
  R a second is R in total across every process and host on it, not R per process.

``limiter_for`` picks the one that fits the database.
"""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from starlette.concurrency import run_in_threadpool

from .data import ratelimits
from .data.db import Database

# A shared limiter removes the buckets that are full again every this many requests.
FORGET_EVERY = 1000


class Limiter(Protocol):
    async def wait(self, key: str) -> float: ...


class TokenBucketLimiter:
    """Per-key rate limit in memory. Runs on the event loop thread only (no lock
    needed). Past ``max_keys`` keys, the buckets that have filled up again are forgotten
    (a full bucket is what a new key gets): sign-in keys come from the client, and must
    not grow the table without end."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000):
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    async def wait(self, key: str) -> float:
        return self.check(key)

    def check(self, key: str) -> float:
        """0 when the request may proceed, else the seconds to wait."""
        now = time.monotonic()
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._buckets = {
                k: (t, last)
                for k, (t, last) in self._buckets.items()
                if t + (now - last) * self.rate < self.burst
            }
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


class SharedLimiter:
    """Per-key rate limit in the database, shared by every process on it. ``name``
    keeps two limits' buckets apart; keys are stored hashed (a sign-in key holds an
    address and a user name)."""

    def __init__(self, db: Database, name: str, rate: float, burst: float):
        self.db = db
        self.name = name
        self.rate = rate
        self.burst = burst
        self._calls = 0

    async def wait(self, key: str) -> float:
        return await run_in_threadpool(self.check, key)

    def check(self, key: str) -> float:
        self._calls += 1
        if self._calls % FORGET_EVERY == 0:
            ratelimits.forget_full(self.db)
        digest = hashlib.sha256(f"{self.name}\0{key}".encode()).hexdigest()
        return ratelimits.take(self.db, digest, self.rate, self.burst)


def limiter_for(db: Database, name: str, rate: float, burst: float) -> Limiter:
    """In the database on PostgreSQL; in memory elsewhere (SQLite: one process)."""
    if db.is_postgres:
        return SharedLimiter(db, name, rate, burst)
    return TokenBucketLimiter(rate, burst)
