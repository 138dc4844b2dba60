"""Throughput with 1 and with 2 API processes (``serve --workers N``) on PostgreSQL (a
standalone script, not a test).

    .venv/bin/python benchmarks/procs.py [--uploads 1500] [--listings 1500] [--clients 8]
                                         [--per-connection 50] [--rounds 2]

A throwaway PostgreSQL cluster (tests/support/pgcluster.py); per round and per process
count, a server on a new database (a subprocess on 127.0.0.1, access log off, no
training worker) and two phases, each from `--clients` clients at once on keep-alive
connections, each opened again after `--per-connection` requests (50), as clients and
load balancers recycle theirs. Which process takes a connection is the kernel's choice
of whichever accepts first: a client that keeps one connection for the whole run stays
with the process that happened to take it.

1. uploads: `--uploads` distinct 320x240 JPEGs (base64 JSON), made before the clock starts;
2. listings: `--listings` pages of 50 of those images;

after `--warm-up` untimed uploads and listings (100 each).

Printed per phase: requests a second with 1 and with 2 processes, the best of the
rounds (rounds alternate 1, 2, 1, 2: the machine's other work weighs on both alike), and
the ratio 2-process / 1-process; also the CPU seconds each API process spent, to show
that both served. The load generator is the lightest there is, so that the server keeps
the CPU: one thread, asyncio, raw HTTP/1.1 on keep-alive connections with the requests
built in advance (no HTTP library's per-request work).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchcommon import ROOT, SERVER, compile_package, start
from PIL import Image

sys.path.insert(0, str(ROOT / "tests"))
from support.pgcluster import PostgresCluster

TICK = os.sysconf("SC_CLK_TCK")


def small_jpeg(seed: int) -> bytes:
    img = Image.new("RGB", (320, 240), (seed % 251, (seed // 251) % 251, (seed * 7) % 251))
    img.putpixel((seed % 320, (seed // 320) % 240), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, load {load}"


def request(method: str, path: str, host: str, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _blast(
    host: str, port: int, requests: list[bytes], clients: int, per_connection: int, ok: int
) -> float:
    """Send `requests` from `clients` at once, each on a keep-alive connection that it
    opens again after `per_connection` requests; requests a second."""
    queue = list(reversed(requests))

    async def client() -> None:
        while queue:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                for _ in range(per_connection):
                    if not queue:
                        break
                    status = await _one(reader, writer, queue.pop())
                    if status != ok:
                        raise SystemExit(f"answered {status}, not {ok}")
            finally:
                writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(requests) / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def run(workers: int, url: str, work: Path, args: argparse.Namespace, images: list[bytes]) -> dict:
    ready = work / f"server-{workers}.json"
    ready.unlink(missing_ok=True)
    cmd = [
        *SERVER,
        "serve",
        "--port",
        "0",
        "--data",
        str(work / f"data-{workers}"),
        "--database-url",
        url,
        "--workers",
        str(workers),
        "--dev",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-worker",
        "--ready-file",
        str(ready),
        *args.serve_arg,
    ]
    proc, info = start(cmd, ready, work / f"server-{workers}.log")
    try:
        pids = info.get("workers", [info["pid"]])
        host, port, token = "127.0.0.1", int(info["port"]), info["token"]
        uploads = [
            request(
                "POST",
                "/recognition/v2/training-image/",
                host,
                token,
                b'{"base64": "' + base64.b64encode(data) + b'"}',
            )
            for data in images
        ]
        listing = request("GET", "/recognition/v2/training-image/?page_size=50", host, token)
        # Untimed: every process's first requests (lazy imports, first connections) on
        # connections opened every 5 requests, so that each process gets some.
        warm = uploads[: args.warm_up] + [listing] * args.warm_up
        asyncio.run(_blast(host, port, warm[: args.warm_up], args.clients, 5, 201))
        asyncio.run(_blast(host, port, warm[args.warm_up :], args.clients, 5, 200))
        uploads = uploads[args.warm_up :]
        out: dict = {}
        for name, batch, ok in (
            ("uploads", uploads, 201),
            ("listings", [listing] * args.listings, 200),
        ):
            before = [cpu_seconds(p) for p in pids]
            blast = _blast(host, port, batch, args.clients, args.per_connection, ok)
            out[name] = asyncio.run(blast)
            out[name + " cpu"] = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
        return out
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=1500)
    parser.add_argument("--listings", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--per-connection", type=int, default=50, help="requests on one connection, then another"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="one more argument for serve"
    )
    parser.add_argument("--warm-up", type=int, default=100, help="untimed uploads and listings")
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="localrepo-procs-"))
    print(f"localrepo-server: 1 and 2 API processes, {time.strftime('%Y-%m-%d')}, {machine()}")
    images = [small_jpeg(n) for n in range(args.warm_up + args.uploads)]
    cluster = PostgresCluster().start()
    best: dict[int, dict[str, float]] = {1: {}, 2: {}}
    try:
        for r in range(args.rounds):
            for workers in (1, 2):
                got = run(workers, cluster.new_database(), work, args, images)
                cpu = "; ".join(
                    f"{k}: " + " + ".join(f"{s:.1f}" for s in v) + " CPU s"
                    for k, v in got.items()
                    if k.endswith("cpu")
                )
                print(
                    f"round {r + 1}, {workers} process(es): {got['uploads']:.0f} uploads/s, "
                    f"{got['listings']:.0f} listings/s ({cpu})",
                    flush=True,
                )
                for name in ("uploads", "listings"):
                    best[workers][name] = max(best[workers].get(name, 0.0), got[name])
    finally:
        cluster.stop()
    print(f"\n{args.clients} clients; best of {args.rounds} rounds; load now {machine()}")
    print(f"{'':10} {'1 process':>12} {'2 processes':>12} {'ratio':>7}")
    for name in ("uploads", "listings"):
        one, two = best[1][name], best[2][name]
        print(f"{name:10} {one:10.0f}/s {two:10.0f}/s {two / one:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
