"""localrepo-server under load (a standalone script, not a test): memory and latency.

    .venv/bin/python benchmarks/load.py [--big 12] [--side 9000] [--small 300]

Against one server (a subprocess on 127.0.0.1, handcrafted features, its own worker):

1. Baseline, the server idle: listings (a page of 100 images) and classify calls (one
   record) one after another; their p50 and p99 latency.
2. Load, everything at once: `--big` concurrent uploads of a `--side` x `--side` JPEG
   (81 megapixels by default, resized by the server), small uploads from 4 clients,
   the same listings and classify calls in a loop, and one 30 MB JSON body arriving.
   Printed: throughput of small uploads, p99 of listings and classify against the
   baseline's (ratio), the slowest listing while the 30 MB body arrived, and the
   server's peak resident memory (sampled every 20 ms from /proc) against the budget.

Budgets (docs/server.md, "Limits and throttling"): peak RSS under 1.5 GB with 12
concurrent 81 MP uploads; a listing answered within 200 ms while a 30 MB body arrives.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from benchcommon import compile_package, start_dev_server
from PIL import Image

RSS_BUDGET_MB = 1536
BODY_LISTING_BUDGET_MS = 200


def jpeg(side: int, seed: int, quality: int = 80) -> bytes:
    small = Image.effect_noise((max(8, side // 100),) * 2, 40 + seed).convert("RGB")
    buf = io.BytesIO()
    small.resize((side, side), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def small_jpeg(seed: int) -> bytes:
    im = Image.frombytes("RGB", (64, 48), random_bytes(seed, 64 * 48 * 3))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def random_bytes(seed: int, n: int) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Loop:
    """Calls ``fn`` until stopped, keeping each call's latency."""

    def __init__(self, fn: Callable[[httpx.Client], None], headers: dict[str, str]):
        self.fn, self.headers = fn, headers
        self.times: list[tuple[float, float]] = []  # (start, seconds)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=300) as c:
            while not self.stop.is_set():
                t = time.perf_counter()
                self.fn(c)
                self.times.append((t, time.perf_counter() - t))
                time.sleep(0.02)


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, load {load}"


