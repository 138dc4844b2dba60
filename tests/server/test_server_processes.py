"""``serve --workers N`` (issue 22, item 1): several API processes on one PostgreSQL
database, against real servers. Which process answers a connection is the kernel's
choice; to ask one process in particular, the test stops (SIGSTOP) the others, so that
only it accepts the next connection. Every request here is on a connection of its own."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.waiting import limit, until
from web.webhelp import hidden, new_web_user, signed_in_client

from localrepo.server.cli import main

from .helpers import b64, image_bytes
from .trainhelp import multi_class_task, train


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except FileNotFoundError:
        return []


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def api_processes(server: Any) -> list[int]:
    return sorted(p for p in child_pids(server.pid) if "--api-process" in cmdline(p))


@contextmanager
def only(server: Any, pid: int) -> Iterator[None]:
    """Every new connection to `server` is accepted by its API process `pid` (the
    others are stopped meanwhile)."""
    others = [p for p in api_processes(server) if p != pid]
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def status(server: Any, token: str, path: str = "task/") -> int:
    headers = {"Authorization": f"Token {token}"}
    return httpx.get(server.api_url + path, headers=headers, timeout=limit(30)).status_code


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory, postgres: Any) -> Iterator[Any]:
    """One server of two API processes, for the tests that leave it running."""
    from conftest import LiveServer

    server = LiveServer(
        tmp_path_factory.mktemp("two-processes") / "data",
        extra_args=["--workers", "2", "--backend", "handcrafted"],
        database_url=postgres.new_database(),
    )
    server.start()
    yield server
    server.stop()


def test_several_processes_need_postgresql(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("LOCALREPO_SERVER_DATABASE_URL", raising=False)
    assert main(["serve", "--workers", "2", "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "--workers 2 needs PostgreSQL" in err and "--database-url" in err
    assert not (tmp_path / "data").exists()  # refused before anything was made
    assert main(["serve", "--workers", "0", "--data", str(tmp_path / "data")]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_a_revoked_token_is_refused_by_every_process(two_processes: Any) -> None:
    server = two_processes
    user = new_web_user(server)
    pids = api_processes(server)
    assert len(pids) == 2
    for pid in pids:  # each process has checked the token, and trusts it for 2 s
        with only(server, pid):
            assert status(server, user.token) == 200
    with signed_in_client(user) as client:  # one request, to one of them
        page = client.get("/web/account").text
        action = page.split('action="/web/account/tokens/')[1].split('"')[0]
        done = client.post(
            "/web/account/tokens/" + action, data={"csrf_token": hidden(page, "csrf_token")}
        )
        assert done.status_code == 303
    for pid in pids:
        with only(server, pid):
            assert status(server, user.token) == 401
    # Revoked by another process altogether: `localrepo-server token revoke`.
    account = server.new_account()
    for pid in pids:
        with only(server, pid):
            assert status(server, account.token) == 200
    token_id = server.run_cli("token", "list", account.username).stdout.split()[0]
    server.run_cli("token", "revoke", token_id)
    for pid in pids:
        with only(server, pid):
            assert status(server, account.token) == 401


def test_a_killed_process_is_replaced_and_the_service_keeps_answering(two_processes: Any) -> None:
    server = two_processes
    account = server.new_account()
    victim, survivor = api_processes(server)
    os.kill(victim, signal.SIGKILL)
    assert [status(server, account.token) for _ in range(6)] == [200] * 6

    def replaced() -> list[int] | None:
        pids = api_processes(server)
        return pids if len(pids) == 2 and victim not in pids else None

    now = until(replaced, what="a new API process in place of the killed one")
    [new] = [p for p in now if p != survivor]
    with only(server, new):
        assert status(server, account.token) == 200
    assert server.running


def test_the_parent_runs_the_one_training_worker(two_processes: Any) -> None:
    server = two_processes
    account = server.new_account()
    with account.client() as api:
        task, _ = multi_class_task(api, per_label=5)
        model = train(api, task["id"])  # queued by whichever API process answered
    assert model["train_status"] == "TRAINED"
    workers = [p for p in child_pids(server.pid) if "worker" in cmdline(p)[3:4]]
    assert len(workers) == 1
    for pid in api_processes(server):
        assert child_pids(pid) == []


def test_a_rate_limit_holds_in_total_across_processes_and_they_end_with_their_parent(
    server_factory: Any, postgres: Any
) -> None:
    # One request an hour per token: each process alone would let one through.
    server = server_factory(
        "--workers", "2", "--rate-limit", "1/h", database_url=postgres.new_database()
    )
    account, other = server.new_account(), server.new_account()
    first, second = api_processes(server)
    with only(server, first):
        assert status(server, account.token) == 200
    with only(server, second):
        answer = httpx.get(server.api_url + "task/", headers=account.headers, timeout=limit(30))
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) > 3000
        assert status(server, other.token) == 200  # per token
    with only(server, first):
        assert status(server, other.token) == 429
    # The parent killed: its API processes stop by themselves, and the port is free.
    os.kill(server.pid, signal.SIGKILL)
    until(lambda: all(gone(p) for p in (first, second)), what="the orphaned API processes to end")
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "healthz", timeout=limit(10))


def test_sigterm_lets_an_upload_in_flight_finish_and_the_parent_exits_0(
    server_factory: Any, postgres: Any
) -> None:
    server = server_factory("--workers", "2", database_url=postgres.new_database())
    account = server.new_account()
    body = ('{"base64": "' + b64(image_bytes(9101)) + '"}').encode()
    sent_half = threading.Event()
    answers: list[httpx.Response] = []

    def slow_body() -> Iterator[bytes]:
        yield body[: len(body) // 2]
        sent_half.set()
        # The rest once both API processes have begun their graceful shutdown.
        until(lambda: server.log_text().count("Shutting down") >= 2, what="the shutdown")
        yield body[len(body) // 2 :]

    def upload() -> None:
        headers = {**account.headers, "Content-Type": "application/json"}
        with httpx.Client(timeout=limit(60)) as client:
            answers.append(
                client.post(
                    server.api_url + "training-image/", content=slow_body(), headers=headers
                )
            )

    uploading = threading.Thread(target=upload)
    uploading.start()
    assert sent_half.wait(limit(30))
    os.kill(server.pid, signal.SIGTERM)
    uploading.join(limit(60))
    assert [r.status_code for r in answers] == [201]
    proc = server._proc
    assert proc is not None and proc.wait(limit(60)) == 0
    assert api_processes(server) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "healthz", timeout=limit(10))
