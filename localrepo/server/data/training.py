"""The training queue and what training reads and writes, in the database.

States, on the model and mirrored on its task's ``last_train_status``::

    WAITING (queued) -> IN_TRAINING (claimed by the worker) -> TRAINED | ERROR

A job row (``training_jobs``) carries the queue state: ``queued`` -> ``running`` ->
``done`` | ``failed``. ``requeue_running`` puts the ``running`` jobs of dead workers
back to ``queued`` (a worker whose process is gone, or whose heartbeat stopped); after
``MAX_ATTEMPTS`` starts a job fails instead of looping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import bindparam, text

from .db import Database
from .tables import new_id, now_iso

MAX_ATTEMPTS = 3
WAITING, IN_TRAINING, TRAINED, ERROR = "WAITING", "IN_TRAINING", "TRAINED", "ERROR"


class TaskRows(NamedTuple):
    task: Sequence[Any]  # (id, name, type)
    labels: Sequence[Sequence[Any]]  # (id, name, output_name, negative_for_task), by name
    samples: Sequence[Sequence[Any]]  # (image id, blob sha256, test_image, label id, value)


def task_rows(db: Database, task_id: str) -> TaskRows | None:
    """The task, its labels and its labelled images (one read transaction); None when
    the task does not exist. ``ml.heads.task_data`` makes the training data of them."""
    with db.read() as session:
        conn = session.connection()
        task = conn.execute(
            text("SELECT id, name, type FROM tasks WHERE id = :t"), {"t": task_id}
        ).first()
        if task is None:
            return None
        label_rows = conn.execute(
            text(
                "SELECT l.id, l.name, l.output_name, l.negative_for_task FROM task_labels tl "
                "JOIN labels l ON l.id = tl.label_id WHERE tl.task_id = :t "
                "ORDER BY l.name, l.id"
            ),
            {"t": task_id},
        ).all()
        rows = conn.execute(
            text(
                "SELECT i.id, i.blob_sha256, i.test_image, il.label_id, il.value "
                "FROM task_labels tl JOIN image_labels il ON il.label_id = tl.label_id "
                "JOIN images i ON i.id = il.image_id WHERE tl.task_id = :t "
                "ORDER BY i.created, i.id"
            ),
            {"t": task_id},
        ).all()
    return TaskRows(task, label_rows, rows)


# ---- queueing ------------------------------------------------------------------------------


def trained_versions(conn: Any, task_id: str) -> list[int]:
    """The task's versions that trained, oldest first: what classify/ can use and what
    can be made production."""
    rows = conn.execute(
        text(
            "SELECT version FROM models WHERE task_id = :t AND train_status = :s ORDER BY version"
        ),
        {"t": task_id, "s": TRAINED},
    )
    return [r[0] for r in rows]


def queue_training(db: Database, task_id: str) -> dict[str, Any]:
    """Queue a training of the task: a new model version (WAITING) and a job. A job of
    this task that is still waiting covers the request (it reads the data when it
    starts): then nothing new is queued."""
    with db.write() as session:
        conn = session.connection()
        waiting = conn.execute(
            text(
                "SELECT j.model_id, m.version FROM training_jobs j "
                "LEFT JOIN models m ON m.id = j.model_id "
                "WHERE j.task_id = :t AND j.status = 'queued'"
            ),
            {"t": task_id},
        ).first()
        if waiting is not None:
            return {
                "detail": "A training of this task is already waiting; it will use the "
                "images as they are when it starts.",
                "model_id": waiting[0],
                "version": waiting[1],
                "queued": False,
            }
        version = (
            conn.execute(
                text("SELECT max(version) FROM models WHERE task_id = :t"), {"t": task_id}
            ).scalar()
            or 0
        ) + 1
        model_id, now = new_id(), now_iso()
        conn.execute(
            text(
                "INSERT INTO models (id, task_id, version, train_status, metrics, created) "
                "VALUES (:id, :t, :v, :s, '{}', :c)"
            ),
            {"id": model_id, "t": task_id, "v": version, "s": WAITING, "c": now},
        )
        conn.execute(
            text(
                "INSERT INTO training_jobs (id, task_id, model_id, status, attempts, created) "
                "VALUES (:id, :t, :m, 'queued', 0, :c)"
            ),
            {"id": new_id(), "t": task_id, "m": model_id, "c": now},
        )
        conn.execute(
            text("UPDATE tasks SET last_train_status = :s WHERE id = :t"),
            {"s": WAITING, "t": task_id},
        )
    return {
        "detail": f"Training queued: version {version}.",
        "model_id": model_id,
        "version": version,
        "queued": True,
    }


def has_pending(db: Database) -> bool:
    """Whether a job waits, or runs: a running one may belong to a worker that is still
    dying, whose job a worker started now takes back (ml/worker.py)."""
    return (
        db.first(text("SELECT 1 FROM training_jobs WHERE status IN ('queued', 'running') LIMIT 1"))
        is not None
    )


@dataclass(frozen=True)
class Job:
    id: str
    task_id: str
    model_id: str
    version: int
    attempts: int


def claim_next(db: Database, worker: str) -> Job | None:
    """Take the oldest queued job whose task has no running job (one per task)."""
    with db.write() as session:
        conn = session.connection()
        # PostgreSQL: a job another worker is claiming right now is skipped, not waited
        # for (SQLite's write transactions run one at a time anyway).
        lock = "" if db.is_sqlite else " FOR UPDATE OF j SKIP LOCKED"
        row = conn.execute(
            text(
                "SELECT j.id, j.task_id, j.model_id, m.version, j.attempts FROM training_jobs j "
                "JOIN models m ON m.id = j.model_id WHERE j.status = 'queued' "
                "AND NOT EXISTS (SELECT 1 FROM training_jobs r WHERE r.task_id = j.task_id "
                f"AND r.status = 'running') ORDER BY j.created, j.id LIMIT 1{lock}"
            )
        ).first()
        if row is None:
            # A queued job whose model was deleted has nothing to train.
            conn.execute(
                text(
                    "UPDATE training_jobs SET status = 'failed', error = 'model deleted', "
                    "finished = :n WHERE status = 'queued' AND model_id IS NULL"
                ),
                {"n": now_iso()},
            )
            return None
        now = now_iso()
        claimed = conn.execute(
            text(
                "UPDATE training_jobs SET status = 'running', worker = :w, started = :n, "
                "heartbeat = :n, attempts = attempts + 1, progress = 0, stage = :st "
                "WHERE id = :id AND status = 'queued'"
            ),
            {"w": worker, "n": now, "id": row[0], "st": "reading the task's images"},
        )
        if claimed.rowcount != 1:
            # Another worker took it between the read and this write (PostgreSQL's
            # read committed): it is theirs; never two workers on one version.
            return None
        conn.execute(
            text("UPDATE models SET train_status = :s WHERE id = :m"),
            {"s": IN_TRAINING, "m": row[2]},
        )
        conn.execute(
            text("UPDATE tasks SET last_train_status = :s WHERE id = :t"),
            {"s": IN_TRAINING, "t": row[1]},
        )
    return Job(id=row[0], task_id=row[1], model_id=row[2], version=row[3], attempts=row[4] + 1)


def heartbeat(db: Database, job: Job, progress: float | None = None, stage: str = "") -> None:
    """The job is alive; with ``progress`` (0..1, clamped) and ``stage`` (the user's
    words, e.g. "computing image features 64 of 400"), how far it is."""
    params: dict[str, Any] = {"n": now_iso(), "id": job.id}
    sets = "heartbeat = :n"
    if progress is not None:
        sets += ", progress = :p, stage = :s"
        params.update(p=min(1.0, max(0.0, float(progress))), s=stage[:200])
    with db.write_conn() as conn:
        conn.execute(text(f"UPDATE training_jobs SET {sets} WHERE id = :id"), params)


@dataclass(frozen=True)
class Progress:
    """How far a version's training is, as its job last said."""

    progress: float | None  # 0..1; None: not started, or no figure yet
    stage: str


def progress_of(db: Database, model_id: str) -> Progress | None:
    """The progress of the newest job training ``model_id``; None when it has none."""
    row = db.first(
        text(
            "SELECT progress, stage FROM training_jobs WHERE model_id = :m "
            "ORDER BY created DESC, id DESC LIMIT 1"
        ),
        {"m": model_id},
    )
    if row is None:
        return None
    return Progress(None if row[0] is None else float(row[0]), row[1] or "")


def _task_status_after(conn: Any, task_id: str, status: str) -> str:
    """A finished job leaves the task WAITING when another training is queued."""
    queued = conn.execute(
        text("SELECT 1 FROM training_jobs WHERE task_id = :t AND status = 'queued' LIMIT 1"),
        {"t": task_id},
    ).first()
    return WAITING if queued is not None else status


def _still_mine(conn: Any, job: Job, worker: str) -> bool:
    return (
        conn.execute(
            text(
                "SELECT 1 FROM training_jobs j JOIN models m ON m.id = j.model_id "
                "WHERE j.id = :id AND j.status = 'running' AND j.worker = :w"
            ),
            {"id": job.id, "w": worker},
        ).first()
        is not None
    )


def finish_trained(
    db: Database,
    job: Job,
    worker: str,
    *,
    backend: str,
    head: bytes,
    metrics: dict[str, Any],
) -> bool:
    """Store the trained model and make it the task's production version. False when
    the job is no longer this worker's (task or model deleted, requeued)."""
    with db.write() as session:
        conn = session.connection()
        if not _still_mine(conn, job, worker):
            return False
        now = now_iso()
        conn.execute(
            text("INSERT INTO model_heads (model_id, data) VALUES (:m, :d)"),
            {"m": job.model_id, "d": head},
        )
        conn.execute(
            text(
                "UPDATE models SET train_status = :s, accuracy = :a, precision = :p, "
                "recall = :r, metrics = :x, backend = :b, detail = NULL WHERE id = :m"
            ),
            {
                "s": TRAINED,
                "a": metrics.get("accuracy"),
                "p": metrics.get("precision"),
                "r": metrics.get("recall"),
                "x": json.dumps(metrics, separators=(",", ":"), allow_nan=False),
                "b": backend,
                "m": job.model_id,
            },
        )
        conn.execute(
            text(
                "UPDATE training_jobs SET status = 'done', finished = :n, progress = 1, "
                "stage = 'trained' WHERE id = :id"
            ),
            {"n": now, "id": job.id},
        )
        conn.execute(
            text("UPDATE tasks SET production_version = :v, last_train_status = :s WHERE id = :t"),
            {
                "v": job.version,
                "s": _task_status_after(conn, job.task_id, TRAINED),
                "t": job.task_id,
            },
        )
    return True


def finish_failed(db: Database, job: Job, worker: str, reason: str) -> bool:
    with db.write() as session:
        conn = session.connection()
        if not _still_mine(conn, job, worker):
            return False
        _fail(conn, job.id, job.task_id, job.model_id, reason)
    return True


def _fail(conn: Any, job_id: str, task_id: str, model_id: str | None, reason: str) -> None:
    conn.execute(
        text(
            "UPDATE training_jobs SET status = 'failed', error = :e, finished = :n WHERE id = :id"
        ),
        {"e": reason, "n": now_iso(), "id": job_id},
    )
    if model_id is not None:
        conn.execute(
            text("UPDATE models SET train_status = :s, detail = :e WHERE id = :m"),
            {"s": ERROR, "e": reason, "m": model_id},
        )
    conn.execute(
        text("UPDATE tasks SET last_train_status = :s WHERE id = :t"),
        {"s": _task_status_after(conn, task_id, ERROR), "t": task_id},
    )


def requeue_running(
    db: Database,
    gone: Callable[[str | None], bool] = lambda worker: True,
    *,
    stale_before: str | None = None,
) -> int:
    """Put the running jobs of stopped or dead workers back in the queue (their models
    back to WAITING); a job that was started MAX_ATTEMPTS times fails instead. A job is
    its worker's while ``gone(worker)`` is false and its heartbeat is not older than
    ``stale_before`` (a timestamp; None: heartbeats are not looked at), so a worker
    starting, or a supervisor whose worker died, never takes a live worker's job
    (ml/worker.py). Returns how many jobs were requeued."""
    with db.write() as session:
        conn = session.connection()
        rows = conn.execute(
            text(
                "SELECT id, task_id, model_id, attempts, worker, heartbeat FROM training_jobs "
                "WHERE status = 'running' ORDER BY created"
            )
        ).all()
        requeued = 0
        for job_id, task_id, model_id, attempts, worker, heartbeat in rows:
            stale = stale_before is not None and (heartbeat or "") < stale_before
            if not (stale or gone(worker)):
                continue
            if attempts >= MAX_ATTEMPTS:
                _fail(
                    conn,
                    job_id,
                    task_id,
                    model_id,
                    f"Training was interrupted {attempts} times (the worker stopped); "
                    "see the server log.",
                )
                continue
            conn.execute(
                text("UPDATE training_jobs SET status = 'queued', worker = NULL WHERE id = :id"),
                {"id": job_id},
            )
            if model_id is not None:
                conn.execute(
                    text("UPDATE models SET train_status = :s WHERE id = :m"),
                    {"s": WAITING, "m": model_id},
                )
            conn.execute(
                text("UPDATE tasks SET last_train_status = :s WHERE id = :t"),
                {"s": WAITING, "t": task_id},
            )
            requeued += 1
    return requeued


