"""Per-server state shared by the routes: settings, database, blob store, caches."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from .bodies import maybe_uuid
from .config import Settings
from .data import accounts
from .data.db import Database
from .data.storage import Storage
from .decodebudget import DecodeBudget
from .errors import detail, not_found
from .ml.classify import MLService
from .ml.features import Backends

DEFAULT_WORKSPACE = "Default"


@dataclass(frozen=True)
class Principal:
    user_id: str
    token_id: str
    default_workspace_id: str


class TokenBucketLimiter:
    """Per-key rate limit (API tokens; sign-in attempts). Runs on the event loop thread
    only (no lock needed). Past ``max_keys`` keys, the buckets that have filled up again
    are forgotten (a full bucket is what a new key gets): sign-in keys come from the
    client, and must not grow the table without end."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000):
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

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


@dataclass
class ServerContext:
    settings: Settings
    db: Database
    blobs: Storage
    limiter: TokenBucketLimiter | None = None
    # Sign-in attempts to the web interface, per (client address, user name); and at
    # most 4 password checks at once (argon2 takes 64 MiB each: a flood of sign-ins
    # waits in line instead of taking the memory).
    password_checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    login_limiter: TokenBucketLimiter = field(
        default_factory=lambda: TokenBucketLimiter(1 / 60, 10)
    )
    ml: MLService = field(default_factory=lambda: MLService(Backends()))
    decode_budget: DecodeBudget = field(default_factory=lambda: DecodeBudget(512 * 1024 * 1024))
    # sha256(token) -> (principal, expiry); bounded by the number of live tokens.
    auth_cache: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    # (user id, workspace id) pairs known to exist; workspaces are never moved.
    workspace_cache: set[tuple[str, str]] = field(default_factory=set)

    def lookup_token(self, token_hash: str) -> Principal | None:
        now = time.monotonic()
        hit = self.auth_cache.get(token_hash)
        if hit is not None and hit[1] > now:
            return hit[0]
        row = accounts.token_owner(self.db, token_hash)
        if row is None:
            self.auth_cache.pop(token_hash, None)
            return None
        principal = Principal(token_id=row[0], user_id=row[1], default_workspace_id=row[2])
        if self.settings.auth_cache_seconds > 0:
            if len(self.auth_cache) > 10_000:
                self.auth_cache.clear()
            self.auth_cache[token_hash] = (principal, now + self.settings.auth_cache_seconds)
        return principal

    def resolve_workspace(self, principal: Principal, value: object) -> str:
        """The workspace id from a query or body value; 404 for anything not the user's."""
        if value is None or value == "" or value == DEFAULT_WORKSPACE:
            return principal.default_workspace_id
        if not isinstance(value, str):
            raise detail(400, 'workspace must be a workspace id (UUID) or "Default".')
        ws = value.strip().lower()
        if (principal.user_id, ws) in self.workspace_cache:
            return ws
        if not accounts.owns_workspace(self.db, principal.user_id, ws):
            raise not_found("Workspace not found.")
        self.workspace_cache.add((principal.user_id, ws))
        return ws

    def resolve_workspace_of(
        self, principal: Principal, value: object, kind: str, object_id: str
    ) -> str:
        """A by-id route's workspace: the one named, checked as ``resolve_workspace``
        does; with none named, whichever of the caller's workspaces holds the object
        (the hosted service asks no workspace there: docs/api.md, "Workspaces"). An id
        none of them holds falls back to the default workspace, where the route's own
        look-up answers 404."""
        canonical = maybe_uuid(object_id) if value is None or value == "" else None
        if canonical is not None:
            found = accounts.workspace_holding(self.db, principal.user_id, kind, canonical)
            if found is not None:
                return found
        return self.resolve_workspace(principal, value)


def get_ctx(request: Request) -> ServerContext:
    return request.app.state.ctx  # type: ignore[no-any-return]
