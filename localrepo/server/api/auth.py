"""Authentication (``Authorization: Token <t>`` or ``JWT <t>``) and the rate limit."""

from __future__ import annotations

import math

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from ..context import Principal, get_ctx
from ..data.accounts import hash_token
from ..errors import detail

_SCHEMES = {"token", "jwt", "bearer"}
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Token"}

# Documents the header in OpenAPI ("Token <token>" or "JWT <token>").
authorization_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    scheme_name="TokenAuth",
    description='"Token <token>" (or "JWT <token>").',
)


async def authenticate(
    request: Request, header: str | None = Depends(authorization_header)
) -> Principal:
    if not header:
        raise detail(401, "Authentication credentials were not provided.", _UNAUTHORIZED_HEADERS)
    # DRF's TokenAuthentication, word for word: another scheme is no credentials at
    # all; then the header's shape; then the token.
    parts = header.split()
    if not parts or parts[0].lower() not in _SCHEMES:
        raise detail(401, "Authentication credentials were not provided.", _UNAUTHORIZED_HEADERS)
    if len(parts) == 1:
        raise detail(401, "Invalid token header. No credentials provided.", _UNAUTHORIZED_HEADERS)
    if len(parts) > 2:
        raise detail(
            401,
            "Invalid token header. Token string should not contain spaces.",
            _UNAUTHORIZED_HEADERS,
        )
    if not (parts[1].isascii() and parts[1].isprintable()):
        raise detail(
            401,
            "Invalid token header. Token string should not contain invalid characters.",
            _UNAUTHORIZED_HEADERS,
        )
    ctx = get_ctx(request)
    token_hash = hash_token(parts[1])
    principal = ctx.cached_principal(token_hash)
    if principal is None:
        principal = await run_in_threadpool(ctx.lookup_token, token_hash)
    if principal is None:
        raise detail(401, "Invalid token.", _UNAUTHORIZED_HEADERS)
    if ctx.limiter is not None:
        wait = await ctx.limiter.wait(principal.token_id)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise detail(
                429,
                f"Request was throttled. Expected available in {retry_after} second"
                + ("s." if retry_after != 1 else "."),
                {"Retry-After": str(retry_after)},
            )
    return principal
