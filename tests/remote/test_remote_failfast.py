"""A connection that waiting cannot fix fails at once, naming the URL and what to check
(issue 18, item 3): a refused port, an unknown host name; once the server has answered,
a refused connection is a restart and is retried like any connection error."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from localrepo.errors import EXIT_UNREACHABLE
from localrepo.remote.client import RecognitionClient
from localrepo.remote.errors import RemoteUnavailableError

from .conftest import FAST

SLOW = dict(FAST, retry_attempts=6, retry_wait_initial=2.0, retry_wait_max=2.0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_not_retried() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    start = time.monotonic()
    client = RecognitionClient(url, "tok-abc", **SLOW)  # type: ignore[arg-type]
    with client, pytest.raises(RemoteUnavailableError) as err:
        client.list_tasks()
    assert time.monotonic() - start < 1.5  # no 2 s backoff was waited
    text = str(err.value)
    assert err.value.exit_code == EXIT_UNREACHABLE
    assert url in text and "connection refused" in text and "repo remote show" in text
    assert "GET task/" in text and "tok-abc" not in text


def test_an_unknown_host_is_not_retried() -> None:
    start = time.monotonic()
    client = RecognitionClient("http://nothing-here.invalid:8000", "tok", **SLOW)  # type: ignore[arg-type]
    with client, pytest.raises(RemoteUnavailableError) as err:
        client.list_tasks()
    assert time.monotonic() - start < 3
    assert "http://nothing-here.invalid:8000/" in str(err.value)
    assert "'nothing-here.invalid' is not known" in str(err.value)


def test_a_refused_connection_after_an_answer_is_retried(server_factory: Any) -> None:
    server = server_factory()
    account = server.new_account()
    with RecognitionClient(account.url, account.token, **FAST) as client:  # type: ignore[arg-type]
        assert client.list_tasks() == []
        server.stop()
        with pytest.raises(RemoteUnavailableError) as err:
            client.list_tasks()
    assert "gave up after 4 attempts" in str(err.value), err.value
    assert "cannot connect" in str(err.value)
