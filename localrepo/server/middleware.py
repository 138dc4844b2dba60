"""ASGI middleware (plain ASGI, no BaseHTTPMiddleware overhead).

- trailing slashes: ``/recognition/``, ``/account/`` and ``/annotate/`` paths without the final
  slash are routed as if they had it (never redirected: a redirect drops a POST body);
- the body size limit (413), by Content-Length up front and by counting otherwise;
- a query parameter holding a NUL character refused (400, naming the parameter);
- fault knobs for tests: fixed latency, and every Nth API request answering 503;
- a fast path for the hottest routes (uploads, the image listing), see ``fast_routes``.

``ApiMiddleware.__call__`` is the sequence of these steps, each a function below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .errors import APIError, BodyTooLarge, json_response, too_large_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
FastHandler = Callable[[Request], Awaitable[Response | None]]

API_PREFIXES = ("/recognition/", "/account/", "/annotate/")


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    data = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class ApiMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        fail_every: int = 0,
        latency_ms: int = 0,
        fast_routes: dict[tuple[str, str], FastHandler] | None = None,
    ) -> None:
        self.app = app
        self.fast_routes = fast_routes or {}
        self.max_body_bytes = max_body_bytes
        self.fail_every = fail_every
        self.latency = latency_ms / 1000.0
        self._count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith(API_PREFIXES)
        if is_api:
            scope = _with_slash(scope)
        limit = self.max_body_bytes
        if _declared_length(scope) > limit:
            await _send_json(send, 413, too_large_body(limit), [(b"connection", b"close")])
            return
        if is_api:
            nul = _nul_parameter(scope.get("query_string", b""))
            if nul is not None:
                await _send_json(send, 400, {nul: ["Null characters are not allowed."]}, [])
                return
            if (self.latency or self.fail_every) and await self._inject_fault(send):
                return
        limited = _limited_receive(receive, limit)
        fast = self.fast_routes.get((scope["method"], scope["path"])) if is_api else None
        if fast is not None and await _serve_fast(fast, scope, receive, limited, send):
            return
        await self.app(scope, limited, send)

    async def _inject_fault(self, send: Send) -> bool:
        """The test knobs: wait the fixed latency; answer 503 to every Nth API request.
        True when the request was answered."""
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.fail_every:
            self._count += 1
            if self._count % self.fail_every == 0:
                await _send_json(
                    send,
                    503,
                    {"detail": "Service temporarily unavailable (injected fault)."},
                    [(b"retry-after", b"1")],
                )
                return True
        return False


def _with_slash(scope: Scope) -> Scope:
    """An API path without its final slash, routed as if it had it (a copy of the scope;
    never a redirect, which would drop a POST body)."""
    path: str = scope["path"]
    if path.endswith("/"):
        return scope
    scope = dict(scope)
    scope["path"] = path + "/"
    raw = scope.get("raw_path")
    if raw:
        scope["raw_path"] = raw + b"/"
    return scope


def _declared_length(scope: Scope) -> int:
    """The request's first Content-Length; 0 when there is none or it is no number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _nul_parameter(query: bytes) -> str | None:
    """The first query parameter holding a NUL character (key or value), as it is named
    in the 400 answer (NUL shown as \\x00), or None. PostgreSQL text cannot hold NUL (a
    filter with one would fail as a 500); refused on every database, as DRF refuses it,
    naming the parameter."""
    if b"%00" not in query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return key.replace("\x00", "\\x00")
    return None


def _limited_receive(receive: Receive, limit: int) -> Receive:
    """`receive`, raising BodyTooLarge once the body read so far passes `limit` bytes
    (for a body whose length was not declared, or was declared wrong)."""
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return limited_receive


async def _serve_fast(
    fast: FastHandler, scope: Scope, receive: Receive, limited: Receive, send: Send
) -> bool:
    """Serve a hot route without FastAPI's routing and dependency machinery (about 0.7 ms
    a request); its handler is the route's own code. Errors get the same JSON bodies as
    everywhere else; a crash goes to the app's 500 handler. A handler answers None for a
    request it leaves to the app (before reading the body or doing anything the app would
    do again): then False, and nothing was sent."""
    request = Request(scope, limited)
    response: Response | None
    try:
        response = await fast(request)
    except APIError as exc:
        response = json_response(exc.status, exc.body, exc.headers)
    except BodyTooLarge as exc:
        response = json_response(413, too_large_body(exc.limit), {"Connection": "close"})
    if response is None:
        return False
    await response(scope, receive, send)
    return True
