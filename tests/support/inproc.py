"""The sync engine in-process, against a real server: what `repo sync --force` does,
without a subprocess (the simulation and the remote-oddity tests run hundreds of syncs)."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx

from localrepo.remote.client import RecognitionClient
from localrepo.repository import Repository
from localrepo.sync.engine import Engine, SyncOptions, SyncReport


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA store costs ~90 ms per client: once per process is enough here.
    return ssl.create_default_context()


class GatedTransport(httpx.BaseTransport):
    """Calls `gate()` before sending each request (the simulation's turn scheduler)."""

    def __init__(self, inner: httpx.BaseTransport, gate: Callable[[], None]) -> None:
        self.inner = inner
        self.gate = gate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.gate()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def sim_client(
    url: str, token: str, jobs: int = 1, gate: Callable[[], None] | None = None
) -> RecognitionClient:
    """A client with a short read timeout and quick retries, `jobs` requests at a time.
    With `gate`, each request first waits for it (see tests/sim/simturns.py)."""
    logging.getLogger("stamina").setLevel(logging.ERROR)  # a line per retry otherwise
    transport: httpx.BaseTransport = httpx.HTTPTransport(verify=_ssl_context())
    if gate is not None:
        transport = GatedTransport(transport, gate)
    return RecognitionClient(
        url,
        token,
        transport=transport,
        concurrency=jobs,
        timeout=3.0,  # read timeout: the proxy's `stall` fault (3.2 s) outlasts it
        retry_attempts=4,
        # A gated request may wait long for its turn; the retry budget must not run out
        # because of that (attempts still bound it), or a rerun could differ.
        retry_timeout=8.0 if gate is None else 600.0,
        retry_wait_initial=0.005,
        retry_wait_max=0.02,
        retry_wait_jitter=0.0,
        retry_after_max=0.05,
    )


def engine_sync(
    root: Path,
    url: str,
    token: str,
    policy: str = "manual",
    jobs: int = 1,
    remote_view: str = "listing",
    gate: Callable[[], None] | None = None,
) -> SyncReport:
    """One sync of the repository at `root`, in-process (what `repo sync --force` does;
    with `remote_view` "catalog", what the watcher's push of local changes does)."""
    client = sim_client(url, token, jobs, gate)
    try:
        options = SyncOptions(
            policy=policy,  # type: ignore[arg-type]
            force=True,
            jobs=jobs,
            remote_view=remote_view,
        )
        return Engine(Repository(root), client, options).run()
    finally:
        client.close()
