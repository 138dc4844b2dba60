"""``serve --workers N``: N API processes serving one listening socket, and the parent
that supervises them (docs/server.md, "Several processes").

The parent prepares once (server/serving.py: the data folder, the database, the dev
token), binds the socket, then starts N copies of its own command line with
``--api-process PARENT:SOCKET_FD:READY_FD``: each inherits the socket (the kernel hands
each new connection to whichever process accepts it first) and writes a byte to its
ready pipe once it serves. The parent announces the server (and writes the
``--ready-file``) when all N serve, then:

- starts an API process again when one dies (after ``restart_delay``);
- owns the one training worker of this server (``ml/worker.WorkerSupervisor``), which an
  API process asks for with SIGUSR1 when it queues a training;
- on SIGTERM or SIGINT, passes SIGTERM on; each API process stops accepting, finishes
  its requests in flight (``serving.GRACEFUL_SECONDS`` at most) and exits; then the
  parent stops the training worker and exits 0.

An API process whose parent is gone (killed) stops as if it had been sent SIGTERM.
Nothing that must agree across processes is kept in an API process's memory
(server/context.py says what is, and why).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .serving import GRACEFUL_SECONDS, create_app_for, run_server, start_worker, uvicorn_server

log = logging.getLogger("localrepo.server")

START_SECONDS = 60.0  # for every API process to serve, at start
STABLE_SECONDS = 10.0  # an API process that ran this long and died is restarted at once
MIN_DELAY = 0.1
MAX_DELAY = 30.0
POLL_SECONDS = 0.2
PENDING_POLL_SECONDS = 10.0  # the parent also looks for queued trainings this often
# Connections an API process accepts at one wake-up. asyncio's own count (uvicorn's
# backlog) lets the first process that wakes take every connection waiting, so that
# clients connecting at once all land on one process; one at a time, an idle process
# takes the next while a busy one is still answering.
ACCEPT_BATCH = 1


def restart_delay(uptime: float, previous: float) -> float:
    """How long to wait before starting again an API process that ran ``uptime`` seconds
    and died, the wait before its last start being ``previous``: the least wait after a
    crash of a process that had been serving a while; else twice the last wait, up to
    ``MAX_DELAY`` (a process that dies at start would otherwise be restarted in a busy
    loop)."""
    if uptime >= STABLE_SECONDS:
        return MIN_DELAY
    return min(MAX_DELAY, max(MIN_DELAY, previous * 2))


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    started: float
    delay: float = 0.0  # the wait before this start
    restart_at: float | None = None  # when it died: when to start it again


def _spawn(args: argparse.Namespace, sock: socket.socket, ready_fd: int) -> subprocess.Popen[bytes]:
    spec = f"{os.getpid()}:{sock.fileno()}:{ready_fd}"
    argv = [sys.executable, "-m", "localrepo.server.cli", *args.argv, "--api-process", spec]
    fds = (sock.fileno(),) if ready_fd < 0 else (sock.fileno(), ready_fd)
    return subprocess.Popen(argv, pass_fds=fds, stdin=subprocess.DEVNULL)


def run_parent(
    args: argparse.Namespace,
    settings: Settings,
    ctx: Any,
    sock: socket.socket,
    announce: Callable[[dict[str, Any]], None],
) -> int:
    """Supervise ``args.workers`` API processes on ``sock`` until SIGTERM or SIGINT."""
    stop = threading.Event()
    train = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    signal.signal(signal.SIGINT, lambda _s, _f: stop.set())
    signal.signal(signal.SIGUSR1, lambda _s, _f: train.set())
    supervisor = None if args.no_worker else start_worker(ctx, settings)
    children: list[_Child] = []
    try:
        if not _start_all(args, sock, children, stop):
            return 0 if stop.is_set() else 1
        print(f"localrepo-server: {len(children)} API processes", flush=True)
        announce({"workers": [c.proc.pid for c in children]})
        _supervise(args, sock, ctx, children, supervisor, stop, train)
        return 0
    finally:
        sock.close()  # new connections are refused from now on, as by one process
        _stop_all(children)
        if supervisor is not None:
            supervisor.stop()


def _start_all(
    args: argparse.Namespace, sock: socket.socket, children: list[_Child], stop: threading.Event
) -> bool:
    """Start the API processes and wait until each serves; False (an error said) when
    one of them died first, or none in time, or the parent was told to stop."""
    waiting: dict[int, _Child] = {}
    for _ in range(args.workers):
        read_fd, write_fd = os.pipe()
        try:
            child = _Child(_spawn(args, sock, write_fd), time.monotonic())
        finally:
            os.close(write_fd)
        children.append(child)
        waiting[read_fd] = child
    deadline = time.monotonic() + START_SECONDS
    try:
        while waiting:
            if stop.is_set():
                return False
            if time.monotonic() > deadline:
                print("error: the API processes did not start in time", file=sys.stderr)
                return False
            readable, _, _ = select.select(list(waiting), [], [], POLL_SECONDS)
            for fd in readable:
                child = waiting.pop(fd)
                if not os.read(fd, 1):  # closed without a word: it died
                    code = child.proc.wait()
                    print(f"error: an API process exited at start with {code}", file=sys.stderr)
                    return False
                os.close(fd)
        return True
    finally:
        for fd in waiting:
            os.close(fd)


def _supervise(
    args: argparse.Namespace,
    sock: socket.socket,
    ctx: Any,
    children: list[_Child],
    supervisor: Any,
    stop: threading.Event,
    train: threading.Event,
) -> None:
    from .data import training

    next_pending_check = time.monotonic() + PENDING_POLL_SECONDS
    while not stop.wait(POLL_SECONDS):
        now = time.monotonic()
        if supervisor is not None and (train.is_set() or now >= next_pending_check):
            # Asked by an API process; or, now and then, in case one died before it could.
            asked = train.is_set()
            train.clear()
            next_pending_check = now + PENDING_POLL_SECONDS
            with contextlib.suppress(Exception):
                if asked or (supervisor.pid is None and training.has_pending(ctx.db)):
                    supervisor.ensure_started()
        for child in children:
            if child.restart_at is None:
                code = child.proc.poll()
                if code is None:
                    continue
                child.delay = restart_delay(now - child.started, child.delay)
                child.restart_at = now + child.delay
                log.error(
                    "API process %d exited with %s; starting another in %.1f s",
                    child.proc.pid,
                    code,
                    child.delay,
                )
            elif now >= child.restart_at and not stop.is_set():
                child.proc = _spawn(args, sock, -1)
                child.started, child.restart_at = now, None


def _stop_all(children: list[_Child]) -> None:
    """SIGTERM to every API process; wait for each to finish its requests in flight."""
    alive = [c.proc for c in children if c.proc.poll() is None]
    for proc in alive:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACEFUL_SECONDS + 10
    for proc in alive:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- an API process ------------------------------------------------------------------------


def run_api_process(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the inherited socket until SIGTERM or SIGINT, or until the parent is gone."""
    from .app import build_context
    from .memory import return_large_blocks

    parent, sock_fd, ready_fd = (int(part) for part in args.api_process.split(":"))
    _term_when_orphaned()
    return_large_blocks()
    ctx = build_context(settings, create=False)  # the parent made the database
    if not args.no_worker:
        # The parent owns the training worker: tell it a training was queued.
        ctx.ml.on_queued = lambda: _signal_parent(parent)
    server = uvicorn_server(create_app_for(settings, ctx), args, ACCEPT_BATCH)
    sock = _Inherited(fileno=sock_fd)

    async def beside() -> None:
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.01)
        if ready_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(ready_fd, b"1")
            os.close(ready_fd)
        while not server.should_exit:
            if os.getppid() != parent:  # the parent was killed: stop as on SIGTERM
                server.should_exit = True
            await asyncio.sleep(1.0)

    try:
        asyncio.run(run_server(server, sock, beside()))
    finally:
        sock.close()
        ctx.db.dispose()
    return 0


def _term_when_orphaned() -> None:
    """Linux: SIGTERM this process as soon as its parent dies (prctl PR_SET_PDEATHSIG),
    so that it stops accepting on the port at once; elsewhere, the once-a-second look
    at the parent's pid in ``run_api_process`` does it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Inherited(socket.socket):
    """The parent's listening socket, already listening (serving._bind). asyncio calls
    ``listen`` again with the count of connections it accepts at one wake-up, which on
    this shared socket would shrink the queue every process shares: not here."""

    def listen(self, _backlog: int = 0, /) -> None:
        return None


def _signal_parent(parent: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(parent, signal.SIGUSR1)
