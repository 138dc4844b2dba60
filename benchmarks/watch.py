"""Watcher benchmark: how soon a dropped file is on the server, and what an idle daemon costs.

    python benchmarks/watch.py [--files N] [--every S] [--debounce S] [--idle S]

Starts a localrepo-server on loopback and a real daemon (`repo daemon start`, defaults
except --debounce) on a repository, then measures in this one run:

- latency: N small JPEGs (default 200) land in label folders one every S seconds
  (default 0.25 s: a steady stream, not one at a time); a poller lists the server every
  50 ms and notes when each image is there *with its label*. Latency = that moment minus
  the moment the file was complete on disk; p50 and p95. Target: p95 under debounce + 2 s.
  Baseline, measured here too: the floor of any debounced watcher, the debounce plus one
  in-process `Engine.run` that sends one new file (median of 5, a second repository).
- idle CPU: the daemon's utime + stime (/proc/<pid>/stat) over --idle seconds (default 60)
  with nothing changing, as a share of one core. Its pull timer (30 s) still runs. Target:
  under 1 %. Baseline: the same reading of a `sleep` process. `--tree N` puts N more
  images in the repository (synced before the daemon starts): a pull lists them all.

The machine may be shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from benchcommon import compile_package  # noqa: E402
from sync import REPO, Server, repo  # noqa: E402  (benchmarks/sync.py)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


class Poller:
    """Lists the server every 50 ms and notes when each content hash first shows labelled."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url + "recognition/v2/", headers={"Authorization": f"Token {token}"}
        )
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            nxt: str | None = "training-image/?page_size=1000"
            while nxt:
                page = self.http.get(nxt).json()
                now = time.monotonic()  # when the answer is in (the conservative end)
                for item in page["results"]:
                    digest = (item.get("meta_data") or {}).get("content_hash", "")
                    h = digest.split(":", 1)[-1]
                    if item.get("labels") and h not in self.seen:
                        self.seen[h] = now
                nxt = page["next"]
            self.stop.wait(0.05)


def engine_floor(url: str, token: str, work: Path, env: dict[str, str]) -> float:
    """One in-process sync run that sends one new file (median of 5)."""
    from support.imagegen import image_bytes

    from localrepo.remote.client import RecognitionClient
    from localrepo.repository import find_repository
    from localrepo.sync.engine import Engine, SyncOptions

    root = work / "floor"
    repo("-q", "init", str(root), "--task", "floor", "--remote", url, env=env)
    (root / "a").mkdir()
    r = find_repository(root)
    client = RecognitionClient(url, token)
    times = []
    try:
        for i in range(6):
            (root / "a" / f"f{i}.jpg").write_bytes(image_bytes(900_000 + i, size=(32, 24)))
            t0 = time.perf_counter()
            Engine(r, client, SyncOptions()).run()
            if i:  # the first run also creates the task and its label
                times.append(time.perf_counter() - t0)
    finally:
        client.close()
    return statistics.median(times)


def main() -> None:
    compile_package()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--every", type=float, default=0.25)
    ap.add_argument("--debounce", type=float, default=2.0)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument(
        "--tree", type=int, default=0, help="images already in sync before the daemon starts"
    )
    ap.add_argument("--workdir", type=Path, default=HERE.parent / ".bench")
    args = ap.parse_args()
    from support.imagegen import image_bytes

    from localrepo.scan.hashing import hash_bytes

    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="watchbench-", dir=args.workdir))
    print(f"load average at start: {loadavg()}", flush=True)
    server = Server(work)
    root = work / "tree"
    daemon_started = False
    try:
        token = server.account("watcher")
        env = dict(os.environ, LOCALREPO_CONFIG_DIR=str(work / "cfg"), LOCALREPO_TOKEN=token)
        repo("-q", "init", str(root), "--task", "bench", "--remote", server.url, env=env)
        labels = [f"label_{i}" for i in range(4)]
        for lab in labels:
            (root / lab).mkdir()
        (root / labels[0] / "seed.jpg").write_bytes(image_bytes(1, size=(32, 24)))
        for i in range(args.tree):
            data = image_bytes(2_000_000 + i, size=(32, 24))
            (root / labels[i % 4] / f"old_{i:06d}.jpg").write_bytes(data)
        repo("-q", "-C", str(root), "sync", env=env)
        print(f"repository: {args.tree + 1} images in sync before the daemon starts", flush=True)
        floor = engine_floor(server.url, token, work, dict(env, LOCALREPO_TOKEN=token))

        cmd = [*REPO, "-q", "-C", str(root), "daemon", "start", "--debounce", str(args.debounce)]
        subprocess.run(cmd, env=env, check=True)
        daemon_started = True
        pid = int((root / ".localrepo" / "daemon.pid").read_text())

        # -- latency ---------------------------------------------------------------------
        poller = Poller(server.url, token)
        poller.thread.start()
        blobs = [image_bytes(10_000 + i, size=(32, 24)) for i in range(args.files)]
        landed: dict[str, float] = {}
        print(f"dropping {args.files} files, one every {args.every}s ...", flush=True)
        for i, data in enumerate(blobs):
            path = root / labels[i % 4] / f"img_{i:04d}.jpg"
            path.write_bytes(data)
            landed[hash_bytes(data)] = time.monotonic()
            time.sleep(args.every)
        deadline = time.monotonic() + 120
        while not all(h in poller.seen for h in landed) and time.monotonic() < deadline:
            time.sleep(0.1)
        poller.stop.set()
        poller.thread.join()
        missing = [h for h in landed if h not in poller.seen]
        lat = sorted(poller.seen[h] - t for h, t in landed.items() if h in poller.seen)
        p50 = statistics.median(lat)
        p95 = lat[max(0, round(0.95 * len(lat)) - 1)]
        target = args.debounce + 2.0
        print(f"latency, file on disk -> labelled on the server ({len(lat)} files):")
        print(f"  p50 {p50:6.2f} s   p95 {p95:6.2f} s   max {lat[-1]:6.2f} s")
        print(
            f"  floor: debounce {args.debounce:.2f} s + one sync run {floor:.2f} s = "
            f"{args.debounce + floor:.2f} s; p95 / floor {p95 / (args.debounce + floor):.2f}"
        )
        print(
            f"  target p95 < debounce + 2 s = {target:.2f} s: "
            f"{'met' if p95 < target and not missing else 'NOT met'}"
            + (f" ({len(missing)} never arrived)" if missing else "")
        )

        # -- idle CPU ----------------------------------------------------------------------
        time.sleep(3)  # let the last run end
        sleeper = subprocess.Popen(["sleep", str(args.idle + 5)])
        c0, s0, t0 = cpu_seconds(pid), cpu_seconds(sleeper.pid), time.monotonic()
        time.sleep(args.idle)
        c1, s1, t1 = cpu_seconds(pid), cpu_seconds(sleeper.pid), time.monotonic()
        sleeper.kill()
        sleeper.wait()
        share = (c1 - c0) / (t1 - t0) * 100
        print(
            f"idle CPU over {t1 - t0:.0f} s (pull timer 30 s): daemon {share:.3f} % of a core "
            f"({c1 - c0:.2f} CPU-s); baseline `sleep` {(s1 - s0) / (t1 - t0) * 100:.3f} %"
        )
        print(f"  target < 1 %: {'met' if share < 1 else 'NOT met'}")
        print(f"load average at end: {loadavg()}")
    finally:
        if daemon_started:
            subprocess.run([*REPO, "-q", "-C", str(root), "daemon", "stop"], env=env)
        server.stop()


if __name__ == "__main__":
    main()
