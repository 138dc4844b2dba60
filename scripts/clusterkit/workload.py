"""The cluster's clients: clones syncing through `repo`, the official SDK uploading,
trainings queued over HTTP; and what each was told was done (`Ledger`).

Every client talks to the round-robin proxy only. A failure (a sync that exits non-zero,
an SDK call that raises or says "not uploaded", a `train/` answered 5xx) is counted in
`Ledger.faults` and the client carries on: only what was acknowledged is promised.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from support.imagegen import image_bytes

from localrepo.scan.hashing import hash_bytes

SIZE = (32, 24)
CLONE_LABELS = ("red", "green", "blue")
SDK_LABELS = ("sdk-a", "sdk-b")
IMAGE_EXT = (".jpg",)


def picture(seed: int) -> bytes:
    return image_bytes(seed, size=SIZE)


@dataclass
class Ledger:
    """What the cluster acknowledged, filled in by the client threads."""

    sdk_images: dict[str, str] = field(default_factory=dict)  # id -> sha256 sent
    clone_hashes: set[str] = field(default_factory=set)
    trainings: list[tuple[str, int]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, what: str) -> None:
        with self.lock:
            self.faults[what] += 1

    def count(self, what: str) -> None:
        with self.lock:
            self.done[what] += 1


# -- clones ---------------------------------------------------------------------------------


@dataclass
class Clone:
    """One repository folder, driven through the real `repo` command."""

    name: str
    root: Path
    env: dict[str, str]
    own: list[str] = field(default_factory=list)  # paths of the images it added

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        where = ["-C", str(cwd or self.root)]
        return subprocess.run(
            [sys.executable, "-m", "localrepo", *where, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=600,
            check=False,
        )

    def sync(self, ledger: Ledger) -> dict[str, Any] | None:
        """`repo sync --json`; on exit 0 every image in the folder is acknowledged."""
        proc = self.run("sync", "--json")
        if proc.returncode != 0:
            ledger.fault(f"sync exited {proc.returncode}")
            return None
        tree = self.labels_by_hash()
        with ledger.lock:
            ledger.clone_hashes.update(tree)
            ledger.done["syncs"] += 1
        return json.loads(proc.stdout)

    def add(self, seeds: list[int], rng: random.Random) -> None:
        for seed in seeds:
            rel = f"{rng.choice(CLONE_LABELS)}/{self.name}-{seed}.jpg"
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(picture(seed))
            self.own.append(rel)

    def relabel_one(self, rng: random.Random) -> None:
        """Move one of its own images to another label folder (a relabel): only its own,
        so two clones never relabel one image differently (that is a conflict)."""
        if not self.own:
            return
        k = rng.randrange(len(self.own))
        label, file = self.own[k].split("/", 1)
        target = f"{rng.choice([x for x in CLONE_LABELS if x != label])}/{file}"
        (self.root / target).parent.mkdir(parents=True, exist_ok=True)
        (self.root / self.own[k]).rename(self.root / target)
        self.own[k] = target

    def labels_by_hash(self) -> dict[str, str]:
        out = {}
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root)
            if rel.parts[0] == ".localrepo" or path.suffix.lower() not in IMAGE_EXT:
                continue
            out[hash_bytes(path.read_bytes())] = rel.parts[0] if len(rel.parts) > 1 else ""
        return out

    def remote_task_id(self) -> str:
        conn = sqlite3.connect(self.root / ".localrepo" / "catalog.db")
        try:
            [(task_id,)] = conn.execute("SELECT remote_id FROM task").fetchall()
        finally:
            conn.close()
        return str(task_id)


def clone_loop(
    clone: Clone, rounds: int, per_round: int, seed_base: int, ledger: Ledger, stop: threading.Event
) -> None:
    """Add `per_round` images and relabel one of its own, then sync; `rounds` times."""
    rng = random.Random(seed_base)
    for r in range(rounds):
        if stop.is_set():
            return
        clone.add([seed_base + r * 1000 + i for i in range(per_round)], rng)
        clone.relabel_one(rng)
        clone.sync(ledger)


def settle(clones: list[Clone], ledger: Ledger, max_rounds: int = 6) -> int:
    """Sync every clone (all at once) until a whole round changes nothing anywhere: then
    nothing is left to move. Returns the rounds it took."""
    quiet = ("uploaded", "downloaded", "relabelled", "deleted")
    with ThreadPoolExecutor(len(clones)) as pool:
        for n in range(1, max_rounds + 1):
            summaries = list(pool.map(lambda c: c.sync(ledger), clones))
            if all(s is not None and not any(s.get(k) for k in quiet) for s in summaries):
                return n
    return max_rounds


# -- the official SDK -----------------------------------------------------------------------


def sdk_client(url: str, token: str) -> Any:
    from ximilar.client import RecognitionClient

    # `localhost` in the endpoint keeps the SDK's token away from the hosted service's
    # licence check (docs/server.md, "Running it").
    return RecognitionClient(token=token, endpoint=url, resource_name=None)


def sdk_setup(url: str, token: str) -> tuple[Any, str, list[str]]:
    client = sdk_client(url, token)
    task, _ = client.create_task("sdk")
    label_ids = []
    for name in SDK_LABELS:
        label, _ = client.create_label(name)
        task.add_label(label.id)
        label_ids.append(label.id)
    return client, task.id, label_ids


def sdk_loop(
    client: Any, label_ids: list[str], seeds: range, ledger: Ledger, progress: threading.Event
) -> None:
    """Upload one image per call (so each acknowledgement names its image); set
    `progress` once 40% were sent (the moment the kills start)."""
    for n, seed in enumerate(seeds):
        data = picture(seed)
        record = {
            "_base64": base64.b64encode(data),
            "labels": [label_ids[seed % len(label_ids)]],
            "noresize": True,
        }
        try:
            images, status = client.upload_images([record])
        except Exception as exc:  # the SDK raises what requests raises
            ledger.fault(f"SDK upload raised {type(exc).__name__}")
            continue
        if not images or status.get("status") not in ("OK", "exists"):
            ledger.fault("SDK upload not acknowledged")
            continue
        with ledger.lock:
            ledger.sdk_images[images[0].id] = hashlib.sha256(data).hexdigest()
        if n + 1 >= 0.4 * len(seeds):
            progress.set()


# -- trainings ------------------------------------------------------------------------------


def train_loop(
    api: httpx.Client, tasks: list[str], wanted: int, every: float, ledger: Ledger, deadline: float
) -> None:
    """Ask `train/` of the tasks in turn every `every` seconds until `wanted` were queued
    (`"queued": false`, a job of that task still waiting, does not count)."""
    turn = 0
    while len(ledger.trainings) < wanted and time.monotonic() < deadline:
        task = tasks[turn % len(tasks)]
        turn += 1
        try:
            r = api.post(f"task/{task}/train/")
        except httpx.HTTPError as exc:
            ledger.fault(f"train/ raised {type(exc).__name__}")
            time.sleep(every)
            continue
        if r.status_code == 200 and r.json().get("queued"):
            with ledger.lock:
                ledger.trainings.append((task, int(r.json()["version"])))
        elif r.status_code >= 500:
            ledger.fault(f"train/ answered {r.status_code}")
        time.sleep(every)
