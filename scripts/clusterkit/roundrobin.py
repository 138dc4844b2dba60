"""A small round-robin HTTP load balancer on loopback, for the cluster script.

`RoundRobin(backends).start()` listens on a free 127.0.0.1 port and sends each request
to the next backend in turn that is up, the way a load balancer in front of several
`localrepo-server serve` processes does (docs/server.md, "Running several processes"):

- a thread asks every backend's `/readyz` every `probe_every` seconds; a backend that
  fails `FALL` probes in a row (no 200 within `PROBE_TIMEOUT`) is down until one
  passes: a busy backend answers its probe late without being gone;
- a backend that refuses the connection is marked down at once and the request goes to
  the next one (nothing was sent, so any method may be tried again); when none is up,
  every backend is tried (they may all be merely slow to answer their probes);
- a failure after the request was sent answers 502 `{"detail": ...}`: the backend may
  have acted, so only the client may decide to try again;
- bodies stream both ways, in chunks (a request's `Content-Length` or chunked body, an
  answer's length or chunks), never held whole.

The Host header passes unchanged, so the server's absolute links (`next`, media) point at
this proxy. Counts of what it did are in `stats`.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
FALL = 3  # failed probes in a row that make a backend down (HAProxy's `fall`)
PROBE_TIMEOUT = 5.0
# Headers of one hop only (RFC 9110, 7.6.1), never forwarded.
HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class RoundRobin:
    def __init__(
        self, backends: list[tuple[str, int]], *, probe_every: float = 0.5, timeout: float = 120.0
    ) -> None:
        self.backends = list(backends)
        self.up = [True] * len(backends)
        self.failed_probes = [0] * len(backends)
        self.probe_every = probe_every
        self.timeout = timeout
        self.stats: Counter[str] = Counter()
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        handler = type("Handler", (_Handler,), {"balancer": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]

    def start(self) -> RoundRobin:
        threading.Thread(target=self._server.serve_forever, name="rr-serve", daemon=True).start()
        for index in range(len(self.backends)):  # one each: a slow probe delays no other
            threading.Thread(
                target=self._probe_loop, args=(index,), name=f"rr-probe-{index}", daemon=True
            ).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    # -- choosing a backend ----------------------------------------------------------------

    def candidates(self) -> Iterator[int]:
        """Backends to try for one request: those up, starting at the next in turn."""
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.backends)
            order = [(start + k) % len(self.backends) for k in range(len(self.backends))]
            alive = [i for i in order if self.up[i]]
        if not alive:
            self.stats["no backend up: tried them all"] += 1
        yield from alive or order

    def mark(self, index: int, up: bool) -> None:
        with self._lock:
            if self.up[index] != up:
                self.stats["marked up" if up else "marked down"] += 1
            self.up[index] = up

    def _probe_loop(self, index: int) -> None:
        host, port = self.backends[index]
        while not self._stop.wait(self.probe_every):
            try:
                ready = _ready(host, port)
            except Exception:  # never let the probes stop: a backend would stay down
                ready = False
            self.failed_probes[index] = 0 if ready else self.failed_probes[index] + 1
            if ready or self.failed_probes[index] >= FALL:
                self.mark(index, ready)


def _ready(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class _Handler(BaseHTTPRequestHandler):
    """One connection of a client; `balancer` is set by the subclass `RoundRobin` makes."""

    balancer: RoundRobin

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_request(self) -> None:
        conn = None
        for index in self.balancer.candidates():
            host, port = self.balancer.backends[index]
            candidate = http.client.HTTPConnection(host, port, timeout=self.balancer.timeout)
            try:
                candidate.connect()
            except OSError:
                candidate.close()
                self.balancer.mark(index, False)
                self.balancer.stats["connect refused, tried the next"] += 1
                continue
            conn = candidate
            break
        if conn is None:
            self.balancer.stats["503 no backend answered"] += 1
            self._fail(503, "No API process answered.")
            return
        self.answering = False
        try:
            self._forward(conn)
        except (OSError, http.client.HTTPException) as exc:
            if self.answering:  # the status line is out: all that is left is to cut
                self.balancer.stats["cut mid-answer"] += 1
                self.close_connection = True
            else:
                self.balancer.stats["502 backend failed mid-request"] += 1
                self._fail(502, f"The API process failed ({type(exc).__name__}).")
        finally:
            conn.close()

    def _forward(self, conn: http.client.HTTPConnection) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP_HEADERS:
                conn.putheader(name, value)
        conn.putheader("X-Forwarded-For", self.client_address[0])
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        if chunked:
            self._copy_chunked_request(conn)
        else:
            self._copy_length(int(self.headers.get("Content-Length") or 0), conn)
        answer = conn.getresponse()
        self.answering = True
        self.send_response_only(answer.status, answer.reason)
        length = answer.getheader("Content-Length")
        for name, value in answer.getheaders():
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        if length is None and self.command != "HEAD" and answer.status not in (204, 304):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while block := answer.read1(CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.end_headers()
            while block := answer.read1(CHUNK):
                self.wfile.write(block)
        self.balancer.stats[f"answered {answer.status // 100}xx"] += 1

    def _copy_length(self, left: int, conn: http.client.HTTPConnection) -> None:
        while left > 0:
            block = self.rfile.read(min(CHUNK, left))
            if not block:
                raise ConnectionError("the client's body ended early")
            conn.send(block)
            left -= len(block)

    def _copy_chunked_request(self, conn: http.client.HTTPConnection) -> None:
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                conn.send(b"0\r\n\r\n")
                return
            block = self.rfile.read(size)
            self.rfile.readline()
            conn.send(b"%x\r\n%s\r\n" % (len(block), block))

    def _fail(self, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        try:
            self.send_response_only(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client went
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
