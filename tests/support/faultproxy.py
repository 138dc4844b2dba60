"""A fault-injecting HTTP proxy on loopback, for tests: the client talks to the proxy, the
proxy talks to a real localrepo-server. Requests pass unchanged; faults are only made up
where a rule (or the seeded `chaos` mode) says so, and every request is recorded.

Actions (`Rule.action`):
    forward        pass the request on, pass the answer back (the default)
    delay          wait `Rule.seconds`, then forward (reordered completions under load)
    hold           set `Rule.arrived`, wait until the test sets `Rule.release`, then
                   forward: a request kept back until something else has happened (an
                   event, where `delay` guesses how long that takes)
    status:<code>  answer <code> without forwarding (500, 502, 503; 429 comes with
                   `Retry-After: 0`): the server never saw the request
    after:<code>   forward (the server acts and commits), then answer <code> instead of
                   its answer: a gateway that timed out after the server committed
    drop           close the connection without forwarding: nothing reached the server
    drop_after     forward (the server acts), then close without an answer: the
                   response is lost after the request was carried out
    cut            forward, then send the status, the headers and half of the body, and
                   close: a connection cut mid-body
    stall          forward, then say nothing for `Rule.seconds` and close: the client's
                   read timeout fires after the server committed

`rewrite` changes the answers the server gave (odd data from a remote).

`500` is an alias of `status:500` (older tests use it).

In `chaos` mode (`proxy.chaos = Chaos(random.Random(seed), rate)`), each request draws
its fault from that generator, in the order the requests arrive: with one request at a
time (the simulation syncs with `jobs=1`) the faults are a function of the seed.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# How long a held request waits for its release at most (a test that forgot it).
HOLD_LIMIT = 600.0

_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
)


@dataclass
class Rule:
    method: str
    path_re: str
    action: str
    times: int = 1
    hits: int = 0
    seconds: float = 0.0  # delay / stall
    # hold: set when a held request arrives; the test sets `release` to let it through.
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


# The faults chaos mode draws, with their weights. `stall` costs the client's read timeout
# each time, so it is rare.
CHAOS_ACTIONS: tuple[tuple[str, int], ...] = (
    ("status:500", 3),
    ("status:502", 2),
    ("status:503", 2),
    ("status:429", 3),
    ("after:502", 3),
    ("after:504", 2),
    ("drop", 3),
    ("drop_after", 4),
    ("cut", 3),
    ("delay", 3),
    ("stall", 1),
)


@dataclass
class Chaos:
    """Seeded random faults: each request is broken with probability `rate`."""

    rng: random.Random
    rate: float
    actions: tuple[tuple[str, int], ...] = CHAOS_ACTIONS
    delay: float = 0.02
    stall: float = 3.2  # more than the simulation client's read timeout (3 s)

    def draw(self) -> Rule | None:
        if self.rng.random() >= self.rate:
            return None
        names = [a for a, _ in self.actions]
        weights = [w for _, w in self.actions]
        action = self.rng.choices(names, weights)[0]
        seconds = self.stall if action == "stall" else self.delay
        return Rule("*", "", action, seconds=seconds)


@dataclass
class FaultProxy:
    """An HTTP proxy to the real server, one request per connection."""

    upstream: str  # "http://127.0.0.1:PORT/"
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, action)
    chaos: Chaos | None = None
    # rewrite(method, path, body) -> body: changes what the server answered (a remote
    # that sends odd data), applied to every forwarded answer.
    rewrite: Callable[[str, str, bytes], bytes] | None = None
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def add(
        self, method: str, path_re: str, action: str, times: int = 1, seconds: float = 0.0
    ) -> Rule:
        """Break the next `times` requests `method` whose path matches `path_re`."""
        rule = Rule(method, path_re, action, times, seconds=seconds)
        self.rules.append(rule)
        return rule

    def faults(self) -> Counter[str]:
        """How many requests met each fault (not counting plain forwards)."""
        with self._lock:
            return Counter(action for _m, _p, action in self.seen if action != "forward")

    def _pick(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if (
                    rule.hits < rule.times
                    and rule.method in (method, "*")
                    and re.search(rule.path_re, path)
                ):
                    rule.hits += 1
                    chosen: Rule | None = rule
                    break
            else:
                chosen = self.chaos.draw() if self.chaos is not None else None
            action = chosen.action if chosen else "forward"
            self.seen.append((method, path, "status:500" if action == "500" else action))
            return chosen

    def start(self) -> FaultProxy:
        handler = type("Handler", (_ProxyHandler,), {"proxy": self, "up": httpx.URL(self.upstream)})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    """One request through the proxy: `FaultProxy.start` subclasses it with its `proxy`
    and the upstream URL `up`."""

    protocol_version = "HTTP/1.0"
    proxy: FaultProxy
    up: httpx.URL

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rule = self.proxy._pick(self.command, self.path)
        action = rule.action if rule else "forward"
        if action == "500":
            action = "status:500"
        if self._fault_before_forward(action, rule):
            return
        status, headers, data = self._forward(body)
        if self.proxy.rewrite is not None:
            data = self.proxy.rewrite(self.command, self.path, data)
        self._reply_after_forward(action, rule, status, headers, data)

    def _fault_before_forward(self, action: str, rule: Rule | None) -> bool:
        """The faults met before the request is forwarded; True when it never is."""
        if action == "drop":
            self._drop()
            return True
        if action.startswith("status:"):
            self._answer(int(action.split(":", 1)[1]))
            return True
        if action == "delay" and rule is not None:
            time.sleep(rule.seconds)
        if action == "hold" and rule is not None:
            rule.arrived.set()
            rule.release.wait(HOLD_LIMIT)  # a test that forgets to release ends
        return False

    def _reply_after_forward(
        self,
        action: str,
        rule: Rule | None,
        status: int,
        headers: list[tuple[str, str]],
        data: bytes,
    ) -> None:
        """Pass the server's answer back, or the fault met after forwarding."""
        if action == "drop_after":
            self._drop()
        elif action.startswith("after:"):
            self._answer(int(action.split(":", 1)[1]))
        elif action == "stall" and rule is not None:
            time.sleep(rule.seconds)
            self._drop()
        elif action == "cut":
            self._send(status, headers, data, cut=True)
        else:
            self._send(status, headers, data)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.up.host, self.up.port, timeout=60)
        try:
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("connection", "keep-alive")
            }
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _send(
        self, status: int, headers: list[tuple[str, str]], data: bytes, cut: bool = False
    ) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in _HOP_HEADERS:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(data)

    def _answer(self, status: int) -> None:
        data = b'{"detail": "injected fault (%d)"}' % status
        headers = [("Content-Type", "application/json")]
        if status == 429:
            headers.append(("Retry-After", "0"))
        self._send(status, headers, data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle
