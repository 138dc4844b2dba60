"""Training and classification on real photos, through localrepo-server's API.

    .venv/bin/python benchmarks/accuracy.py [--backend both|efficientnet-lite0|handcrafted]

Data: the photo cut-outs of Debian's `tuxpaint-stamps-default` package (made by people,
not by this project), fetched once with `apt-get download` and unpacked with `dpkg-deb
-x` into .bench/tuxpaint/ (never committed). Ten classes, one folder (and its
subfolders) each, cartoon folders left out: see CLASSES.

For each backend, a fresh server (`localrepo-server serve --backend B`, its own data
folder, so no cached features) and, through the HTTP API:

1. upload every image, labelled with its class; a seeded 20% of each class is marked
   `test_image` (the held-out part: the server trains on the other 80% only);
2. train, and time it from `train/` to `TRAINED` (the worker's model load included);
3. train again: the same images, the features now cached (the retrain time);
4. classify every held-out image (batches of 10) and count the best label against its
   folder; then classify held-out images one per request, for the latency per image.

Baselines in the same run: the handcrafted backend's accuracy (the pretrained one's
ratio to it), and, right after each one-image classify request, the same image's
features computed in this process (decode, resize, backbone: the classify latency's
ratio to it; interleaved, so both see the same load on a shared machine). Targets: accuracy >= 0.85 (pretrained); first
training < 60 s; retrain < 10 s; classify p50 < 60 ms per image.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchcommon import start

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from localrepo.server.ml.features import decode_rgb

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench" / "tuxpaint"
PACKAGE = "tuxpaint-stamps-default"
STAMPS = "usr/share/tuxpaint/stamps"
CLASSES = {
    "birds": "animals/birds",
    "fish": "animals/fish",
    "insects": "animals/insects",
    "mammals": "animals/mammals",
    "fruit": "food/fruit",
    "vegetables": "food/vegetables",
    "flowers": "plants/flowers",
    "tools": "household/tools",
    "space": "space",
    "town": "town",
}
HELD_OUT = 0.2
BATCH = 10


def fetch_dataset() -> Path:
    stamps = CACHE / "root" / STAMPS
    if stamps.is_dir():
        return stamps
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"fetching {PACKAGE} into {CACHE} ...", flush=True)
    subprocess.run(["apt-get", "download", PACKAGE], cwd=CACHE, check=True)
    [deb] = sorted(CACHE.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(CACHE / "root")], check=True)
    return stamps


def dataset(stamps: Path) -> list[tuple[str, Path, bool]]:
    """(class, file, held out) for every photo; held out: a seeded 20% of each class."""
    out = []
    for name, folder in CLASSES.items():
        files = sorted(
            p
            for p in (stamps / folder).rglob("*.png")
            if "cartoon" not in p.relative_to(stamps).parts
        )
        files.sort(key=lambda p: hashlib.sha256(f"bench:{p.name}".encode()).hexdigest())
        cut = max(1, round(len(files) * HELD_OUT))
        out.extend((name, p, k < cut) for k, p in enumerate(files))
    return out


def start_server(data: Path, backend: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    ready = data.parent / f"ready-{uuid.uuid4().hex}.json"
    cmd = [sys.executable, "-m", "localrepo.server.cli", "serve", "--port", "0"]
    cmd += ["--data", str(data), "--dev", "--ready-file", str(ready), "--backend", backend]
    cmd += ["--no-access-log", "--min-images-per-label", "3"]
    return start(cmd, ready, data.parent / f"{backend}-server.log")


def train_and_time(api: httpx.Client, task_id: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    r = api.post(f"task/{task_id}/train/")
    r.raise_for_status()
    model_id = r.json()["model_id"]
    while True:
        model = api.get(f"model/{model_id}/").json()
        if model["train_status"] in ("TRAINED", "ERROR"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if model["train_status"] != "TRAINED":
        raise SystemExit(f"training failed: {model['detail']}")
    return elapsed, model


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def run_backend(backend: str, items: list[tuple[str, Path, bool]], work: Path) -> dict[str, Any]:
    data = work / backend
    proc, info = start_server(data, backend)
    try:
        api = httpx.Client(
            base_url=info["url"] + "recognition/v2/",
            headers={"Authorization": f"Token {info['token']}"},
            timeout=120,
        )
        task = api.post("task/", json={"name": "tuxpaint", "type": "multi_class"}).json()
        labels = {}
        for name in CLASSES:
            labels[name] = api.post("label/", json={"name": name}).json()["id"]
            api.post(f"task/{task['id']}/add-label/", json={"label_id": labels[name]})
        for name, path, held in items:
            r = api.post("training-image/", json={"base64": b64(path), "test_image": held})
            image_id = r.json()["id"] if r.status_code == 201 else r.json()["detail"].split("'")[1]
            api.post(f"training-image/{image_id}/add-label/", json={"label_id": labels[name]})
        first, model = train_and_time(api, task["id"])
        again, model2 = train_and_time(api, task["id"])
        held_out = [(name, path) for name, path, held in items if held]
        correct = 0
        batch_times = []
        for k in range(0, len(held_out), BATCH):
            chunk = held_out[k : k + BATCH]
            t0 = time.perf_counter()
            r = api.post(
                "classify/",
                json={"task_id": task["id"], "records": [{"_base64": b64(p)} for _, p in chunk]},
            )
            batch_times.append((time.perf_counter() - t0) / len(chunk))
            r.raise_for_status()
            for (name, _), rec in zip(chunk, r.json()["records"], strict=True):
                correct += rec["best_label"]["name"] == name
        # One image per request, each followed by the baseline on the same image: the
        # features computed in this process (decode, resize, backbone). Interleaved, so
        # that both see the same load on a shared machine.
        singles, baseline = [], []
        local = local_backend(backend)
        for _, path in held_out:
            body = {"task_id": task["id"], "records": [{"_base64": b64(path)}]}
            t0 = time.perf_counter()
            api.post("classify/", json=body).raise_for_status()
            singles.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            local.embed([decode_rgb(path.read_bytes(), draft=448)])
            baseline.append(time.perf_counter() - t0)
        return {
            "backend": backend,
            "images": len(items),
            "held_out": len(held_out),
            "accuracy": correct / len(held_out),
            "server_accuracy": model["accuracy"],
            "first_train_s": first,
            "retrain_s": again,
            "first_metrics_s": model["metrics"]["seconds"],
            "retrain_metrics_s": model2["metrics"]["seconds"],
            "retrain_cached": model2["metrics"]["embeddings_cached"],
            "classify_single_p50_ms": 1000 * statistics.median(singles),
            "classify_batch_per_image_p50_ms": 1000 * statistics.median(batch_times),
            "features_in_process_p50_ms": 1000 * statistics.median(baseline),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def local_backend(name: str) -> Any:
    from localrepo.server.ml.features import Backends

    backend = Backends(name).get(name)
    backend.embed([Image.new("RGB", (64, 64))])  # load and warm up
    return backend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--backend", choices=["both", "efficientnet-lite0", "handcrafted"], default="both"
    )
    args = ap.parse_args()
    items = dataset(fetch_dataset())
    counts = {name: sum(1 for n, _, _ in items if n == name) for name in CLASSES}
    print(f"{len(items)} photos in {len(CLASSES)} classes: {counts}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    backends = ["efficientnet-lite0", "handcrafted"] if args.backend == "both" else [args.backend]
    work = Path(tempfile.mkdtemp(prefix="accuracy-", dir=ROOT / ".bench"))
    results = []
    try:
        for backend in backends:
            result = run_backend(backend, items, work)
            results.append(result)
            print(json.dumps(result, indent=1), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by = {r["backend"]: r for r in results}
    print(
        "\n| backend | held-out accuracy | server metric | first training | retrain (cached) "
        "| classify p50, 1/request | per image, 10/request |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['accuracy']:.3f} ({r['held_out']}) | {r['server_accuracy']:.3f} "
            f"| {r['first_train_s']:.1f} s | {r['retrain_s']:.1f} s "
            f"| {r['classify_single_p50_ms']:.0f} ms | {r['classify_batch_per_image_p50_ms']:.0f} ms |"
        )
    pre = by.get("efficientnet-lite0")
    hand = by.get("handcrafted")
    if pre and hand:
        print(
            f"\naccuracy ratio pretrained / handcrafted: {pre['accuracy'] / hand['accuracy']:.2f}"
        )
    for r in results:
        base = r["features_in_process_p50_ms"]
        print(
            f"{r['backend']}: features alone in this process {base:.0f} ms per image (p50); "
            f"classify p50 (1/request) / that: {r['classify_single_p50_ms'] / base:.2f}"
        )
    if pre:
        checks = {
            "accuracy >= 0.85": pre["accuracy"] >= 0.85,
            "first training < 60 s": pre["first_train_s"] < 60,
            "retrain < 10 s": pre["retrain_s"] < 10,
            "classify p50 < 60 ms/image": pre["classify_single_p50_ms"] < 60,
        }
        for name, met in checks.items():
            print(f"  {'met' if met else 'NOT MET'}: {name}")


if __name__ == "__main__":
    main()
