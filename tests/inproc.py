"""The sync engine in-process, against a real server: what `repo sync --force` does,
without a subprocess (the simulation and the remote-oddity tests run hundreds of syncs)."""

from __future__ import annotations

import functools
import logging
import ssl
from pathlib import Path

import httpx

from localrepo.remote.client import RecognitionClient
from localrepo.repository import Repository
from localrepo.sync.engine import Engine, SyncOptions, SyncReport


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA store costs ~90 ms per client: once per process is enough here.
    return ssl.create_default_context()


def sim_client(url: str, token: str, jobs: int = 1) -> RecognitionClient:
    """A client with a short read timeout and quick retries, `jobs` requests at a time."""
    logging.getLogger("stamina").setLevel(logging.ERROR)  # a line per retry otherwise
    return RecognitionClient(
        url,
        token,
        transport=httpx.HTTPTransport(verify=_ssl_context()),
        concurrency=jobs,
        timeout=3.0,  # read timeout: the proxy's `stall` fault (3.2 s) outlasts it
        retry_attempts=4,
        retry_timeout=8.0,
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
) -> SyncReport:
    """One sync of the repository at `root`, in-process (what `repo sync --force` does;
    with `remote_view` "catalog", what the watcher's push of local changes does)."""
    client = sim_client(url, token, jobs)
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
