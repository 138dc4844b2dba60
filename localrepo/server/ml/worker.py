"""The training worker: a process of its own that takes queued jobs one at a time.

``localrepo-server serve`` starts it (``python -m localrepo.server.cli worker ...``) and
restarts it if it dies; ``localrepo-server worker`` runs it by hand next to a
``serve --no-worker``. Started by ``serve``, it exits as soon as its parent is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from ..data import training
from ..data.db import Database
from ..data.storage import Storage
from .features import Backends, BackendUnavailable
from .heads import TrainingError
from .train import train_task
from .workerids import REQUEUE_EVERY_SECONDS, gone_here, stale_before, worker_id

log = logging.getLogger("localrepo.server.training")

POLL_SECONDS = 0.25


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_one(
    db: Database,
    backends: Backends,
    blobs: Storage,
    worker: str,
    min_images: int,
    delay: float = 0.0,
    step_delay: float = 0.0,
) -> bool:
    """Claim and run one job; False when the queue is empty. ``delay`` and
    ``step_delay`` are fault injection (tests): a wait before the training, and after
    each progress report (each batch of image features, the fit, the scoring)."""
    job = training.claim_next(db, worker)
    if job is None:
        return False
    log.info("training task %s version %d (attempt %d)", job.task_id, job.version, job.attempts)
    if delay:
        time.sleep(delay)
    try:
        backend = backends.get(backends.active_name())
        result = train_task(
            db,
            backend,
            blobs,
            job.task_id,
            min_images,
            on_progress=lambda fraction, stage: _report(db, job, fraction, stage, step_delay),
        )
    except (TrainingError, BackendUnavailable) as exc:
        log.info("training of task %s version %d failed: %s", job.task_id, job.version, exc)
        training.finish_failed(db, job, worker, str(exc))
        return True
    except Exception as exc:
        log.exception("training of task %s version %d crashed", job.task_id, job.version)
        training.finish_failed(db, job, worker, f"Training failed: {type(exc).__name__}: {exc}")
        return True
    if training.finish_trained(
        db, job, worker, backend=backend.name, head=result.head, metrics=result.metrics
    ):
        log.info(
            "trained task %s version %d in %.1f s (%s)",
            job.task_id,
            job.version,
            result.metrics["seconds"]["total"],
            backend.name,
        )
    else:
        log.info("task %s version %d was deleted while training", job.task_id, job.version)
    return True


def _report(db: Database, job: training.Job, fraction: float, stage: str, wait: float) -> None:
    """The job's progress into its row (with the heartbeat): the web page polls it."""
    training.heartbeat(db, job, fraction, stage)
    if wait:
        time.sleep(wait)


def _import_heads() -> None:
    with contextlib.suppress(ImportError):
        import sklearn.linear_model  # noqa: F401


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs with this pid. A zombie has exited: a worker
    that died with its server is re-parented, and in a container whose first process
    never reaps, it stays a zombie for good, and must not hold its job forever."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it just went
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def requeue_abandoned(db: Database, me: str | None = None) -> int:
    """The jobs of dead workers back in the queue: workers of this host whose process is
    gone, and any whose heartbeat stopped (ml/workerids.py). A live worker's job, on this
    host or another, is never taken. ``me``: the id of the worker asking, which holds no
    job while it asks; a job under its id was its predecessor's (a restarted container
    has the same host name and, often, the same pid)."""
    host = socket.gethostname()
    return training.requeue_running(
        db,
        lambda worker: worker == me or gone_here(worker, host, pid_alive),
        stale_before=stale_before(datetime.now(UTC)),
    )


