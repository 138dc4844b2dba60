"""``localrepo-server serve``: run the HTTP server, on settings the command line
(server/cli.py) has read and checked.

It binds the socket itself (TCP_NODELAY; port 0 picks a free one) and hands it to
uvicorn with the app (server/app.py); once listening it prints the URL (with ``--dev``,
a new token for the dev user) and writes the ``--ready-file``; unless ``--no-worker`` it
starts and supervises the training worker (server/ml/worker.py). Before it listens,
it makes the data folder private (datadir.make_private) and sweeps it (server/fsck.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from .config import Settings
from .data import accounts

log = logging.getLogger("localrepo.server")


GRACEFUL_SECONDS = 30


def _graceful_server_class() -> Any:
    import uvicorn

    class GracefulServer(uvicorn.Server):  # type: ignore[misc]
        """uvicorn, minus one step: after a graceful shutdown on SIGTERM or SIGINT it
        raises the signal again, which ends the process before ``serve`` stops the
        training worker and closes the database; here ``serve`` returns 0 instead."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return GracefulServer


def _write_ready_file(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it small responses wait ~40 ms for
    # delayed ACKs (Nagle), as asyncio does not set it on a socket handed to it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _log_to_stderr(level: str) -> None:
    """The server's own lines (one per failed request: server/requestids.py) beside
    uvicorn's, in its format."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run until stopped; `settings` are `args` read and checked (server/cli.py)."""
    import uvicorn

    _log_to_stderr(args.log_level)
    from .app import build_context, create_app
    from .datadir import make_private
    from .fsck import sweep_at_start
    from .memory import return_large_blocks

    return_large_blocks()
    make_private(settings)
    ctx = build_context(settings)
    sweep_at_start(ctx.db, ctx.blobs)
    token: str | None = None
    if args.dev:
        accounts.ensure_user(ctx.db, args.dev_user)
        token = accounts.create_token(ctx.db, args.dev_user, name="serve --dev").token
    app = create_app(settings, ctx)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    host_for_url = f"[{args.host}]" if ":" in args.host else args.host
    if host_for_url in ("0.0.0.0", "[::]"):
        host_for_url = "127.0.0.1"
    url = f"http://{host_for_url}:{port}/"
    config_kwargs: dict[str, Any] = {
        "log_level": args.log_level,
        "access_log": not args.no_access_log,
        "timeout_keep_alive": 30,
        # SIGTERM: stop accepting, let requests in flight finish (docs/server.md).
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "server_header": False,
    }
    if args.forwarded_allow_ips:
        config_kwargs["forwarded_allow_ips"] = args.forwarded_allow_ips
        config_kwargs["proxy_headers"] = True
    else:
        config_kwargs["proxy_headers"] = False
    config = uvicorn.Config(app, **config_kwargs)
    server = _graceful_server_class()(config)
    supervisor = None if args.no_worker else _start_worker(ctx, settings)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.01)
        if token is not None:
            print(f"localrepo-server: dev user {args.dev_user!r}, token: {token}", flush=True)
        print(f"localrepo-server: training backend: {ctx.ml.backends.describe()}", flush=True)
        print(f"localrepo-server: listening on {url}", flush=True)
        if args.ready_file is not None:
            payload: dict[str, Any] = {"url": url, "port": port, "pid": os.getpid()}
            if token is not None:
                payload["token"] = token
                payload["user"] = args.dev_user
            _write_ready_file(args.ready_file, payload)

    async def main() -> None:
        waiter = asyncio.create_task(announce())
        try:
            await server.serve(sockets=[sock])
        finally:
            waiter.cancel()

    try:
        asyncio.run(main())
    finally:
        if supervisor is not None:
            supervisor.stop()
        sock.close()
        ctx.db.dispose()
    return 0


def _start_worker(ctx: Any, settings: Settings) -> Any:
    from .data import training
    from .ml.worker import WorkerSupervisor, requeue_abandoned, worker_argv

    requeued = requeue_abandoned(ctx.db)
    if requeued:
        log.warning("requeued %d interrupted training job(s)", requeued)
    supervisor = WorkerSupervisor(
        ctx.db,
        worker_argv(
            settings.data_dir,
            settings.database_url,
            settings.feature_backend,
            settings.min_images_per_label,
            settings.torch_threads,
            settings.train_delay,
            settings.train_step_delay,
            storage=settings.storage_url,
        ),
    )
    ctx.ml.on_queued = supervisor.ensure_started
    if training.has_pending(ctx.db):
        supervisor.ensure_started()
    return supervisor
