"""HEAD, OPTIONS and ``Allow`` on the API as the hosted service's framework (Django REST
framework) answers them (docs/api.md, "Conventions"):

- ``HEAD`` of a path that answers ``GET``: the ``GET`` answer's status and headers,
  without its body;
- ``OPTIONS``: with a valid token, 200 and the view's metadata (its name, what it
  renders and parses), ``Allow`` listing the path's methods; without one, the same 401
  as any other method;
- a method the path does not take: 405 with ``Allow`` listing every method the path
  takes (Starlette names only the first route's).

Plain ASGI, inside ``ApiMiddleware`` (so paths already have their final slash). Paths
outside the API, and paths no route matches, pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import APIError
from .middleware import API_PREFIXES

_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_PARSES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]

Authenticate = Callable[[Request, str | None], Awaitable[Any]]


def allowed_methods(routes: list[Any], scope: Scope) -> list[str]:
    """Every method some route takes for the path of ``scope``, HEAD with GET and
    OPTIONS with any, in DRF's order; empty when no route has the path."""
    methods: set[str] = set()
    for method in _ORDER[:5]:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in routes):
            methods.add(method)
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")
    methods.add("OPTIONS")
    return [m for m in _ORDER if m in methods]


def _view_name(path: str) -> str:
    """``/recognition/v2/task/{id}/`` -> "Task Instance", ``.../task/`` -> "Task List"."""
    parts = [p for p in path.split("/") if p]
    last = parts[-1] if parts else ""
    is_id = len(last) == 36 and last.count("-") == 4
    noun = parts[-2] if is_id and len(parts) > 1 else last
    title = noun.replace("-", " ").replace("_", " ").title()
    return f"{title} Instance" if is_id else f"{title} List"


async def _send(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    raw = orjson.dumps(body)
    header_list = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
    ]
    header_list += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": raw})


class MethodsMiddleware:
    def __init__(
        self, app: ASGIApp, *, routes: Callable[[], list[Any]], authenticate: Authenticate
    ):
        self.app = app
        self.routes = routes
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, self._full_allow(scope, send))
            return
        allowed = allowed_methods(self.routes(), scope)
        if not allowed:
            await self.app(scope, receive, send)
        elif method == "OPTIONS":
            await self._options(scope, receive, send, {"Allow": ", ".join(allowed)})
        elif "HEAD" in allowed:
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
        else:
            allow = {"Allow": ", ".join(allowed)}
            await _send(send, 405, {"detail": f'Method "{method}" not allowed.'}, allow)

    def _full_allow(self, scope: Scope, send: Send) -> Send:
        """``send``, with a 405's ``Allow`` naming every method of the path."""

        async def checked_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = ", ".join(allowed_methods(self.routes(), scope)).encode()
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow)]}
            await send(message)

        return checked_send

    async def _options(
        self, scope: Scope, receive: Receive, send: Send, allow: dict[str, str]
    ) -> None:
        request = Request(scope, receive)
        try:
            await self.authenticate(request, request.headers.get("authorization"))
        except APIError as exc:
            await _send(send, exc.status, exc.body, exc.headers)
            return
        metadata = {
            "name": _view_name(scope["path"]),
            "description": "",
            "renders": ["application/json"],
            "parses": _PARSES,
        }
        await _send(send, 200, metadata, allow)


def _without_body(send: Send) -> Send:
    """``send`` for a HEAD: the GET answer's start (headers, Content-Length included) and
    an empty body."""

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})
            return
        await send(message)

    return head_send
