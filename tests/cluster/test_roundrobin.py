"""The cluster's round-robin proxy (scripts/clusterkit/roundrobin.py) against two real
HTTP backends: requests alternate; a dead backend is skipped; bodies pass both ways,
chunked or not; a backend dying mid-request is a 502 the client sees; with every backend
marked down, each is tried anyway."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from clusterkit.roundrobin import RoundRobin


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/die":  # gone before answering
            self.close_connection = True
            return
        body = f"{self.server.server_address[1]} {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while size := int(self.rfile.readline().strip(), 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers["Content-Length"]))
        # No length: the proxy passes it on chunked.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data[::-1])
        self.close_connection = True


@pytest.fixture
def backends() -> Iterator[list[ThreadingHTTPServer]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Backend) for _ in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


def test_round_robin_skips_a_dead_backend_and_streams_bodies(
    backends: list[ThreadingHTTPServer],
) -> None:
    ports = [s.server_address[1] for s in backends]
    proxy = RoundRobin([("127.0.0.1", p) for p in ports], probe_every=3600).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}") as client:
            answers = [client.get("/x").text.split() for _ in range(4)]
            assert [int(a[0]) for a in answers] == [ports[0], ports[1], ports[0], ports[1]]
            # The Host header passes unchanged (the server's links name the proxy).
            assert {a[1] for a in answers} == {f"127.0.0.1:{proxy.port}"}

            body = bytes(range(256)) * 1000
            assert client.post("/p", content=body).content == body[::-1]
            chunks = [b"ab", b"cd" * 40000, b"e"]
            assert client.post("/p", content=iter(chunks)).content == b"".join(chunks)[::-1]

            assert client.get("/die").status_code == 502

            backends[0].shutdown()
            backends[0].server_close()
            answers = [client.get("/x").text.split()[0] for _ in range(4)]
            assert answers == [str(ports[1])] * 4
            assert proxy.up == [False, True]

            # Every backend down by its probes (busy, not gone): each is tried anyway.
            proxy.mark(1, False)
            assert client.get("/x").text.split()[0] == str(ports[1])
            assert proxy.stats["no backend up: tried them all"] == 1
        assert proxy.stats["connect refused, tried the next"] == 1
        assert proxy.stats["502 backend failed mid-request"] == 1
    finally:
        proxy.stop()
