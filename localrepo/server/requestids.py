"""Request ids and the failure log (plain ASGI, the outermost middleware).

- every response carries ``X-Request-ID``: the client's own when it is sane (1 to 128
  letters, digits and ``._:-``), a new one otherwise; routes read it from
  ``request.state.request_id`` (classify's ``status.request_id`` is the same);
- one log line per failed request, naming the request id, method, path and status:
  a 4xx at info, a 5xx at error (with the traceback when it was a crash). Never the
  query string, headers or body: nothing a token or password could be in;
- an exception no handler answered becomes a 500 from ``on_crash`` (JSON with the
  request id, no traceback text) sent here, so the connection stays open for the next
  request (left to Starlette's outermost handler, the exception would reach uvicorn,
  which closes the connection).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from .middleware import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("localrepo.server")

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

# (request, request id) -> the 500 answer to a crash.
CrashAnswer = Callable[[Request, str], Response]


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == HEADER and _SANE.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class RequestIds:
    def __init__(self, app: ASGIApp, *, on_crash: CrashAnswer) -> None:
        self.app = app
        self.on_crash = on_crash

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            await send(message)

        where = f"request {rid} {scope['method']} {scope['path']}"
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("%s -> 500: unhandled %s", where, type(exc).__name__, exc_info=exc)
            if status:  # the answer had begun: nothing more can be said on it
                raise
            await self.on_crash(Request(scope), rid)(scope, receive, send_with_id)
            return
        if status >= 500:
            log.error("%s -> %d", where, status)
        elif status >= 400:
            log.info("%s -> %d", where, status)
