"""localrepo-server benchmarks (a standalone script, not a test).

    .venv/bin/python benchmarks/server.py [--images 10000] [--bare-uploads 3000]

1. Upload throughput: small real JPEGs (Pillow), 8 concurrent clients, JSON base64 bodies,
   against localrepo-server and, in the same run, against a bare uvicorn endpoint that
   only does what a durable upload cannot skip: read the body, write it to a temp file,
   fsync, rename (two variants: file work on the event loop, or in a worker thread; the
   better one is the baseline). Rounds alternate between the endpoints and the best
   rate of each counts. Target: server rate >= 0.5 x bare rate.
2. Listing: every one of N (10,000) labelled images through `next` links (page_size
   1000, the maximum), against reading the same rows and their labels straight from the
   server's SQLite database with the stdlib sqlite3 module (two queries, labels grouped
   per image). Target: <= 3 x the database time.

Both servers run as subprocesses on 127.0.0.1 with the access log off; clients run in
this process. Results are printed with the ratios against their named baselines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchcommon import start

CLIENTS = 8
PAGE_SIZE = 1000

# ---- the bare endpoint (runs in its own process: `server.py --bare DIR READY_FILE`) ----------


def bare_app_factory(folder: Path) -> Callable[..., Any]:
    folder.mkdir(parents=True, exist_ok=True)

    def store(body: bytes) -> str:
        # Temp file in the destination folder: the cheapest atomic rename.
        name = uuid.uuid4().hex
        tmp = folder / f".{name}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, folder / name)
        return name

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body_bytes = b"".join(chunks)
        if scope["path"].startswith("/thread"):
            # Variant: the file work in a worker thread, so fsyncs of concurrent uploads
            # overlap (better when the disk is slow or busy).
            import anyio.to_thread

            name = await anyio.to_thread.run_sync(store, body_bytes)
        else:
            name = store(body_bytes)  # on the event loop: no thread hop (better when idle)
        body = json.dumps({"id": name}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def run_bare(folder: Path, ready_file: Path) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            bare_app_factory(folder), access_log=False, log_level="warning", lifespan="off"
        )
    )

    async def main() -> None:
        async def announce() -> None:
            while not server.started:
                await asyncio.sleep(0.01)
            ready_file.write_text(json.dumps({"url": f"http://127.0.0.1:{port}/"}))

        task = asyncio.create_task(announce())
        await server.serve(sockets=[sock])
        task.cancel()

    asyncio.run(main())


# ---- helpers ---------------------------------------------------------------------------------


def make_jpegs(n: int, seed: int = 0) -> list[bytes]:
    from PIL import Image

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        small = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
        buf = io.BytesIO()
        small.resize((320, 240), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def upload_all(url: str, headers: dict[str, str], bodies: list[bytes]) -> tuple[float, list[str]]:
    """POST every body with CLIENTS concurrent clients; returns (seconds, ids)."""
    import httpx

    ids: list[str] = [""] * len(bodies)
    lock = threading.Lock()
    cursor = [0]

    def worker() -> None:
        with httpx.Client(headers={**headers, "content-type": "application/json"}, timeout=60) as c:
            while True:
                with lock:
                    i = cursor[0]
                    cursor[0] += 1
                if i >= len(bodies):
                    return
                r = c.post(url, content=bodies[i])
                if r.status_code != 201:
                    raise RuntimeError(f"upload answered {r.status_code}: {r.text[:200]}")
                ids[i] = r.json()["id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for f in [pool.submit(worker) for _ in range(CLIENTS)]:
            f.result()
    return time.perf_counter() - started, ids


def json_bodies(images: list[bytes]) -> list[bytes]:
    return [
        json.dumps(
            {
                "base64": base64.b64encode(data).decode(),
                "meta_data": {"file_name": f"img{i:05d}.jpg", "n": i},
            }
        ).encode()
        for i, data in enumerate(images)
    ]


def list_everything(
    api_url: str, headers: dict[str, str], decode: Callable[[bytes], Any]
) -> tuple[float, int]:
    import httpx

    with httpx.Client(headers=headers, timeout=60) as c:
        started = time.perf_counter()
        r = c.get(api_url + "training-image/", params={"page_size": PAGE_SIZE})
        body = decode(r.content)
        rows = len(body["results"])
        while body["next"]:
            body = decode(c.get(body["next"]).content)
            rows += len(body["results"])
        return time.perf_counter() - started, rows


def read_db(db_path: Path, workspace: str) -> tuple[float, int]:
    started = time.perf_counter()
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute(
            "SELECT id, created, blob_sha256, media_key, extension, img_width, img_height, "
            "meta_data, test_image, real, workspace_id FROM images WHERE workspace_id = ? "
            "ORDER BY created, id",
            (workspace,),
        ).fetchall()
        labels: dict[str, list[tuple[Any, ...]]] = {}
        for image_id, *label in db.execute(
            "SELECT il.image_id, l.id, l.name, l.type, il.value FROM image_labels il "
            "JOIN labels l ON l.id = il.label_id JOIN images i ON i.id = il.image_id "
            "WHERE i.workspace_id = ?",
            (workspace,),
        ):
            labels.setdefault(image_id, []).append(tuple(label))
        result = [(row, labels.get(row[0], [])) for row in rows]
    finally:
        db.close()
    return time.perf_counter() - started, len(result)


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="images in the listing")
    parser.add_argument("--bare-uploads", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3, help="listing rounds (best kept)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--bare", nargs=2, metavar=("DIR", "READY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        run_bare(Path(args.bare[0]), Path(args.bare[1]))
        return 0

    import httpx

    work = Path(tempfile.mkdtemp(prefix="localrepo-server-bench-"))
    print(f"localrepo-server benchmark, {time.strftime('%Y-%m-%d')}, {machine()}")
    print(f"work folder: {work}" + ("" if args.keep else " (removed at the end)"))
    server_proc, info = start(
        [
            sys.executable,
            "-m",
            "localrepo.server.cli",
            "serve",
            "--port",
            "0",
            "--data",
            str(work / "data"),
            "--dev",
            "--no-access-log",
            "--log-level",
            "warning",
            "--ready-file",
            str(work / "server.json"),
        ],
        work / "server.json",
        work / "server.log",
    )
    bare_proc, bare = start(
        [sys.executable, __file__, "--bare", str(work / "bare"), str(work / "bare.json")],
        work / "bare.json",
        work / "bare.log",
    )
    try:
        headers = {"Authorization": f"Token {info['token']}"}
        api = info["url"] + "recognition/v2/"
        n = max(args.images, args.bare_uploads)
        print(f"making {n} JPEGs (320x240) ...")
        images = make_jpegs(n + 50)
        bodies = json_bodies(images)
        avg = sum(len(b) for b in bodies[:n]) / n
        print(f"request body: {avg / 1024:.1f} KiB on average (JSON, base64)")

        # Warm both up (imports, first connections, SQLite pages).
        upload_all(bare["url"], {}, bodies[n:])
        upload_all(bare["url"] + "thread", {}, bodies[n:])
        upload_all(api + "training-image/", headers, bodies[n:])
        for image_id in httpx.get(api + "training-image/", headers=headers).json()["results"]:
            httpx.delete(api + f"training-image/{image_id['id']}/", headers=headers)

        # Interleaved rounds (bare, server, bare, server, ...), best rate of each: the
        # machine is shared and disk latency varies, so alternate rather than run once.
        rounds = max(1, args.rounds)
        bare_rates, bare_thread_rates, server_rates, ids = [], [], [], []
        bare_chunk = args.bare_uploads // rounds
        for k in range(rounds):
            lo, hi = k * args.images // rounds, (k + 1) * args.images // rounds
            chunk = bodies[k * bare_chunk : (k + 1) * bare_chunk]
            seconds, _ = upload_all(bare["url"], {}, chunk)
            bare_rates.append(bare_chunk / seconds)
            seconds, _ = upload_all(bare["url"] + "thread", {}, chunk)
            bare_thread_rates.append(bare_chunk / seconds)
            seconds, got = upload_all(api + "training-image/", headers, bodies[lo:hi])
            server_rates.append((hi - lo) / seconds)
            ids.extend(got)
        # The baseline is the better of the two bare variants.
        bare_rate = max(*bare_rates, *bare_thread_rates)
        server_rate = max(server_rates)
        print()
        print(
            f"upload throughput ({CLIENTS} concurrent clients, best of {rounds} interleaved rounds)"
        )
        print(
            f"  bare uvicorn endpoint (read, temp file, fsync, rename): {bare_rate:8.0f} uploads/s"
        )
        print(
            f"  localrepo-server POST training-image/:                 {server_rate:8.0f} uploads/s"
        )
        print(
            "  (all rounds: bare on the loop "
            + ", ".join(f"{r:.0f}" for r in bare_rates)
            + "; bare in a thread "
            + ", ".join(f"{r:.0f}" for r in bare_thread_rates)
            + "; server "
            + ", ".join(f"{r:.0f}" for r in server_rates)
            + ")"
        )
        upload_ratio = server_rate / bare_rate
        print(f"  ratio server/bare: {upload_ratio:.2f}  (target >= 0.5)")

        # Label every image: 10 category labels round robin, plus a value label on half.
        label_ids = [
            httpx.post(api + "label/", headers=headers, json={"name": f"label {k}"}).json()["id"]
            for k in range(10)
        ]
        value_label = httpx.post(
            api + "label/", headers=headers, json={"name": "score", "type": "value"}
        ).json()["id"]
        for k, label_id in enumerate(label_ids):
            chunk = ids[k :: len(label_ids)]
            r = httpx.post(
                api + "training-image/update/",
                headers=headers,
                json={"images": chunk, "labels-add": [label_id]},
                timeout=120,
            )
            assert r.json()["count"] == len(chunk), r.text
        with httpx.Client(headers=headers) as c:
            for image_id in ids[:200]:
                c.post(
                    api + f"training-image/{image_id}/add-label/",
                    json={"label_id": value_label, "value": 1.5},
                )

        workspace = httpx.get(info["url"] + "account/v2/workspace/", headers=headers).json()[0][
            "id"
        ]
        db_path = work / "data" / "server.db"
        from localrepo.remote.client import decode_json

        # Decoded the way localrepo's client decodes (orjson), and, for reference, with
        # the stdlib's json as a plain httpx client would.
        http_times, stdlib_times, db_times = [], [], []
        for _ in range(args.rounds):
            t, rows = list_everything(api, headers, decode_json)
            assert rows == args.images, rows
            http_times.append(t)
            t, rows = list_everything(api, headers, json.loads)
            assert rows == args.images, rows
            stdlib_times.append(t)
            t, rows = read_db(db_path, workspace)
            assert rows == args.images, rows
            db_times.append(t)
        http_best, stdlib_best, db_best = min(http_times), min(stdlib_times), min(db_times)
        pages = -(-args.images // PAGE_SIZE)
        print()
        print(f"listing {args.images} labelled images (best of {args.rounds})")
        print(f"  straight from the database (sqlite3, 2 queries):  {db_best * 1000:8.1f} ms")
        print(
            f"  through next links, page_size {PAGE_SIZE} ({pages} requests), "
            f"decoded as localrepo does: {http_best * 1000:8.1f} ms"
        )
        print(
            f"  the same, decoded with the stdlib json module:    {stdlib_best * 1000:8.1f} ms"
            f"  (ratio {stdlib_best / db_best:.2f}, for reference)"
        )
        listing_ratio = http_best / db_best
        print(f"  ratio http/database: {listing_ratio:.2f}  (target <= 3)")
        print()
        ok = upload_ratio >= 0.5 and listing_ratio <= 3
        print("targets met" if ok else "TARGETS NOT MET")
        print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        return 0 if ok else 1
    finally:
        for proc in (server_proc, bare_proc):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
