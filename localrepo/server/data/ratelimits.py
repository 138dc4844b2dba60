"""The shared token buckets (table ``rate_buckets``): one atomic statement a request.

``take`` refills the bucket for the time since its last request (at ``rate`` a second, up
to ``burst``) and takes one token if there is one, in a single upsert; the row lock it
takes makes concurrent requests from any process wait their turn, so the limit holds in
total across processes and hosts. The database's clock is the only clock (hosts' clocks
may differ). Written for PostgreSQL (``ON CONFLICT``, ``clock_timestamp``); SQLite's
single process keeps its buckets in memory (server/ratelimit.py).
"""

from __future__ import annotations

from sqlalchemy import text

from .db import Database

_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
# The bucket refilled up to this request; then what is left once it took its token.
_REFILLED = "LEAST(:burst, b.tokens + GREATEST(0, EXCLUDED.stamp - b.stamp) * :rate)"
_LEFT = f"(CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END)"
_STAMP = "GREATEST(b.stamp, EXCLUDED.stamp)"

_TAKE = text(
    "INSERT INTO rate_buckets AS b (key, tokens, stamp, allowed, full_at) "
    f"VALUES (:key, :burst - 1, {_NOW}, TRUE, {_NOW} + 1 / :rate) "
    "ON CONFLICT (key) DO UPDATE SET "
    f"tokens = {_LEFT}, allowed = {_REFILLED} >= 1, stamp = {_STAMP}, "
    f"full_at = {_STAMP} + (:burst - {_LEFT}) / :rate "
    "RETURNING tokens, allowed"
)

_FORGET = text(f"DELETE FROM rate_buckets WHERE full_at < {_NOW}")


def take(db: Database, key: str, rate: float, burst: float) -> float:
    """0 when the request may proceed (a token taken), else the seconds until one is."""
    with db.write_conn() as conn:
        row = conn.execute(_TAKE, {"key": key, "rate": float(rate), "burst": float(burst)}).one()
    tokens, allowed = float(row[0]), bool(row[1])
    return 0.0 if allowed else (1.0 - tokens) / rate


def forget_full(db: Database) -> int:
    """Remove the buckets that are full again (a full bucket is what a new key gets)."""
    with db.write_conn() as conn:
        return int(conn.execute(_FORGET).rowcount or 0)
