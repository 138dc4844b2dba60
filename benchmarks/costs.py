"""What one request costs on localrepo-server over PostgreSQL (a standalone script, not a
test): the figures docs/scaling.md projects from.

    .venv/bin/python benchmarks/costs.py [--images 2000] [--calls 50]

One server (a subprocess on 127.0.0.1, handcrafted features) on a throwaway PostgreSQL
cluster started with pg_stat_statements. For each kind of request, `--calls` of them
one after another, and per request:

- server CPU ms: the API process's user + system time (/proc/PID/stat), its delta / calls;
- database CPU ms: the same summed over the cluster's backend processes;
- round trips: statements the server sent (pg_stat_statements calls in its database,
  BEGIN and COMMIT included), a delta / calls;
- bytes in and out: request and response bodies as sent and received;
- wall ms: the median latency, for reference (one client, nothing else running).

The kinds: an upload of a small JPEG (JSON base64, the SDK's way), a labelled listing
page of 100 and of 1,000 images out of `--images`, the change feed with nothing new and
after 100 changes, and classify of one image on a trained task.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from benchcommon import compile_package, start_dev_server
from load import machine, setup, small_jpeg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.pgcluster import PostgresCluster

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def backends_of(postmaster: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rpartition(")")[2].split()[1])
        except OSError:
            continue
        if ppid == postmaster:
            pids.append(int(entry))
    return pids


@dataclass(frozen=True)
class Cost:
    name: str
    server_ms: float
    db_ms: float
    round_trips: float
    bytes_in: float
    bytes_out: float
    wall_ms: float


class Meter:
    """Reads the counters around a batch of requests."""

    def __init__(self, server_pid: int, cluster: PostgresCluster, database: str) -> None:
        import psycopg

        self.server_pid = server_pid
        self.postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        self.conn = psycopg.connect(cluster.admin_dsn, autocommit=True)
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.database = database

    def db_cpu(self) -> float:
        total = 0.0
        for pid in backends_of(self.postmaster):
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
        return total

    def statements(self) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s",
            (self.database,),
        ).fetchone()
        return int(row[0]) if row else 0

    def measure(self, name: str, calls: int, one: Callable[[], tuple[int, int]]) -> Cost:
        one()  # warm: the first call of a kind pays for imports and plans
        s0, d0, q0 = cpu_seconds(self.server_pid), self.db_cpu(), self.statements()
        walls, sent, received = [], 0, 0
        for _ in range(calls):
            t = time.perf_counter()
            i, o = one()
            walls.append(time.perf_counter() - t)
            sent, received = sent + i, received + o
        s1, d1, q1 = cpu_seconds(self.server_pid), self.db_cpu(), self.statements()
        return Cost(
            name,
            (s1 - s0) * 1000 / calls,
            (d1 - d0) * 1000 / calls,
            (q1 - q0) / calls,
            sent / calls,
            received / calls,
            statistics.median(walls) * 1000,
        )


def body_size(request: httpx.Request) -> int:
    return len(request.content) if request.content else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="images in the listed task")
    parser.add_argument("--calls", type=int, default=50, help="requests of each kind")
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="localrepo-costs-"))
    cluster = PostgresCluster().start(preload=("pg_stat_statements",))
    url = cluster.new_database()
    database = url.rsplit("/", 1)[1]
    print(f"localrepo-server cost per request, {time.strftime('%Y-%m-%d')}, {machine()}")
    proc, info = start_dev_server(work, "--database-url", url)
    try:
        headers = {"Authorization": f"Token {info['token']}"}
        api = info["url"] + "recognition/v2/"
        meter = Meter(proc.pid, cluster, database)
        empty = meter.conn.execute("SELECT pg_database_size(%s)", (database,)).fetchone()
        task_id = setup(api, headers)
        costs = run(api, headers, task_id, meter, args)
        size = meter.conn.execute("SELECT pg_database_size(%s)", (database,)).fetchone()
        images = httpx.get(
            api + "training-image/", params={"page_size": 1}, headers=headers
        ).json()["count"]
    finally:
        proc.terminate()
        proc.wait(30)
        cluster.stop()
    print(
        f"{'request':<34} {'server CPU ms':>13} {'db CPU ms':>9} {'round trips':>11} "
        f"{'bytes in':>9} {'bytes out':>10} {'wall ms':>8}"
    )
    for c in costs:
        print(
            f"{c.name:<34} {c.server_ms:>13.2f} {c.db_ms:>9.2f} {c.round_trips:>11.1f} "
            f"{c.bytes_in:>9.0f} {c.bytes_out:>10.0f} {c.wall_ms:>8.1f}"
        )
    grown = int(size[0]) - int(empty[0]) if size and empty else 0
    print(f"database growth: {grown // 1024} KiB for {images} images, {grown / images:,.0f} B each")
    return 0


def run(
    api: str, headers: dict[str, str], task_id: str, meter: Meter, args: argparse.Namespace
) -> list[Cost]:
    c = httpx.Client(headers=headers, timeout=120)
    first = c.get(api + f"task/{task_id}/").json()["labels"][0]
    label = first["id"] if isinstance(first, dict) else first
    seed = [100_000]

    def upload() -> tuple[int, int]:
        seed[0] += 1
        r = c.post(
            api + "training-image/",
            json={"base64": base64.b64encode(small_jpeg(seed[0])).decode()},
        )
        assert r.status_code in (200, 201), r.text
        return body_size(r.request), len(r.content)

    costs = [meter.measure("upload (small JPEG, base64)", args.calls, upload)]
    have = c.get(api + "training-image/", params={"page_size": 1}).json()["count"]
    print(f"adding {max(0, args.images - have)} labelled images to list ...")
    while have < args.images:
        upload_id = c.post(
            api + "training-image/",
            json={"base64": base64.b64encode(small_jpeg(500_000 + have)).decode()},
        ).json()["id"]
        c.post(api + f"training-image/{upload_id}/add-label/", json={"label_id": label})
        have += 1

    def page(size: int) -> Callable[[], tuple[int, int]]:
        def one() -> tuple[int, int]:
            r = c.get(api + "training-image/", params={"page_size": size})
            assert r.status_code == 200, r.text
            return 0, len(r.content)

        return one

    costs.append(meter.measure("listing, a page of 100", args.calls, page(100)))
    costs.append(meter.measure("listing, a page of 1,000", max(5, args.calls // 5), page(1000)))
    costs.extend(feed_costs(c, api, task_id, label, meter, args.calls))
    probe = base64.b64encode(small_jpeg(1)).decode()

    def classify() -> tuple[int, int]:
        r = c.post(api + "classify/", json={"task_id": task_id, "records": [{"_base64": probe}]})
        assert r.status_code == 200, r.text
        return body_size(r.request), len(r.content)

    costs.append(meter.measure("classify, one image", args.calls, classify))
    c.close()
    return costs


def feed_costs(
    c: httpx.Client, api: str, task_id: str, label: str, meter: Meter, calls: int
) -> list[Cost]:
    """The change feed (docs/api.md, "Change feed"), as a syncing clone asks it: nothing
    new since its cursor, and 100 images relabelled since it."""
    labels = [lab["id"] if isinstance(lab, dict) else lab for lab in task_labels(c, api, task_id)]
    feed = api + "training-image/changes/"
    cursor = c.get(feed).json()["cursor"]

    def since(mark: str) -> Callable[[], tuple[int, int]]:
        def one() -> tuple[int, int]:
            r = c.get(feed, params={"since": mark, "labels": labels, "page_size": 1000})
            assert r.status_code == 200, r.text
            return 0, len(r.content)

        return one

    quiet = meter.measure("change feed, nothing new", calls, since(cursor))
    other = next(lab for lab in labels if lab != label)
    page = c.get(api + "training-image/", params={"page_size": 100, "labels": label}).json()
    moved = page["results"][:100]
    for image in moved:
        c.post(api + f"training-image/{image['id']}/remove-label/", json={"label_id": label})
        c.post(api + f"training-image/{image['id']}/add-label/", json={"label_id": other})
    changed = since(cursor)
    seen = c.get(feed, params={"since": cursor, "labels": labels, "page_size": 1000}).json()
    assert len(seen["results"]) == len(moved), len(seen["results"])
    busy = meter.measure(f"change feed, {len(moved)} images changed", calls, changed)
    return [quiet, busy]


def task_labels(c: httpx.Client, api: str, task_id: str) -> list[object]:
    return list(c.get(api + f"task/{task_id}/").json()["labels"])


if __name__ == "__main__":
    sys.exit(main())
