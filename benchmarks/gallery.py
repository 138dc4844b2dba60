"""The web gallery's speed (a standalone script, not a test).

    .venv/bin/python benchmarks/gallery.py [--images 10000] [--requests 20]

A 10,000-image task (real 320x240 JPEGs uploaded through the API, labelled with the
task's 10 labels round robin, a tenth left unlabelled), then pages of its web gallery
(``/web/w/{ws}/tasks/{task}/images``, 48 images a page) asked by a signed-in client:
the first page, a middle page, the last page, one label, the unlabelled images and a
text search. Baseline, in the same run and the same process: the API's listing
(``training-image/``) of the same page with the same filter where the API has one.

The time is the client's, over loopback (the server's time plus well under a
millisecond); the median of ``--requests``. Target: every gallery page under 300 ms
(issue 19). The server runs as a subprocess with the access log off.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from benchcommon import SERVER, start
from server import json_bodies, machine, make_jpegs, upload_all

PAGE = 48
TARGET_MS = 300.0


def median_ms(client: httpx.Client, url: str, params: dict[str, Any], n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.get(url, params=params)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, (url, params, answer.status_code, answer.text[:300])
    return statistics.median(times) * 1000


def sign_in(base: str, user: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/web/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form
    answer = client.post(
        "/web/sign-in",
        data={"csrf_token": token.group(1), "username": user, "password": password, "next": ""},
    )
    assert answer.status_code == 303, answer.text
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20, help="requests per page (median)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="localrepo-gallery-bench-"))
    print(f"web gallery benchmark, {time.strftime('%Y-%m-%d')}, {machine()}")
    data = work / "data"
    proc, info = start(
        [
            *SERVER,
            "serve",
            "--port",
            "0",
            "--data",
            str(data),
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
    try:
        password = "benchmark password"
        subprocess.run(
            [
                *SERVER,
                "user",
                "set-password",
                info["user"],
                "--password-stdin",
                "--data",
                str(data),
            ],
            input=password + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        headers = {"Authorization": f"Token {info['token']}"}
        api = info["url"] + "recognition/v2/"
        print(f"uploading {args.images} JPEGs (320x240) through the API ...")
        _, ids = upload_all(api + "training-image/", headers, json_bodies(make_jpegs(args.images)))
        assert len(ids) == args.images, len(ids)
        with httpx.Client(headers=headers, timeout=300) as c:
            task = c.post(api + "task/", json={"name": "bench", "type": "multi_class"}).json()
            labels = []
            for k in range(10):
                label = c.post(api + "label/", json={"name": f"label {k}"}).json()["id"]
                c.post(api + f"task/{task['id']}/add-label/", json={"label_id": label})
                labels.append(label)
            # Images 0, 11, 22, ... stay unlabelled (one in eleven).
            for k, label in enumerate(labels):
                chunk = [i for n, i in enumerate(ids) if n % 11 == k + 1]
                c.post(
                    api + "training-image/update/", json={"images": chunk, "labels-add": [label]}
                )
        ws = task["workspace"]
        gallery = f"/web/w/{ws}/tasks/{task['id']}/images"
        last = -(-args.images // PAGE)
        cases: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
            ("page 1", {}, {"page": 1}),
            (f"page {last // 2}", {"page": last // 2}, {"page": last // 2}),
            (f"page {last} (last)", {"page": last}, {"page": last}),
            ("one label, page 1", {"show": labels[3]}, {"labels": labels[3]}),
            ("unlabelled, page 1", {"show": "unlabelled"}, {"not_labels": ",".join(labels)}),
            ("text search", {"q": "no such text"}, None),
        ]
        web = sign_in(info["url"], info["user"], password)
        with httpx.Client(headers=headers, timeout=60) as c:
            median_ms(web, gallery, {}, 3)  # warm up (templates, SQLite pages)
            median_ms(c, api + "training-image/", {"page_size": PAGE}, 3)
            print()
            print(f"gallery pages of a {args.images}-image task, median of {args.requests}")
            print(f"  {'page':<24}{'web gallery':>14}{'API listing':>14}")
            worst = 0.0
            for name, web_params, api_params in cases:
                page_ms = median_ms(web, gallery, web_params, args.requests)
                worst = max(worst, page_ms)
                if api_params is None:
                    base = "(no filter)"
                else:
                    base_ms = median_ms(
                        c, api + "training-image/", {**api_params, "page_size": PAGE}, args.requests
                    )
                    base = f"{base_ms:9.1f} ms"
                print(f"  {name:<24}{page_ms:11.1f} ms{base:>14}")
        web.close()
        print()
        ok = worst < TARGET_MS
        print(f"slowest gallery page: {worst:.1f} ms (target < {TARGET_MS:.0f} ms)")
        print("target met" if ok else "TARGET NOT MET")
        return 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
