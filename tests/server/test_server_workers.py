"""Training workers as their own processes (issue 22, item 2, in part): two workers never
train the same version, and a worker starting (or a supervisor whose worker died) takes
back only the jobs of workers that are gone, never a live one's; on SQLite and on a real
PostgreSQL, with real threads racing for the queue."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from localrepo.server.data import accounts, tasks, training
from localrepo.server.data.db import Database
from localrepo.server.data.tables import iso_at
from localrepo.server.ml.worker import pid_alive, requeue_abandoned
from localrepo.server.ml.workerids import gone_here, stale_before, worker_id


def test_which_workers_are_gone() -> None:
    alive = {100}.__contains__
    assert gone_here(None, "h", alive) and gone_here("", "h", alive)
    assert gone_here("h:200", "h", alive)  # this host, process gone
    assert not gone_here("h:100", "h", alive)  # this host, running
    assert not gone_here("other:200", "h", alive)  # another host: only its heartbeat tells
    assert not gone_here("h:not-a-pid", "h", alive)
    assert not gone_here("a:b:100", "a:b", alive) and gone_here("a:b:200", "a:b", alive)
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert stale_before(now, 600) == iso_at(now - timedelta(minutes=10))
    assert pid_alive(os.getpid()) and worker_id("h", 7) == "h:7"


def test_a_zombie_worker_is_gone() -> None:
    # A worker that died with its server is a zombie until someone reaps it, and in a
    # container whose first process never reaps, that is forever: its job must come back.
    child = subprocess.Popen(["true"])
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 30
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert not pid_alive(child.pid)


def _queued_tasks(db: Database, count: int) -> list[str]:
    user = accounts.create_user(db, "trainer")
    ws = accounts.list_workspaces(db, user.username)[0].id
    ids = []
    for k in range(count):
        task = tasks.create_task(db, ws, f"task {k}", "multi_class", "")
        training.queue_training(db, task["id"])
        ids.append(task["id"])
    return ids


def test_racing_workers_never_take_the_same_job(db: Database) -> None:
    task_ids = _queued_tasks(db, 24)
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def work(name: str) -> None:
        start.wait()
        while True:
            job = training.claim_next(db, name)
            if job is None:
                with db.read() as session:
                    left = session.execute(
                        text("SELECT count(*) FROM training_jobs WHERE status = 'queued'")
                    ).scalar_one()
                if left == 0:
                    return
                continue
            with lock:
                claimed.append((job.id, name))

    threads = [threading.Thread(target=work, args=(f"host:{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    jobs = [job for job, _ in claimed]
    assert sorted(jobs) == sorted(set(jobs)), "a job was claimed twice"
    assert len(jobs) == len(task_ids)
    with db.read() as session:
        rows = session.execute(text("SELECT status, worker FROM training_jobs")).all()
    assert {r[0] for r in rows} == {"running"}
    assert {r[1] for r in rows} == {name for _, name in claimed}


def _set_running(db: Database, task_id: str, worker: str, heartbeat: str) -> None:
    with db.write() as session:
        session.execute(
            text(
                "UPDATE training_jobs SET status = 'running', worker = :w, heartbeat = :h "
                "WHERE task_id = :t"
            ),
            {"w": worker, "h": heartbeat, "t": task_id},
        )


def test_only_the_jobs_of_gone_workers_go_back_to_the_queue(db: Database) -> None:
    live_elsewhere, stale_elsewhere, dead_here, live_here = _queued_tasks(db, 4)
    host = socket.gethostname()
    now = datetime.now(UTC)
    fresh, old = iso_at(now), iso_at(now - timedelta(hours=1))
    dead = os.getpid() + 1
    while pid_alive(dead):
        dead += 1
    _set_running(db, live_elsewhere, "some-other-host:4242", fresh)
    _set_running(db, stale_elsewhere, "some-other-host:4343", old)
    _set_running(db, dead_here, worker_id(host, dead), fresh)
    _set_running(db, live_here, worker_id(host, os.getpid()), fresh)

    assert requeue_abandoned(db) == 2

    with db.read() as session:
        status = dict(session.execute(text("SELECT task_id, status FROM training_jobs")).all())
    assert status == {
        live_elsewhere: "running",
        stale_elsewhere: "queued",
        dead_here: "queued",
        live_here: "running",
    }
    # A supervisor whose worker died takes back that worker's job only.
    assert training.requeue_running(db, lambda worker: worker == "some-other-host:4242") == 1
    with db.read() as session:
        left = session.execute(
            text("SELECT task_id FROM training_jobs WHERE status = 'running'")
        ).all()
    assert [r[0] for r in left] == [live_here]


def test_a_worker_takes_back_the_job_left_under_its_own_id(db: Database) -> None:
    # A restarted container: the same host name, and often the same pid, as the worker
    # that died holding a job. Asking with its own id, it takes that job back; anyone
    # else sees a live process of this host and leaves it.
    (left,) = _queued_tasks(db, 1)
    me = worker_id(socket.gethostname(), os.getpid())
    _set_running(db, left, me, iso_at(datetime.now(UTC)))
    assert requeue_abandoned(db) == 0
    assert requeue_abandoned(db, me=me) == 1
    with db.read() as session:
        assert session.execute(text("SELECT status, worker FROM training_jobs")).all() == [
            ("queued", None)
        ]
