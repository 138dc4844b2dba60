"""Authentication failures, and the token never showing up in messages, logs or reprs."""

from __future__ import annotations

import logging
import socket
import traceback

import httpx
import pytest

from localrepo.errors import EXIT_AUTH
from localrepo.remote.client import RecognitionClient
from localrepo.remote.errors import AuthError, RemoteError

from .conftest import FAST, MakeClient
from .faults import FaultTransport
from .images import jpeg

SECRET = "s3cr3t-t0ken-that-must-never-leak-0123456789"


def test_wrong_token_is_auth_error(make_client: MakeClient) -> None:
    client = make_client(token=SECRET)
    with pytest.raises(AuthError) as err:
        client.list_tasks()
    assert err.value.exit_code == EXIT_AUTH and err.value.status == 401
    message = str(err.value)
    assert "GET task/" in message and "repo login" in message and "token" in message
    assert SECRET not in message


def test_403_is_auth_error(fclient: RecognitionClient, faults: FaultTransport) -> None:
    faults.answer(403, path="/label/")
    with pytest.raises(AuthError) as err:
        fclient.list_labels()
    assert err.value.exit_code == EXIT_AUTH
    assert len(faults.calls(path="/label/")) == 1  # never retried


def test_repr_has_no_token(account: object) -> None:
    client = RecognitionClient(account.url, SECRET)  # type: ignore[attr-defined]
    with client:
        assert SECRET not in repr(client) and SECRET not in str(client)
        assert account.url in repr(client)  # type: ignore[attr-defined]


def test_empty_token_is_refused(account: object) -> None:
    from localrepo.errors import LocalrepoError

    with pytest.raises(LocalrepoError) as err:
        RecognitionClient(account.url, "  ")  # type: ignore[attr-defined]
    assert err.value.exit_code == EXIT_AUTH


def test_token_never_in_messages_or_logs(
    account: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Drive every kind of failure with a token-bearing client and grep all that comes
    out (messages, reprs, tracebacks, log records) for the token."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    def collect(exc: BaseException) -> None:
        texts.append(str(exc))
        texts.append(repr(exc))
        texts.append("".join(traceback.format_exception(exc)))

    # A token the server does not know (401), echoed in a server's error body.
    faults = FaultTransport()
    with RecognitionClient(account.url, SECRET, transport=faults, **FAST) as bad:  # type: ignore[attr-defined]
        for call in (bad.list_tasks, bad.list_workspaces, lambda: bad.upload_image(jpeg(1))):
            with pytest.raises(AuthError) as err:
                call()
            collect(err.value)
        texts.append(repr(bad))

    def echo(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        # A misbehaving server that quotes the header back in its error.
        return httpx.Response(
            400, json={"detail": f"bad header {request.headers['authorization']}"}, request=request
        )

    real = account.token  # type: ignore[attr-defined]
    echoing = FaultTransport()
    echoing.hooks.append(echo)
    with RecognitionClient(account.url, real, transport=echoing, **FAST) as client:  # type: ignore[attr-defined]
        with pytest.raises(RemoteError) as err:
            client.list_labels()
        collect(err.value)
        assert real not in str(err.value) and "***" in str(err.value)
        assert real not in str(err.value.body) and real not in str(err.value.detail)

    # Lost answers, retries exhausted, an unreachable server.
    faults = FaultTransport()
    faults.fail(httpx.ReadTimeout, times=100)
    with RecognitionClient(account.url, SECRET, transport=faults, **FAST) as lost:  # type: ignore[attr-defined]
        for call in (lost.list_tasks, lambda: lost.create_label("x")):
            with pytest.raises(RemoteError) as err:
                call()
            collect(err.value)
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with RecognitionClient(f"http://127.0.0.1:{port}/", SECRET, **FAST) as down:
        with pytest.raises(RemoteError) as err:
            down.get_task("00000000-0000-4000-8000-000000000000")
        collect(err.value)

    texts.extend(r.getMessage() for r in caplog.records)
    texts.extend(str(r.__dict__) for r in caplog.records)
    assert texts and caplog.records
    for text in texts:
        assert SECRET not in text
        assert real not in text
