"""Sync benchmark: localrepo against the official SDK, the bare listing, and rclone.

    python benchmarks/sync.py [--push N] [--nochange N] [--workdir DIR] [--no-rclone]

Starts a localrepo-server on loopback and measures, in this one run, with the same
images and the same server configuration:

- initial push of N small JPEGs (default 2,000, 20 labels): `repo sync` from a fresh
  repository against the official SDK (`ximilar-client`): `RecognitionClient.upload_images`
  driven by its own `parallel_records_processing` helper with its recommended 3 workers
  (target: localrepo at least 2x faster);
- a no-change `repo sync` of M images (default 10,000) against the listing requests alone
  (the task, its labels and every page of its images, sent with httpx; target: under 2x)
  and against a no-change `rclone bisync` of the same tree with a local copy (target: no
  slower); and that sync (which, nothing having changed since a clean sync, takes the
  quiet shortcut: one feed request, no planning) against the same sync without its
  quiet mark (the feed, then the planner over every image) and listing in full (the
  copy dropped first).

Each side gets its own server account, so that the server's duplicate detection (per
workspace) never turns one side's uploads into the other's no-ops.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

REPO = [sys.executable, "-m", "localrepo"]
from benchcommon import SERVER, compile_package, start  # noqa: E402

from localrepo.catalog import quiet_marks, remote_listing  # noqa: E402


def build_tree(root: Path, files: int, labels: int, offset: int) -> list[tuple[Path, int]]:
    from support.imagegen import image_bytes

    out = []
    for lab in range(labels):
        (root / f"label_{lab:02d}").mkdir(parents=True, exist_ok=True)
    old = time.time() - 3600
    for i in range(files):
        p = root / f"label_{i % labels:02d}" / f"img_{i:06d}.jpg"
        p.write_bytes(image_bytes(offset + i, size=(64, 48)))
        os.utime(p, (old, old))
        out.append((p, i % labels))
    return out


class Server:
    def __init__(self, work: Path) -> None:
        self.data = work / "server"
        ready = work / "ready.json"
        cmd = [*SERVER, "serve", "--data", str(self.data), "--port", "0", "--dev"]
        cmd += ["--ready-file", str(ready), "--no-access-log", "--log-level", "warning"]
        self.proc, info = start(cmd, ready, work / "server.log")
        self.url = info["url"]

    def account(self, name: str) -> str:
        subprocess.run(
            [*SERVER, "user", "create", name, "--data", str(self.data)],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [*SERVER, "token", "create", name, "--data", str(self.data)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().splitlines()[-1].strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def sdk_push(url: str, token: str, files: list[tuple[Path, int]], labels: int) -> float:
    from ximilar.client import RecognitionClient

    # resource_name=None skips the SDK's authorisation call to its fixed hosted endpoint.
    client = RecognitionClient(token=token, endpoint=url, resource_name=None)
    task, _ = client.create_task("sdk-bench")
    label_ids = []
    for lab in range(labels):
        label, _ = client.create_label(f"label_{lab:02d}")
        task.add_label(label.id)
        label_ids.append(label.id)
    records = [{"_file": str(p), "labels": [label_ids[lab]], "noresize": True} for p, lab in files]
    t0 = time.perf_counter()
    client.parallel_records_processing(records, method=client.upload_images, max_workers=3)
    elapsed = time.perf_counter() - t0
    count = httpx.get(
        url + "recognition/v2/training-image/",
        params={"page_size": 1},
        headers={"Authorization": f"Token {token}"},
    ).json()["count"]
    if count != len(files):
        raise SystemExit(f"the SDK uploaded {count} of {len(files)} images")
    return elapsed


def repo(*args: str, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([*REPO, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"repo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def forget(root: Path, *, copy: bool) -> bool:
    """Drop the repository's quiet marks (the next sync asks the feed and plans), and
    with `copy` its copies of the remote listing too (the next sync lists in full)."""
    conn = sqlite3.connect(root / ".localrepo" / "catalog.db")
    try:
        for (task_id,) in conn.execute("SELECT id FROM task").fetchall():
            quiet_marks.forget(conn, task_id)
            if copy:
                with conn:
                    remote_listing.forget(conn, task_id)
    finally:
        conn.close()
    return True


def listing_alone(url: str, token: str, task_id: str) -> float:
    """The requests a no-change sync cannot skip, sent with httpx: task, labels, images."""
    headers = {"Authorization": f"Token {token}"}
    api = url + "recognition/v2/"
    t0 = time.perf_counter()
    with httpx.Client(headers=headers, timeout=60) as http:
        http.get(api + f"task/{task_id}/").raise_for_status()
        labels = []
        nxt: str | None = api + f"label/?task={task_id}&page_size=1000"
        while nxt:
            page = http.get(nxt).json()
            labels += [lab["id"] for lab in page["results"]]
            nxt = page["next"]
        nxt = api + "training-image/?page_size=1000&labels=" + ",".join(labels)
        n = 0
        while nxt:
            page = http.get(nxt).json()
            n += len(page["results"])
            nxt = page["next"]
    return time.perf_counter() - t0


def main() -> None:
    compile_package()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--push", type=int, default=2000)
    ap.add_argument("--nochange", type=int, default=10_000)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=HERE.parent / ".bench")
    ap.add_argument("--no-rclone", action="store_true")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="syncbench-", dir=args.workdir))
    server = Server(work)
    try:
        env_base = dict(os.environ, LOCALREPO_CONFIG_DIR=str(work / "cfg"))
        # -- initial push ---------------------------------------------------------------
        print(f"initial push of {args.push} images in {args.labels} labels", flush=True)
        sdk_files = build_tree(work / "sdk-tree", args.push, args.labels, offset=0)
        sdk_s = sdk_push(server.url, server.account("sdk"), sdk_files, args.labels)
        tree = work / "push-tree"
        build_tree(tree, args.push, args.labels, offset=0)  # the same images
        env = dict(env_base, LOCALREPO_TOKEN=server.account("pusher"))
        repo("-q", "init", str(tree), "--task", "bench", "--remote", server.url, env=env)
        push_s = repo("-q", "-C", str(tree), "sync", env=env)
        print(f"  official SDK, upload_images, 3 workers   {sdk_s:8.2f} s")
        print(f"  repo sync (scan + upload + link, -j 8)   {push_s:8.2f} s")
        print(f"  speed-up {sdk_s / push_s:.2f}x  (target >= 2x)")

        # -- no-change sync -------------------------------------------------------------
        print(f"\nno-change sync of {args.nochange} images", flush=True)
        big = work / "big-tree"
        build_tree(big, args.nochange, args.labels, offset=10_000_000)
        token = server.account("big")
        env = dict(env_base, LOCALREPO_TOKEN=token)
        repo("-q", "init", str(big), "--task", "big", "--remote", server.url, env=env)
        repo("-q", "-C", str(big), "sync", env=env)  # the initial push, not measured
        repo("-q", "-C", str(big), "sync", env=env)  # settle racy entries
        task_id = json.loads(
            subprocess.run(
                [*REPO, "-C", str(big), "task", "list", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )[0]["remote_id"]
        nochange = min(repo("-q", "-C", str(big), "sync", env=env) for _ in range(3))
        listing = min(listing_alone(server.url, token, task_id) for _ in range(3))
        print(f"  listing requests alone (httpx)   {listing:8.3f} s")
        print(f"  repo sync, nothing changed       {nochange:8.3f} s")
        print(f"  ratio repo/listing {nochange / listing:.2f}  (target < 2)")
        # The same sync without its quiet mark (the feed, then the planner over every
        # image), and without the kept copy either (a full listing, as against a server
        # with no change feed). Interleaved, so that all meet the same machine.
        quiet_runs, fed_runs, full_runs = [], [], []
        for _ in range(3):
            quiet_runs.append(repo("-q", "-C", str(big), "sync", env=env))
            forget(big, copy=False)
            fed_runs.append(repo("-q", "-C", str(big), "sync", env=env))
            forget(big, copy=True)
            full_runs.append(repo("-q", "-C", str(big), "sync", env=env))
        quiet, fed, full = min(quiet_runs), min(fed_runs), min(full_runs)
        print(f"  repo sync, quiet shortcut        {quiet:8.3f} s")
        print(f"  repo sync, change feed, planned  {fed:8.3f} s")
        print(f"  repo sync, full listing instead  {full:8.3f} s")
        print(f"  ratio quiet/feed {quiet / fed:.2f}, feed/full listing {fed / full:.2f}")
        if not args.no_rclone and shutil.which("rclone"):
            copy = work / "big-copy"
            shutil.copytree(big, copy, ignore=shutil.ignore_patterns(".localrepo"))
            rc_env = dict(
                os.environ,
                RCLONE_CONFIG=str(work / "rclone.conf"),
                XDG_CACHE_HOME=str(work / "rclone-cache"),
            )
            base = [
                "rclone",
                "bisync",
                str(big),
                str(copy),
                "--exclude",
                ".localrepo/**",
                "--workdir",
                str(work / "bisync"),
            ]
            subprocess.run([*base, "--resync"], env=rc_env, check=True, capture_output=True)

            def bisync() -> float:
                t0 = time.perf_counter()
                subprocess.run(base, env=rc_env, check=True, capture_output=True)
                return time.perf_counter() - t0

            rc = min(bisync() for _ in range(3))
            print(f"  rclone bisync, nothing changed   {rc:8.3f} s")
            print(f"  ratio repo/rclone {nochange / rc:.2f}  (target <= 1)")
        elif not args.no_rclone:
            print("  rclone not installed (apt-get install rclone); skipped that baseline")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