# ---- embeddings and heads ------------------------------------------------------------------


def cached_embeddings(db: Database, backend: str, shas: Iterable[str]) -> dict[str, np.ndarray]:
    wanted = list(dict.fromkeys(shas))
    found: dict[str, np.ndarray] = {}
    stmt = text(
        "SELECT sha256, data FROM embeddings WHERE backend = :b AND sha256 IN :s"
    ).bindparams(bindparam("s", expanding=True))
    with db.read() as session:
        conn = session.connection()
        for start in range(0, len(wanted), 500):
            for sha, data in conn.execute(stmt, {"b": backend, "s": wanted[start : start + 500]}):
                found[sha] = np.frombuffer(data, dtype="<f4")
    return found


def store_embeddings(db: Database, backend: str, vectors: dict[str, np.ndarray]) -> None:
    if not vectors:
        return
    now = now_iso()
    rows = [
        {"b": backend, "s": sha, "d": int(v.shape[0]), "x": v.astype("<f4").tobytes(), "c": now}
        for sha, v in vectors.items()
    ]
    with db.write_conn() as conn:
        existing = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT sha256 FROM embeddings WHERE backend = :b AND sha256 IN :s"
                ).bindparams(bindparam("s", expanding=True)),
                {"b": backend, "s": list(vectors)},
            )
        }
        fresh = [r for r in rows if r["s"] not in existing]
        if fresh:
            conn.execute(
                text(
                    "INSERT INTO embeddings (backend, sha256, dim, data, created) "
                    "VALUES (:b, :s, :d, :x, :c)"
                ),
                fresh,
            )


def production_head(db: Database, task_id: str) -> tuple[int, bytes] | None:
    """The task's production version and its stored head, when it has one that
    trained (what a new training is compared with, on the new version's test part)."""
    row = db.first(
        text(
            "SELECT m.version, h.data FROM tasks t JOIN models m ON m.task_id = t.id "
            "AND m.version = t.production_version JOIN model_heads h ON h.model_id = m.id "
            "WHERE t.id = :t AND m.train_status = :s"
        ),
        {"t": task_id, "s": TRAINED},
    )
    return (int(row[0]), bytes(row[1])) if row is not None else None


def load_head(db: Database, model_id: str) -> bytes | None:
    row = db.first(text("SELECT data FROM model_heads WHERE model_id = :m"), {"m": model_id})
    return bytes(row[0]) if row is not None else None
