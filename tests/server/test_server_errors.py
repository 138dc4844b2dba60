"""Issue 20 item 5, errors a client can act on: every error body is JSON with a
``detail``; every answer carries ``X-Request-ID`` (the client's own when sane); the
connection stays usable after a 4xx or a 5xx; the server log has one line per failure
naming the request id, method, path and status (a crash with its traceback), and never
the token. A crash is a real fault: a table renamed away under the running server."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import httpx

from .helpers import b64, image_bytes

RID = re.compile(r"[0-9a-f]{32}")


def _local_port(r: httpx.Response) -> int:
    """The client's port of the connection that carried `r` (same port: same
    connection)."""
    stream = r.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def test_errors_have_json_detail_a_request_id_and_keep_the_connection(
    server_factory, tmp_path: Path
) -> None:
    db = tmp_path / "crash.db"
    server = server_factory(database_url=f"sqlite:///{db}")
    account = server.new_account()
    answers: list[httpx.Response] = []
    with account.client() as api:
        first = api.get("task/")
        assert first.status_code == 200 and RID.fullmatch(first.headers["x-request-id"])
        port = _local_port(first)
        errors = [
            ("GET", "no-such-route/", {}, 404),
            ("PUT", "task/", {}, 405),
            ("POST", "task/", {"json": {"type": "multi_class"}}, 400),
            (
                "POST",
                "task/",
                {"content": b"{oops", "headers": {"content-type": "application/json"}},
                400,
            ),
            ("POST", "task/", {"content": b"x", "headers": {"content-type": "text/plain"}}, 415),
            ("GET", "task/", {"headers": {"Authorization": "Token wrong-token"}}, 401),
            ("GET", "label/", {"params": {"search": "a\x00"}}, 400),
            ("POST", "training-image/", {"json": {"base64": b64(b"no image")}}, 400),
        ]
        for method, path, kwargs, status in errors:
            r = api.request(method, path, **kwargs)
            assert r.status_code == status, (method, path, r.text)
            assert r.headers["content-type"] == "application/json", (method, path)
            assert isinstance(r.json()["detail"], str) and r.json()["detail"], (path, r.text)
            assert RID.fullmatch(r.headers["x-request-id"])
            answers.append(r)
            good = api.get("task/")
            assert good.status_code == 200
            assert _local_port(good) == port, f"the connection was closed after {method} {path}"

        # A crash: the labels table renamed away under the running server.
        with sqlite3.connect(db) as con:
            con.execute("ALTER TABLE labels RENAME TO labels_gone")
        crash = api.get("label/")
        assert crash.status_code == 500
        rid = crash.headers["x-request-id"]
        assert crash.json() == {
            "detail": f"Internal server error (request {rid}).",
            "request_id": rid,
        }
        assert "Traceback" not in crash.text and "labels" not in crash.text
        after = api.get("task/")
        assert after.status_code == 200 and _local_port(after) == port
        answers.append(crash)

    log = server.log_text()
    for r in answers:
        rid = r.headers["x-request-id"]
        lines = [line for line in log.splitlines() if rid in line]
        assert len(lines) == 1, (rid, lines)
        line = lines[0]
        assert f"{r.request.method} {r.request.url.path}" in line and f"-> {r.status_code}" in line
        assert line.startswith("INFO:" if r.status_code < 500 else "ERROR:"), line
    crash_at = log.index(crash.headers["x-request-id"])
    assert "Traceback (most recent call last)" in log[crash_at:]
    assert "no such table: labels" in log[crash_at:]
    assert account.token not in log and "wrong-token" not in log


def test_request_ids_are_honoured_when_sane(live_server) -> None:
    account = live_server.new_account()
    with account.client() as api:
        r = api.get("task/", headers={"X-Request-ID": "client-42.a:b"})
        assert r.headers["x-request-id"] == "client-42.a:b"
        r = api.get("nothing-here/", headers={"X-Request-ID": "abc-1"})
        assert r.status_code == 404 and r.headers["x-request-id"] == "abc-1"
        for insane in ("has space", "x" * 129, "semi;colon", ""):
            r = api.get("task/", headers={"X-Request-ID": insane})
            assert RID.fullmatch(r.headers["x-request-id"]), insane
        # Two requests, two ids; the web interface and the media routes have them too.
        ids = {api.get("task/").headers["x-request-id"] for _ in range(2)}
        assert len(ids) == 2
    assert RID.fullmatch(httpx.get(live_server.url + "openapi.json").headers["x-request-id"])
    assert RID.fullmatch(httpx.get(live_server.url + "media/x/y.jpg").headers["x-request-id"])


def test_a_non_ascii_token_is_a_clear_401(live_server) -> None:
    for raw in ("Token caf\u00e9".encode(), "Token caf\u00e9".encode("latin-1"), b"Token \xff\xfe"):
        r = httpx.get(live_server.url + "recognition/v2/task/", headers={"Authorization": raw})
        assert r.status_code == 401, r.text
        # DRF's words for a token that is not ASCII (test_server_accounts.py).
        assert r.json()["detail"] == (
            "Invalid token header. Token string should not contain invalid characters."
        ), r.text
        r = httpx.post(
            live_server.url + "recognition/v2/training-image/",
            headers={"Authorization": raw},
            json={"base64": b64(image_bytes(1))},
        )
        assert r.status_code == 401, r.text
    assert "UnicodeEncodeError" not in live_server.log_text()


def test_answers_of_the_middleware_have_detail_id_and_the_classify_envelope(
    server_factory,
) -> None:
    """413 (body limit) and 400 (NUL in a query) are answered before the routes; they are
    shaped like every other error."""
    server = server_factory("--max-body-mb", "0.01")
    account = server.new_account()
    with account.client() as api:
        r = api.post("classify/", json={"task_id": "x", "records": [{"_base64": "A" * 20_000}]})
        assert r.status_code == 413
        body = r.json()
        assert "too large" in body["detail"] and body["status"]["code"] == 413
        assert body["status"]["request_id"] == r.headers["x-request-id"]
        r = api.post("task/", json={"name": "A" * 20_000})
        assert r.status_code == 413 and "status" not in r.json()
        assert RID.fullmatch(r.headers["x-request-id"])
    with account.client() as api:
        r = api.get("label/", params={"search": "\x00"})
        assert r.status_code == 400
        assert r.json()["detail"] == "search: Null characters are not allowed."
        assert RID.fullmatch(r.headers["x-request-id"])