def run_worker(
    db: Database,
    blobs: Storage,
    backends: Backends,
    min_images: int,
    *,
    parent_pid: int | None = None,
    stop: threading.Event | None = None,
    delay: float = 0.0,
    step_delay: float = 0.0,
    requeue_every: float = REQUEUE_EVERY_SECONDS,
) -> None:
    """Take jobs until ``stop``; every ``requeue_every`` seconds, first put the jobs of
    workers that died (here or elsewhere) back in the queue."""
    stop = stop or threading.Event()
    worker = worker_id(socket.gethostname(), os.getpid())
    next_requeue = 0.0
    # scikit-learn takes seconds to import on a busy machine: do it while the first job
    # loads its backbone and computes features (torch releases the GIL).
    threading.Thread(target=_import_heads, name="import-sklearn", daemon=True).start()
    if parent_pid is not None:
        _die_with_parent()
    while not stop.is_set():
        if parent_pid is not None and os.getppid() != parent_pid:
            return
        try:
            if time.monotonic() >= next_requeue:  # a worker elsewhere may have died
                next_requeue = time.monotonic() + requeue_every
                if requeue_abandoned(db, me=worker):
                    log.warning("requeued the job(s) of a worker that stopped")
            busy = run_one(db, backends, blobs, worker, min_images, delay, step_delay)
        except Exception:
            log.exception("training worker: database error; retrying")
            busy = False
            stop.wait(2.0)
        if not busy:
            stop.wait(POLL_SECONDS)


class WorkerSupervisor:
    """``serve``'s handle on the worker process: starts it when there is work (at start
    when jobs are queued or running, else on the first ``train/``), restarts it when it dies
    (requeueing its job first), stops it with the server. A server that never trains
    never pays for the process."""

    def __init__(self, db: Database, argv: list[str], env: dict[str, str] | None = None):
        self.db = db
        self.argv = argv
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="training-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def ensure_started(self) -> None:
        with self._lock:
            if self._proc is not None or self._stop.is_set():
                return
            self._spawn()
            self._thread.start()

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stop.is_set():
                return
            log.error("training worker exited with %s; restarting it", code)
            try:  # its job only: other workers (other hosts, `worker`) keep theirs
                mine = worker_id(socket.gethostname(), proc.pid)
                training.requeue_running(self.db, lambda worker, mine=mine: worker == mine)
            except Exception:
                log.exception("could not requeue the worker's job")
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)
            with self._lock:
                if not self._stop.is_set():
                    self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop.set()
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def worker_argv(
    data_dir: Path,
    database_url: str,
    backend: str,
    min_images: int,
    threads: int | None,
    delay: float = 0.0,
    step_delay: float = 0.0,
    *,
    storage: str = "",
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "localrepo.server.cli",
        "worker",
        "--data",
        str(data_dir),
        "--backend",
        backend,
        "--min-images-per-label",
        str(min_images),
        "--parent-pid",
        str(os.getpid()),
    ]
    if database_url:
        argv += ["--database-url", database_url]
    if threads:
        argv += ["--threads", str(threads)]
    if delay:
        argv += ["--train-delay", str(delay)]
    if step_delay:
        argv += ["--train-step-delay", str(step_delay)]
    if storage:  # never a secret: data/storage/url.py refuses one
        argv += ["--storage", storage]
    return argv


def wait_for_exit_signal(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` (the worker finishes nothing half-way: an
    interrupted job is requeued at the next start)."""

    def handler(_signum: int, _frame: object) -> None:
        stop.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main_loop(
    db: Database,
    blobs: Storage,
    backends: Backends,
    min_images: int,
    parent_pid: int | None,
    delay: float = 0.0,
    step_delay: float = 0.0,
    requeue_every: float = REQUEUE_EVERY_SECONDS,
) -> int:
    stop = threading.Event()
    wait_for_exit_signal(stop)
    log.info("training worker started (pid %d): %s", os.getpid(), backends.describe())
    try:
        run_worker(
            db,
            blobs,
            backends,
            min_images,
            parent_pid=parent_pid,
            stop=stop,
            delay=delay,
            step_delay=step_delay,
            requeue_every=requeue_every,
        )
    finally:
        db.dispose()
    return 0
