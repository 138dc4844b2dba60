"""What several API processes share through a real PostgreSQL database: the token
buckets of the rate limits (server/ratelimit.py, data/ratelimits.py) and token
revocations (data/revocations.py); the locks of stored bytes are tested in
test_storage_units.py. Two objects on one database stand for two processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text

from localrepo.server.data.db import Database
from localrepo.server.ratelimit import SharedLimiter, TokenBucketLimiter, limiter_for


@pytest.fixture
def db(postgres: Any) -> Any:
    database = Database(postgres.new_database())
    database.create_all()
    yield database
    database.dispose()


def test_two_processes_share_one_bucket_per_key(db: Database) -> None:
    # A burst of 5 that never refills within the test: 5 in total, whoever asks.
    here, there = (SharedLimiter(db, "api", rate=1e-6, burst=5) for _ in range(2))
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda n: (here if n % 2 else there).check("token-1"), range(20)))
    assert sum(1 for w in waits if w == 0) == 5
    assert all(w > 1000 for w in waits if w)  # the seconds until a token is free again
    assert here.check("token-2") == 0  # another key has its own bucket
    assert SharedLimiter(db, "sign-in", rate=1e-6, burst=5).check("token-1") == 0  # and limit


def test_a_bucket_refills_at_its_rate(db: Database) -> None:
    limiter = SharedLimiter(db, "api", rate=1e6, burst=1)  # full again within a microsecond
    assert [limiter.check("k") for _ in range(5)] == [0.0] * 5


def test_full_buckets_are_forgotten_and_keys_are_stored_hashed(db: Database) -> None:
    SharedLimiter(db, "fast", rate=1e6, burst=1).check("10.0.0.1\0alice")
    SharedLimiter(db, "slow", rate=1e-6, burst=1).check("10.0.0.1\0alice")
    with db.read() as session:
        keys = [r[0] for r in session.execute(text("SELECT key FROM rate_buckets"))]
    assert len(keys) == 2 and all(len(k) == 64 and "alice" not in k for k in keys)
    from localrepo.server.data import ratelimits

    assert ratelimits.forget_full(db) == 1  # the fast one is full again; the slow one is not
    assert SharedLimiter(db, "slow", rate=1e-6, burst=1).check("10.0.0.1\0alice") > 0


def test_sqlite_keeps_its_buckets_in_memory(tmp_path: Any, db: Database) -> None:
    sqlite = Database(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        assert isinstance(limiter_for(sqlite, "api", 1, 1), TokenBucketLimiter)
    finally:
        sqlite.dispose()
    assert isinstance(limiter_for(db, "api", 1, 1), SharedLimiter)


def test_a_revocation_is_heard_by_every_listener(db: Database, postgres: Any) -> None:
    import psycopg
    from support.waiting import until

    from localrepo.server.data import accounts, revocations

    listener = revocations.RevocationListener(Database(db.url))
    try:
        assert listener.connected and listener.changed() is False  # nothing yet
        accounts.create_user(db, "ann")
        made = accounts.create_token(db, "ann")
        assert listener.changed() is False  # making a token is no revocation
        [token] = accounts.list_tokens(db, "ann")
        accounts.revoke_token(db, token.id)  # another process's revocation
        until(listener.changed, what="the revocation to be heard")
        assert listener.changed() is False  # heard once
        assert made.token
        # The connection lost: every look is "changed" (notifications may be missed)
        # until it listens again.
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (listener._conn.info.backend_pid,))
        until(lambda: listener.changed() and not listener.connected, what="the loss")
        assert listener.changed() is True
        listener._last_try = 0.0  # as after RECONNECT_SECONDS
        listener.reconnect()
        assert listener.connected and listener.changed() is False
    finally:
        listener.close()
        listener.db.dispose()