def setup(api: str, headers: dict[str, str]) -> str:
    """A trained two-label task; its id."""
    with httpx.Client(headers=headers, timeout=120) as c:
        task = c.post(api + "task/", json={"name": "load", "type": "multi_class"}).json()
        for k, colour in enumerate(((220, 30, 30), (30, 30, 220))):
            label = c.post(api + "label/", json={"name": f"colour {k}"}).json()["id"]
            c.post(api + f"task/{task['id']}/add-label/", json={"label_id": label})
            for i in range(8):
                buf = io.BytesIO()
                shade = tuple(max(0, v - 6 * i) for v in colour)
                Image.new("RGB", (96, 96), shade).save(buf, "JPEG")
                r = c.post(
                    api + "training-image/",
                    json={"base64": base64.b64encode(buf.getvalue()).decode()},
                )
                c.post(
                    api + f"training-image/{r.json()['id']}/add-label/", json={"label_id": label}
                )
        c.post(api + f"task/{task['id']}/train/")
        deadline = time.monotonic() + 300
        while c.get(api + f"task/{task['id']}/").json()["last_train_status"] != "TRAINED":
            if time.monotonic() > deadline:
                raise SystemExit("training did not finish")
            time.sleep(0.5)
        for n in range(200):  # something to list
            c.post(
                api + "training-image/",
                json={"base64": base64.b64encode(small_jpeg(10_000 + n)).decode()},
            )
    return str(task["id"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=12, help="concurrent big uploads")
    parser.add_argument("--side", type=int, default=9000, help="side of the big JPEG, px")
    parser.add_argument("--small", type=int, default=300, help="small uploads during the load")
    parser.add_argument("--calls", type=int, default=40, help="baseline calls of each kind")
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="localrepo-load-"))
    print(f"localrepo-server load benchmark, {time.strftime('%Y-%m-%d')}, {machine()}")
    proc, info = start_dev_server(work)
    try:
        headers = {"Authorization": f"Token {info['token']}"}
        api = info["url"] + "recognition/v2/"
        task_id = setup(api, headers)
        probe = base64.b64encode(small_jpeg(1)).decode()

        def listing(c: httpx.Client) -> None:
            assert c.get(api + "training-image/", params={"page_size": 100}).status_code == 200

        def classify(c: httpx.Client) -> None:
            r = c.post(
                api + "classify/", json={"task_id": task_id, "records": [{"_base64": probe}]}
            )
            assert r.status_code == 200, r.text

        base: dict[str, list[float]] = {"listing": [], "classify": []}
        with httpx.Client(headers=headers, timeout=60) as c:
            for name, fn in (("listing", listing), ("classify", classify)):
                fn(c)
                for _ in range(args.calls):
                    t = time.perf_counter()
                    fn(c)
                    base[name].append(time.perf_counter() - t)
        idle_rss = rss_mb(proc.pid)

        print(f"making {args.big} JPEGs of {args.side}x{args.side} ...")
        bigs = [jpeg(args.side, k) for k in range(args.big)]
        smalls = [base64.b64encode(small_jpeg(20_000 + n)).decode() for n in range(args.small)]
        body30 = b'{"base64": "' + base64.b64encode(random_bytes(7, 22_500_000)) + b'"}'

        # The 30 MB body alone: listings while it arrives and is refused.
        alone = Loop(listing, headers)
        alone.thread.start()
        time.sleep(0.5)
        t = time.perf_counter()
        alone_code = httpx.post(
            api + "training-image/",
            headers={**headers, "content-type": "application/json"},
            content=body30,
            timeout=300,
        ).status_code
        alone_window = (t, time.perf_counter())
        time.sleep(0.3)
        alone.stop.set()
        alone.thread.join()

        peak = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak[0] = max(peak[0], rss_mb(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        loops = {"listing": Loop(listing, headers), "classify": Loop(classify, headers)}
        sampler.start()
        for loop in loops.values():
            loop.thread.start()
        started = time.perf_counter()

        def big_upload(data: bytes) -> int:
            body = {"base64": base64.b64encode(data).decode()}
            return httpx.post(
                api + "training-image/", headers=headers, json=body, timeout=600
            ).status_code

        def small_upload(b64: str) -> int:
            return httpx.post(
                api + "training-image/", headers=headers, json={"base64": b64}, timeout=120
            ).status_code

        body_window: list[float] = []

        def send_body() -> int:
            time.sleep(1.0)
            t = time.perf_counter()
            r = httpx.post(
                api + "training-image/",
                headers={**headers, "content-type": "application/json"},
                content=body30,
                timeout=300,
            )
            body_window.extend((t, time.perf_counter()))
            return r.status_code

        with ThreadPoolExecutor(args.big + 5) as pool:
            big_f = [pool.submit(big_upload, b) for b in bigs]
            body_f = pool.submit(send_body)
            t_small = time.perf_counter()
            with ThreadPoolExecutor(4) as small_pool:
                small_codes = list(small_pool.map(small_upload, smalls))
            small_secs = time.perf_counter() - t_small
            big_codes = [f.result() for f in big_f]
            body_code = body_f.result()
        load_secs = time.perf_counter() - started
        for loop in loops.values():
            loop.stop.set()
            loop.thread.join()
        time.sleep(1.0)
        sampling.set()
        sampler.join()
        after_rss = rss_mb(proc.pid)

        print(
            f"\nbig uploads: {big_codes.count(201)} of {len(bigs)} stored, "
            f"{sum(len(b) for b in bigs) / len(bigs) / 1e6:.1f} MB each; the 30 MB body answered {body_code}"
        )
        print(
            f"small uploads: {small_codes.count(201)} of {len(smalls)} in {small_secs:.1f} s, "
            f"{len(smalls) / small_secs:.0f}/s during the load"
        )
        print(
            f"{'':<22}{'idle p50':>10}{'idle p99':>10}{'load p50':>10}{'load p99':>10}{'p99 ratio':>11}"
        )
        for name, loop in loops.items():
            load_times = [s for _, s in loop.times]
            i50, i99 = pct(base[name], 0.5), pct(base[name], 0.99)
            l50, l99 = pct(load_times, 0.5), pct(load_times, 0.99)
            print(
                f"{name + ' (ms)':<22}{i50:>10.0f}{i99:>10.0f}{l50:>10.0f}{l99:>10.0f}{l99 / i99:>10.1f}x"
            )
        lo, hi = alone_window
        during = [x for t, x in alone.times if lo <= t <= hi or lo <= t + x <= hi]
        worst = max(during) * 1000 if during else float("nan")
        print(
            f"slowest listing while a 30 MB body arrived (answered {alone_code}), nothing "
            f"else running: {worst:.0f} ms (budget {BODY_LISTING_BUDGET_MS} ms, "
            f"{len(during)} listings; idle p99 {pct(base['listing'], 0.99):.0f} ms)"
        )
        lo, hi = body_window
        during = [s for t, s in loops["listing"].times if lo <= t <= hi or lo <= t + s <= hi]
        worst = max(during) * 1000 if during else float("nan")
        print(
            f"slowest listing while the 30 MB body arrived during the load: {worst:.0f} ms "
            f"({len(during)} listings)"
        )
        print(
            f"server RSS: idle {idle_rss} MB, peak {peak[0]} MB (budget {RSS_BUDGET_MB} MB, "
            f"{peak[0] / RSS_BUDGET_MB:.2f}x), 1 s after {after_rss} MB; load lasted {load_secs:.1f} s"
        )
        ok = peak[0] <= RSS_BUDGET_MB
        print("within the memory budget" if ok else "OVER the memory budget")
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
