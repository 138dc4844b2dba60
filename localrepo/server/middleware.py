"""ASGI middleware (plain ASGI, no BaseHTTPMiddleware overhead).

- trailing slashes: ``/recognition/...`` and ``/account/...`` paths without the final
  slash are routed as if they had it (never redirected: a redirect drops a POST body);
- the body size limit (413), by Content-Length up front and by counting otherwise;
- fault knobs for tests: fixed latency, and every Nth API request answering 503;
- a fast path for the hottest routes (uploads, the image listing), see ``fast_routes``.
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

API_PREFIXES = ("/recognition/", "/account/")


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
        path: str = scope["path"]
        is_api = path.startswith(API_PREFIXES)
        if is_api and not path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path + "/"
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw + b"/"
        limit = self.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_json(send, 413, too_large_body(limit), [(b"connection", b"close")])
                    return
                break
        query: bytes = scope.get("query_string", b"")
        if is_api and b"%00" in query:
            # PostgreSQL text cannot hold NUL (a filter with one would fail as a 500);
            # refused on every database, as DRF refuses it, naming the parameter.
            for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    shown = key.replace("\x00", "\\x00")
                    await _send_json(send, 400, {shown: ["Null characters are not allowed."]}, [])
                    return
        if is_api and (self.latency or self.fail_every):
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
                    return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        fast = self.fast_routes.get((scope["method"], scope["path"])) if is_api else None
        if fast is not None:
            # A hot route served without FastAPI's routing and dependency machinery (about
            # 0.7 ms a request); its handler is the route's own code. Errors get the same
            # JSON bodies as everywhere else; a crash goes to the app's 500 handler.
            # A handler answers None for a request it leaves to the app (before reading
            # the body or doing anything the app would do again).
            request = Request(scope, limited_receive)
            response: Response | None
            try:
                response = await fast(request)
            except APIError as exc:
                response = json_response(exc.status, exc.body, exc.headers)
            except BodyTooLarge as exc:
                response = json_response(413, too_large_body(exc.limit), {"Connection": "close"})
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, limited_receive, send)
