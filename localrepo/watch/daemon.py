"""The watcher loop: watchdog hints -> settled paths -> sync runs (the imperative shell).

Every decision is made by the pure parts in `coalesce.py`; this module does the I/O
around them: it stats paths, reads the catalog's record of them, runs the sync engine
(`Engine.run`, the same run as `repo sync`) in a worker thread, and writes the state that
`repo daemon status` shows.

A sync run scans the whole tree (stat-only for unchanged files), so every run is also a
reconciling scan; it holds the repository lock, so a `repo sync` started meanwhile
waits for it. When the remote is unreachable, local changes are still scanned and
journalled, and sent after a capped exponential backoff. On SIGTERM/SIGINT a run in
progress gets `grace` seconds to finish; after that the process exits and the journal
(written before every side effect) lets the next start finish the work, exactly as
after a SIGKILL.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from localrepo.catalog.files import recorded_stats
from localrepo.errors import LocalrepoError
from localrepo.remote.api import RemoteAPI
from localrepo.remote.errors import AuthError, RemoteUnavailableError
from localrepo.repository import Repository
from localrepo.sync.stopping import StopRequest
from localrepo.watch import coalesce as C
from localrepo.watch.daemon_files import DaemonState, now_iso
from localrepo.watch.observer import OVERFLOW, Watching, start_watching, stop_watching

log = logging.getLogger("localrepo.watch")

WAKE = C.FsEvent("wake", "")  # a queue item that only wakes the loop (a signal arrived)


@dataclass
class WatchOptions:
    interval: float = 30.0  # pull timer
    debounce: float = 2.0
    poll: bool = False
    poll_interval: float = 1.0
    full_every: float = 3600.0  # full reconciling scan
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    grace: float = 8.0  # how long a run in progress may go on after a stop signal


def stat_key(path: str) -> C.StatKey:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def summary(report: Any) -> dict[str, Any]:
    o = report.outcome
    return {
        "uploaded": o.uploaded,
        "downloaded": o.downloaded,
        "relabelled": o.relabelled_remote + o.relabelled_local,
        "deleted": o.deleted_remote + o.unlinked_remote + o.trashed_local,
        "conflicts": report.conflicts,
        "failed": len(o.failed),
        "seconds": round(report.seconds, 3),
        # What the run read: the folders it scanned ("all": a full scan), and whether it
        # listed the remote tasks (a push of local changes does not).
        "scanned": _scanned(report.scan),
        "listed": any(t.listed for t in report.tasks),
    }


def _scanned(scan: Any) -> str | list[str]:
    if scan is None or scan.scope is None:
        return "all"
    return scan.scope


class Watcher:
    def __init__(
        self,
        repo: Repository,
        client: RemoteAPI,
        options: WatchOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        start_observer: Callable[..., Watching] = start_watching,
        hard_exit: Callable[[int], None] = os._exit,
    ) -> None:
        self.repo = repo
        self.client = client
        self.options = options
        self.clock = clock
        self.start_observer = start_observer
        self.hard_exit = hard_exit
        self.events: queue.Queue[C.FsEvent] = queue.Queue()
        self.stop = threading.Event()
        # Handed to each sync run: a stop winds the run down (no new image starts, the
        # requests in flight get their grace; sync/stopping.py) instead of running it out.
        self.sync_stop = StopRequest()
        self.state = DaemonState(pid=os.getpid(), since=now_iso())
        self.coalescer = C.Coalescer(options.debounce)
        self.schedule = C.Schedule(
            options.interval,
            options.full_every,
            backoff_base=options.backoff_base,
            backoff_cap=options.backoff_cap,
        )
        self.local = False  # settled local changes wait for a sync
        self.touched: set[str] = set()  # folders to rescan at the next run
        self.overflow = False  # the kernel dropped events: the next run is a full scan
        self._last_logged_error: str | None = None
        self._save_lock = threading.Lock()

    # -- control ----------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.stop.set()
        self.sync_stop.request()
        self.events.put(WAKE)

    def _save(self) -> None:
        with self._save_lock:
            try:
                self.state.save(self.repo.state_dir)
            except OSError as exc:
                log.warning("cannot write the daemon state: %s", exc)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        opts = self.options
        watching = self.start_observer(
            self.repo.root, self.events, poll=opts.poll, poll_interval=opts.poll_interval
        )
        self.state.mode, self.state.warning = watching.mode, watching.warning
        self.state.state = "idle"
        self._save()
        how = watching.mode
        if how == "polling":
            how += f" every {opts.poll_interval:g}s"
        log.info(
            "watching %s (%s; debounce %.1fs, pull every %.0fs, full scan every %.0fs)",
            self.repo.root,
            how,
            opts.debounce,
            opts.interval,
            opts.full_every,
        )
        conn = self.repo.connect()
        try:
            while not self.stop.is_set():
                self._step(conn)
        finally:
            conn.close()
            stop_watching(watching)
            self.state.state = "stopped"
            self._save()
            log.info("stopped")
        return 0

    def _step(self, conn: sqlite3.Connection) -> None:
        now = self.clock()
        self._settle(conn, now)
        if self.overflow:
            self.overflow = False
            self.schedule.last_full = None
        why, scan_only = self.schedule.decide(now, self.local)
        # Files still settling are left out of the run, as the catalog knows them.
        hold = self.coalescer.unsettled()
        if why is not None or (scan_only and self.local):
            # A full scan walks everything; any other run only the folders events touched.
            scope = None if why == C.FULL else frozenset(self.touched)
            self.touched.clear()
            if why is not None:
                self._run_in_worker(lambda: self._sync(why, hold, scope), why)
            else:
                self._run_in_worker(lambda: self._scan_only(hold, scope), "journal")
        if self.stop.is_set():
            return
        wake = self.schedule.wake_at()
        due = self.coalescer.next_due()
        if due is not None:
            wake = min(wake, due)
        self._wait(max(0.02, min(60.0, wake - self.clock())))

    def _wait(self, timeout: float) -> None:
        """Sleep until `timeout` passes or an event arrives; take in every queued event."""
        try:
            first = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        self._take(first)
        while True:
            try:
                self._take(self.events.get_nowait())
            except queue.Empty:
                return

    def _take(self, event: C.FsEvent) -> None:
        if event is WAKE:
            return
        if event is OVERFLOW:
            log.warning("the kernel dropped filesystem events; running a full scan")
            self.overflow = True
            return
        root = self.repo.root
        paths = [event.path] + ([event.dest] if event.dest else [])
        stats = {p: stat_key(os.path.join(root, p)) for p in paths}
        self.coalescer.observe(event, self.clock(), stats)

    def _settle(self, conn: sqlite3.Connection, now: float) -> None:
        due = self.coalescer.due(now)
        if not due:
            return
        dirs = self.coalescer.dirs()
        root = self.repo.root
        ready = self.coalescer.settle(now, {p: stat_key(os.path.join(root, p)) for p in due})
        if not ready:
            return
        disk = {p: stat_key(os.path.join(root, p)) for p in ready}
        changed, echoes = C.split_echoes(ready, disk, recorded_stats(conn, ready), dirs)
        if echoes:
            log.debug(
                "%d event(s) match the catalog (the engine's own writes): ignored", len(echoes)
            )
        if changed:
            folders = C.touched_folders(changed, dirs)
            log.info(
                "%d changed path(s) in %s",
                len(changed),
                ", ".join((f or ".") + "/" for f in folders[:5])
                + (" ..." if len(folders) > 5 else ""),
            )
            self.touched.update(folders)
            self.local = True

    # -- work -------------------------------------------------------------------------------
    def _run_in_worker(self, work: Callable[[], None], what: str) -> None:
        """Run `work` in a thread; while it runs, keep taking events (they are hints for
        the next round) and watch for a stop signal."""
        self.local = False
        worker = threading.Thread(target=self._guarded, args=(work,), name="sync", daemon=True)
        worker.start()
        deadline = None
        while worker.is_alive():
            if self.stop.is_set() and deadline is None:
                deadline = self.clock() + self.options.grace
                log.info(
                    "stop requested; letting the %s run finish (%.0fs at most)",
                    what,
                    self.options.grace,
                )
            if deadline is not None and self.clock() >= deadline:
                log.warning(
                    "stopping in the middle of a %s run: the journal keeps the work in flight "
                    "and the next start finishes it",
                    what,
                )
                self.state.state = "stopped"
                self._save()
                logging.shutdown()
                self.hard_exit(0)
                return
            self._wait(0.1)

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # the daemon outlives a bug in one run; the log has the trace
            log.exception("unexpected error")

    def _failed_scope(self, scope: frozenset[str] | None) -> None:
        """A run failed, maybe before its scan committed: the next run scans its folders
        again (all of them, when it was a full scan)."""
        self.touched.update({""} if scope is None else scope)

    def _retry_paths(self, paths: Iterable[str]) -> None:
        """Files that changed while the scan read them: their folders are scanned again."""
        self.touched.update(C.touched_folders(paths))

    def _scan_only(self, hold: frozenset[str], scope: frozenset[str] | None) -> None:
        from localrepo.scan.scanner import Scanner

        try:
            with self.repo.lock():
                conn = self.repo.connect()
                try:
                    rep = Scanner(self.repo.root, conn).scan(hold=hold, scope=scope)
                finally:
                    conn.close()
        except BaseException:
            self._failed_scope(scope)
            raise
        self._retry_paths(rep.retry_later)
        self.schedule.journalled()
        if rep.change_count():
            log.info(
                "remote unreachable: journalled %d change(s); they go out at the next retry",
                rep.change_count(),
            )

    def _sync(self, why: str, hold: frozenset[str], scope: frozenset[str] | None = None) -> None:
        from localrepo.sync.engine import Engine, SyncOptions

        self.state.state = "syncing"
        self._save()
        started = self.clock()
        try:
            cfg = self.repo.config()  # per run: a changed policy or max_delete applies
            options = SyncOptions(
                mode="sync",
                policy=cfg.sync.policy,  # type: ignore[arg-type]
                max_delete=cfg.sync.max_delete,
                noresize=cfg.sync.noresize,
                share_labels=cfg.sync.share_labels,
                hold=hold,
                scope=scope,
                # Local changes are pushed without listing the remote; the pull timer,
                # the full scan and retries list it (and so find remote changes).
                remote_view="catalog" if why == C.LOCAL else "listing",
            )
            report = Engine(self.repo, self.client, options, stop=self.sync_stop).run()
        except Exception as exc:  # whatever it was, the schedule backs off before a retry
            self._failed_scope(scope)
            self._failed(why, exc)
            return
        if report.scan is not None:
            self._retry_paths(report.scan.retry_later)
        if self.state.offline:
            log.info("the remote answers again; sent what was journalled meanwhile")
        self.schedule.succeeded(self.clock(), why)
        result = summary(report)
        st = self.state
        st.state, st.offline, st.next_retry, st.failures = "idle", False, None, 0
        st.last_sync, st.last_result, st.syncs = now_iso(), result, st.syncs + 1
        stops = [t.stop.message for t in report.tasks if t.stop is not None]
        failed = report.outcome.failed
        if stops:
            self._error("stopped by a safety limit: " + "; ".join(stops))
        elif failed:
            self._error(f"{len(failed)} item(s) failed, retried at the next run: " + failed[0][1])
        else:
            st.last_error = None
            self._last_logged_error = None
        self._save()
        did = {k: v for k, v in result.items() if v and k not in ("seconds", "scanned", "listed")}
        if did:
            log.info(
                "synced (%s): %s in %.1fs",
                why,
                ", ".join(f"{k} {v}" for k, v in did.items()),
                self.clock() - started,
            )
        else:
            log.debug("synced (%s): nothing to do", why)

    def _failed(self, why: str, exc: Exception) -> None:
        delay = self.schedule.failed(self.clock(), why)
        st = self.state
        st.failures = self.schedule.failures
        st.next_retry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + delay))
        if isinstance(exc, RemoteUnavailableError):
            st.state, st.offline = "offline", True
            message = f"remote unreachable: {exc}"
        elif isinstance(exc, (AuthError, LocalrepoError)):
            st.state = "idle"
            message = str(exc)
        else:
            st.state = "idle"
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            log.error("sync failed", exc_info=exc)
        self._error(message, f" (attempt {st.failures}; next in {delay:.0f}s)")
        self._save()

    def _error(self, message: str, suffix: str = "") -> None:
        self.state.last_error, self.state.last_error_at = message, now_iso()
        if message != self._last_logged_error:
            log.warning("%s%s", message, suffix)
            self._last_logged_error = message
        else:
            log.debug("%s%s", message, suffix)
