"""`repo watch` and `repo daemon start|stop|status|logs`: keep a repository in sync in
the background (see docs/daemon.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from localrepo.cli.context import examples
from localrepo.errors import LocalrepoError
from localrepo.vocabulary import LOGS_DIR

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# A daemon gives up on a request sooner than `repo sync` does: its own backoff retries.
DAEMON_RETRY = {"retry_attempts": 3, "retry_timeout": 15.0}


# (flag, smallest value, default, help) of the watcher's timing options, all in seconds.
TIMINGS = (
    ("--interval", 0.1, 30.0, "Pull remote changes every S seconds."),
    (
        "--debounce",
        0.0,
        2.0,
        "Act on a file once it has been quiet (same size and mtime) for S seconds.",
    ),
    ("--full-scan-every", 1.0, 3600.0, "Run a full reconciling scan every S seconds."),
    ("--max-backoff", 0.1, 300.0, "With the remote unreachable, retry at most S seconds apart."),
    ("--poll-interval", 0.1, 1.0, "With --poll: look at the whole tree every S seconds."),
)


def watch_options(f: Any) -> Any:
    f = click.option(
        "--poll",
        is_flag=True,
        help="Poll the tree instead of using inotify (network and container mounts).",
    )(f)
    for flag, smallest, default, text in reversed(TIMINGS):
        f = click.option(
            flag,
            type=click.FloatRange(min=smallest),
            default=default,
            show_default=True,
            metavar="S",
            help=text,
        )(f)
    return f


def _watch_args(poll: bool, timing: dict[str, float]) -> list[str]:
    """The `repo watch` arguments that repeat these options (for the detached process)."""
    args = []
    for flag, *_rest in TIMINGS:
        args += [flag, repr(timing[flag[2:].replace("-", "_")])]
    return args + (["--poll"] if poll else [])


def _setup_logging(log_file: Path | None, verbose: int) -> None:
    import logging
    import logging.handlers

    from localrepo.watch.daemon_files import LOG_BACKUPS, LOG_BYTES

    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    ours = logging.getLogger("localrepo")
    ours.handlers[:] = [handler]
    ours.setLevel(logging.DEBUG if verbose else logging.INFO)
    ours.propagate = False
    logging.getLogger("stamina").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _result_text(result: dict[str, Any]) -> str:
    """` (uploaded 3, ..., scanned cats/, dogs/; no listing)` for the status line."""
    parts = [f"{k} {v}" for k, v in result.items() if k not in ("seconds", "scanned", "listed")]
    scanned = result.get("scanned")
    if scanned is not None:
        where = ", ".join((f or ".") + "/" for f in scanned) if scanned != "all" else "all"
        parts.append(f"scanned {where or 'nothing'}")
    if "listed" in result:
        parts.append("listed the remote" if result["listed"] else "no remote listing")
    return f" ({', '.join(parts)})" if parts else ""


def _client(repo: Any) -> Any:
    from localrepo.cli.connect import retry_settings
    from localrepo.credentials import resolve_token
    from localrepo.remote.client import RecognitionClient

    cfg = repo.config()
    if not cfg.remote.url:
        raise LocalrepoError(
            "This repository has no remote. Set one with: repo remote set URL [--workspace ID]"
        )
    token = resolve_token(cfg.remote.url, None)
    return RecognitionClient(
        cfg.remote.url,
        token,
        workspace=cfg.remote.workspace,
        concurrency=8,
        **{**DAEMON_RETRY, **retry_settings()},
    )


def _log_path(repo: Any) -> Path:
    from localrepo.watch.daemon_files import LOG_NAME

    return repo.state_dir / LOGS_DIR / LOG_NAME


def _counts(repo: Any) -> tuple[int, int]:
    """(pending journal entries, open conflicts) straight from the catalog."""
    from localrepo.catalog import conflicts as catalog_conflicts
    from localrepo.catalog import journal

    conn = repo.connect()
    try:
        pending = journal.open_count(conn)
        conflicts = catalog_conflicts.open_count(conn)
    finally:
        conn.close()
    return int(pending), int(conflicts)


def status_dict(repo: Any) -> dict[str, Any]:
    from localrepo.watch.daemon_files import DaemonState, running_pid

    pid = running_pid(repo.state_dir)
    st = DaemonState.load(repo.state_dir)
    pending, conflicts = _counts(repo)
    running = pid is not None
    out: dict[str, Any] = {
        "running": running,
        "pid": (pid if pid and pid > 0 else (st.pid if st else None)) if running else None,
        "state": (st.state if st else "starting") if running else "not running",
        "since": st.since if st and running else None,
        "mode": st.mode if st and running else None,
        "last_sync": st.last_sync if st else None,
        "last_result": st.last_result if st else {},
        "last_error": st.last_error if st else None,
        "last_error_at": st.last_error_at if st else None,
        "offline": bool(st and running and st.offline),
        "next_retry": st.next_retry if st and running and st.offline else None,
        "failures": st.failures if st and running else 0,
        "warning": st.warning if st and running else None,
        "pending": pending,
        "conflicts": conflicts,
        "log": str(_log_path(repo)),
    }
    if not running and st and st.state not in ("stopped", "starting"):
        out["note"] = f"the last daemon ended without stopping (it was {st.state})"
    return out


def print_status(s: dict[str, Any]) -> None:
    echo = click.echo
    if s["running"]:
        echo(f"daemon: running (pid {s['pid']}, since {s['since']}, {s['mode'] or '?'})")
        state = s["state"]
        if s["offline"]:
            state += f": remote unreachable, next retry {s['next_retry']}"
        echo(f"state: {state}")
    else:
        echo("daemon: not running" + (f" ({s['note']})" if s.get("note") else ""))
    if s["last_sync"]:
        echo(f"last sync: {s['last_sync']}" + _result_text(s["last_result"]))
    else:
        echo("last sync: never")
    echo(f"pending changes: {s['pending']}")
    echo(f"conflicts: {s['conflicts']}")
    if s["last_error"]:
        echo(f"last error: {s['last_error']} ({s['last_error_at']})")
    if s["warning"]:
        echo(f"warning: {s['warning']}")
    echo(f"log: {s['log']}")


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for its parent to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _wait_until(check: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return bool(check())


@click.command(
    epilog=examples("repo watch", "repo watch --interval 60 --poll    # a network mount")
)
@watch_options
@click.option("--detached", is_flag=True, hidden=True, help="Log to the daemon log file.")
@click.pass_obj
def watch(obj: Any, poll: bool, detached: bool, **timing: float) -> None:
    """Keep this repository in sync until Ctrl-C or SIGTERM (in the foreground).

    Changes on disk are synced once they settle; remote changes are pulled every
    --interval seconds; a full scan runs at start and every --full-scan-every."""
    from localrepo.watch.daemon import Watcher, WatchOptions
    from localrepo.watch.daemon_files import DaemonLock

    repo = obj.repo()
    lock = DaemonLock(repo.state_dir)
    lock.acquire()  # one watcher per repository; a dead one's lock is free
    try:
        _setup_logging(_log_path(repo) if detached else None, obj.verbose)
        client = _client(repo)
        options = WatchOptions(
            interval=timing["interval"],
            debounce=timing["debounce"],
            poll=poll,
            full_every=timing["full_scan_every"],
            backoff_cap=timing["max_backoff"],
            poll_interval=timing["poll_interval"],
        )
        watcher = Watcher(repo, client, options)

        def on_signal(signum: int, _frame: Any) -> None:
            import logging

            logging.getLogger("localrepo.watch").info(
                "%s received; stopping", signal.Signals(signum).name
            )
            watcher.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if detached:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            watcher.run()
        finally:
            if not watcher.sync_stop.abandons():
                client.close()
    finally:
        lock.release()
    if watcher.sync_stop.abandons():
        # The last run left requests in flight to the journal (sync/stopping.py): their
        # threads would hold the process until the server answers them.
        import logging

        from localrepo.cli.interrupt import end_now

        logging.shutdown()
        end_now(0)


@click.group(epilog=examples("repo daemon start", "repo daemon status"))
def daemon() -> None:
    """Run `repo watch` in the background: start, stop, status, logs."""


@daemon.command("start", epilog=examples("repo daemon start", "repo daemon start --interval 60"))
@watch_options
@click.pass_obj
def daemon_start(obj: Any, poll: bool, **timing: float) -> None:
    """Start the watcher detached (own session), logging to .localrepo/logs/daemon.log."""
    from localrepo.watch.daemon_files import DaemonState, running_pid

    repo = obj.repo()
    pid = running_pid(repo.state_dir)
    if pid is not None:
        raise LocalrepoError(
            f"the daemon already runs for this repository (pid {pid}); 'repo daemon stop' ends it."
        )
    _client(repo).close()  # a missing remote or token is said here, not in the log
    logs = repo.state_dir / LOGS_DIR
    logs.mkdir(exist_ok=True)
    start_log = logs / "daemon-start.log"
    cmd = [sys.executable, "-m", "localrepo.cli.main", "-C", str(repo.root)]
    cmd += ["-v"] * obj.verbose
    cmd += ["watch", "--detached"]
    cmd += _watch_args(poll, timing)
    with open(start_log, "wb") as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            cwd=repo.root,
            start_new_session=True,  # its own session and process group: detached
            close_fds=True,
        )

    def started() -> bool:
        st = DaemonState.load(repo.state_dir)
        return proc.poll() is not None or (
            running_pid(repo.state_dir) == proc.pid
            and st is not None
            and st.pid == proc.pid
            and st.state != "starting"
        )

    _wait_until(started, START_TIMEOUT)
    if proc.poll() is not None:
        text = start_log.read_text(errors="replace").strip()
        raise LocalrepoError(f"the daemon did not start (exit {proc.returncode}): {text}")
    proc.returncode = 0  # it lives on alone: no "still running" warning at exit
    obj.info(f"daemon started (pid {proc.pid}); log: {_log_path(repo)}")


@daemon.command("stop", epilog=examples("repo daemon stop", "repo daemon stop --timeout 30"))
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=STOP_TIMEOUT,
    show_default=True,
    metavar="S",
    help="Wait S seconds for a graceful stop, then kill it.",
)
@click.pass_obj
def daemon_stop(obj: Any, timeout: float) -> None:
    """Stop the daemon gracefully (work in flight finishes or stays journalled)."""
    from localrepo.watch.daemon_files import read_pid, running_pid

    repo = obj.repo()
    pid = running_pid(repo.state_dir)
    if pid is None:
        obj.info("the daemon is not running.")
        return
    if pid < 0:  # it holds the lock but has not written its pid yet
        _wait_until(lambda: read_pid(repo.state_dir) is not None, 2.0)
        pid = read_pid(repo.state_dir)
        if pid is None:
            raise LocalrepoError("the daemon is starting; try again in a moment.")
    started = time.monotonic()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if _wait_until(lambda: not _alive(pid), timeout):
        obj.info(f"daemon stopped (pid {pid}, {time.monotonic() - started:.1f}s).")
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _wait_until(lambda: running_pid(repo.state_dir) is None, 5.0)
    raise LocalrepoError(
        f"the daemon (pid {pid}) did not stop within {timeout:.0f}s and was killed; "
        "its journal keeps the work in flight for the next start."
    )


@daemon.command("status", epilog=examples("repo daemon status", "repo daemon status --json"))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def daemon_status(obj: Any, as_json: bool) -> None:
    """Running or not, since when, last sync, pending changes, conflicts, last error."""
    s = status_dict(obj.repo())
    if as_json:
        click.echo(json.dumps(s, indent=2, ensure_ascii=False))
    else:
        print_status(s)


@daemon.command("logs", epilog=examples("repo daemon logs -f", "repo daemon logs -n 200"))
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C ends).")
@click.pass_obj
def daemon_logs(obj: Any, lines: int, follow: bool) -> None:
    """Show the end of the daemon's log."""
    path = _log_path(obj.repo())
    if not path.exists():
        obj.info(f"no log yet ({path}).")
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        tail = fh.readlines()[-lines:] if lines else []
        for line in tail:
            click.echo(line, nl=False)
        if not follow:
            return
        try:
            while True:
                line = fh.readline()
                if line:
                    click.echo(line, nl=False)
                else:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            return
