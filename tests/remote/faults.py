"""Fault injection for the remote client tests: an `httpx.BaseTransport` wrapper around
the real `httpx.HTTPTransport`. Requests go to the real server; only the faults are
made up (an answer replaced, a response lost after the server acted, a refused
connection), and every exchange is recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Hook = Callable[[httpx.Request, httpx.Response], httpx.Response]


@dataclass
class Fault:
    method: str | None
    path: str | None  # a substring of the URL path
    times: int
    forward: bool  # send the request to the server first (it acts), then fail
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    exc: type[httpx.TransportError] | None = None

    def matches(self, request: httpx.Request) -> bool:
        if self.times <= 0:
            return False
        if self.method is not None and request.method != self.method:
            return False
        return self.path is None or self.path in request.url.path


@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    outcome: int | str  # the status the client saw, or the exception's name
    forwarded: bool
    headers: dict[str, str]


class FaultTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.faults: list[Fault] = []
        self.log: list[Exchange] = []
        self.hooks: list[Hook] = []
        self._lock = threading.Lock()

    # -- arranging faults -------------------------------------------------------------------

    def answer(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        forward: bool = False,
    ) -> None:
        """Answer `status` instead of the server's answer (after forwarding the request
        to the server when `forward`: a gateway that lost the answer)."""
        self.faults.append(Fault(method, path, times, forward, status, dict(headers or {})))

    def fail(
        self,
        exc: type[httpx.TransportError],
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        forward: bool = False,
    ) -> None:
        """Raise `exc` (after forwarding the request when `forward`: the server acted
        and the answer was lost)."""
        self.faults.append(Fault(method, path, times, forward, exc=exc))

    # -- reading the record -----------------------------------------------------------------

    def calls(self, method: str | None = None, path: str | None = None) -> list[Exchange]:
        with self._lock:
            return [
                e
                for e in self.log
                if (method is None or e.method == method)
                and (path is None or path in httpx.URL(e.url).path)
            ]

    # -- transport --------------------------------------------------------------------------

    def _take(self, request: httpx.Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(request):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, request: httpx.Request, outcome: int | str, forwarded: bool) -> None:
        with self._lock:
            self.log.append(
                Exchange(
                    request.method, str(request.url), outcome, forwarded, dict(request.headers)
                )
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._take(request)
        if fault is None:
            response = self.inner.handle_request(request)
            if self.hooks:
                response.read()
                for hook in self.hooks:
                    response = hook(request, response)
            self._record(request, response.status_code, True)
            return response
        if fault.forward:
            real = self.inner.handle_request(request)
            real.read()
            real.close()
        if fault.exc is not None:
            self._record(request, fault.exc.__name__, fault.forward)
            raise fault.exc("injected fault", request=request)
        assert fault.status is not None
        self._record(request, fault.status, fault.forward)
        return httpx.Response(
            fault.status,
            headers=fault.headers,
            json={"detail": f"injected {fault.status}"},
            request=request,
        )

    def close(self) -> None:
        self.inner.close()


def rewrite_next(new_origin: str, *, drop_prefix: str = "") -> Hook:
    """A hook that moves the `next` links of JSON pages to another origin (a server
    behind a proxy that names another host)."""

    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if "json" not in response.headers.get("content-type", ""):
            return response
        body: Any = response.json()
        if not isinstance(body, dict) or not body.get("next"):
            return response
        url = httpx.URL(body["next"])
        path = url.path
        if drop_prefix and path.startswith(drop_prefix):
            path = path[len(drop_prefix) :]
        body["next"] = f"{new_origin}{path}?{url.query.decode()}"
        return httpx.Response(
            response.status_code,
            headers={"content-type": "application/json"},
            content=json.dumps(body).encode(),
            request=request,
        )

    return hook


class PrefixStripTransport(httpx.BaseTransport):
    """A reverse proxy in miniature: the client talks to ``/<prefix>/recognition/...``
    and the server sees ``/recognition/...`` (so its `next` links lack the prefix)."""

    def __init__(self, prefix: str, inner: httpx.BaseTransport | None = None) -> None:
        self.prefix = prefix.rstrip("/")
        self.inner = inner or httpx.HTTPTransport()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if path.startswith(self.prefix + "/"):
            path = path[len(self.prefix) :]
        request.url = request.url.copy_with(path=path)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
