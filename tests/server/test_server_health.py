"""Health, readiness and graceful shutdown (issue 22, item 1), against real servers: on
SQLite, and on PostgreSQL whose database is dropped under the running server."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import httpx
import psycopg
from support.waiting import limit

from .helpers import image_bytes, upload


def test_healthz_and_readyz_need_no_token_and_say_nothing_of_accounts(live_server) -> None:
    r = httpx.get(live_server.url + "healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = httpx.get(live_server.url + "readyz")
    assert (r.status_code, r.json()) == (
        200,
        {"status": "ready", "database": "ok", "storage": "ok"},
    )


def test_readyz_is_503_when_the_blob_folder_cannot_be_written(server_factory) -> None:
    server = server_factory()
    account = server.new_account()
    with account.client() as api:
        upload(api, image_bytes(8001))  # the blob folder exists
    blobs = server.data_dir / "blobs"
    aside = server.data_dir / "blobs-aside"
    blobs.rename(aside)
    try:
        r = httpx.get(server.url + "readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "not ready", "database": "ok", "storage": "not writable"}
        assert httpx.get(server.url + "healthz").status_code == 200  # alive, not ready
    finally:
        aside.rename(blobs)
    assert httpx.get(server.url + "readyz").status_code == 200


def test_readyz_is_503_when_the_database_is_gone(server_factory, postgres: Any) -> None:
    url = postgres.new_database()
    server = server_factory(database_url=url)
    assert httpx.get(server.url + "readyz").status_code == 200
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    r = httpx.get(server.url + "readyz", timeout=limit(30))
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready" and body["database"].startswith("unavailable (")
    assert "postgres" not in body["database"] and name not in body["database"]


def test_sigterm_lets_the_request_in_flight_finish(server_factory) -> None:
    server = server_factory("--latency-ms", "1500")
    account = server.new_account()
    answers: list[httpx.Response] = []

    def slow_request() -> None:
        with httpx.Client(headers=account.headers, timeout=limit(30)) as client:
            answers.append(client.get(account.api_url + "task/"))

    started = threading.Thread(target=slow_request)
    started.start()
    # The request is in flight (held by the 1.5 s latency) when the signal comes.
    threading.Event().wait(0.5)
    assert server.pid is not None
    os.kill(server.pid, signal.SIGTERM)
    started.join(limit(30))
    assert [r.status_code for r in answers] == [200]
    proc = server._proc
    assert proc is not None and proc.wait(limit(30)) == 0
