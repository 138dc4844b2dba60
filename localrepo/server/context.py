"""Per-process state shared by the routes: settings, database, blob store, caches.

Everything here that must agree across processes lives in the database (the rate limits:
server/ratelimit.py; the locks of stored bytes: data/storage/locks.py). What stays in this
process's memory is either a memory budget, which is per process by nature (the decode
budget, the password checks at once), or a cache of facts that no other process can
make false: a workspace is never moved or
removed, and a token is trusted from the cache for ``--auth-cache-seconds`` at most,
and not once a revocation is heard (on PostgreSQL every process hears every revocation
at once: data/revocations.py). docs/server.md, "Several processes"."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from .bodies import maybe_uuid
from .config import Settings
from .data import accounts
from .data.db import Database
from .data.revocations import RevocationListener
from .data.storage import Storage
from .decodebudget import DecodeBudget
from .errors import detail, not_found
from .ml.classify import MLService
from .ml.features import Backends
from .ratelimit import Limiter, TokenBucketLimiter

DEFAULT_WORKSPACE = "Default"


@dataclass(frozen=True)
class Principal:
    user_id: str
    token_id: str
    default_workspace_id: str


@dataclass
class ServerContext:
    settings: Settings
    db: Database
    blobs: Storage
    limiter: Limiter | None = None
    # Sign-in attempts to the web interface, per (client address, user name); and at
    # most 4 password checks at once in this process (argon2 takes 64 MiB each: a flood
    # of sign-ins waits in line instead of taking the memory; memory is per process).
    password_checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    login_limiter: Limiter = field(default_factory=lambda: TokenBucketLimiter(1 / 60, 10))
    ml: MLService = field(default_factory=lambda: MLService(Backends()))
    decode_budget: DecodeBudget = field(default_factory=lambda: DecodeBudget(512 * 1024 * 1024))
    # sha256(token) -> (principal, expiry); bounded by the number of live tokens.
    auth_cache: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    # On a database server: revocations anywhere, heard at once (data/revocations.py).
    revocations: RevocationListener | None = None
    auth_generation: int = 0  # one more each time the cache is forgotten
    # (user id, workspace id) pairs known to exist; workspaces are never moved.
    workspace_cache: set[tuple[str, str]] = field(default_factory=set)

    def cached_principal(self, token_hash: str) -> Principal | None:
        """The token's owner if the cache may still vouch for it (on the event loop:
        never waits). Any revocation heard forgets the whole cache: they are rare."""
        if self.revocations is not None and self.revocations.changed():
            self.auth_cache.clear()
            self.auth_generation += 1
        hit = self.auth_cache.get(token_hash)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def lookup_token(self, token_hash: str) -> Principal | None:
        """The token's owner from the database (in a worker thread), then cached unless
        a revocation was heard meanwhile or revocations cannot be heard."""
        generation = self.auth_generation
        listening = self.revocations is None or self.revocations.connected
        if self.revocations is not None:
            self.revocations.reconnect()
        row = accounts.token_owner(self.db, token_hash)
        if row is None:
            self.auth_cache.pop(token_hash, None)
            return None
        principal = Principal(token_id=row[0], user_id=row[1], default_workspace_id=row[2])
        now = time.monotonic()
        if (
            self.settings.auth_cache_seconds > 0
            and listening
            and generation == self.auth_generation
        ):
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
