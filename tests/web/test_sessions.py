"""Sign-in, sessions and CSRF over plain HTTP (httpx) against the real server: what a
browser relies on, asserted on the wire (tests/web/test_browser.py drives a browser)."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from .webhelp import (
    SESSION_COOKIE,
    WebUser,
    hidden,
    new_web_user,
    page_csrf,
    sign_in,
    sign_in_form,
    signed_in_client,
    web_client,
)


def set_cookie_header(answer: httpx.Response, name: str) -> SimpleCookie:
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(header)
            return cookie
    raise AssertionError(f"no Set-Cookie for {name}: {answer.headers}")


def test_root_and_pages_without_a_session_go_to_sign_in_with_next(live_server: Any) -> None:
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as client:
        root = client.get("/")
        assert root.status_code == 303 and root.headers["location"] == "/web/"
        home = client.get("/web/")
        assert home.status_code == 303 and home.headers["location"] == "/web/sign-in"
        deep = client.get("/web/", params={"x": "1"})
        assert deep.headers["location"] == "/web/sign-in?next=%2Fweb%2F%3Fx%3D1"
        htmx = client.get("/web/", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/web/sign-in"


def test_sign_in_lands_on_next_and_sets_a_safe_cookie(live_server: Any, web_user: WebUser) -> None:
    with web_client(web_user) as client:
        answer = sign_in(client, web_user, next_path="/web/?tab=2")
        assert answer.status_code == 303 and answer.headers["location"] == "/web/?tab=2"
        morsel = set_cookie_header(answer, SESSION_COOKIE)[SESSION_COOKIE]
        assert morsel["httponly"] and morsel["samesite"].lower() == "lax"
        assert morsel["path"] == "/" and not morsel["secure"]  # plain HTTP here
        assert int(morsel["max-age"]) > 0
        home = client.get("/web/")
        assert home.status_code == 200 and web_user.username in home.text
        assert "Default" in home.text
        assert home.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in home.headers["content-security-policy"]


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", ""],
)
def test_sign_in_never_redirects_off_the_server(
    live_server: Any, web_user: WebUser, next_path: str
) -> None:
    with web_client(web_user) as client:
        answer = sign_in(client, web_user, next_path=next_path)
        assert answer.status_code == 303 and answer.headers["location"] == "/web/"


def test_the_cookies_are_secure_behind_a_tls_proxy(server_factory: Any) -> None:
    server = server_factory("--forwarded-allow-ips", "127.0.0.1")
    user = new_web_user(server)
    https = {"X-Forwarded-Proto": "https"}
    # httpx (rightly) keeps Secure cookies from plain HTTP: the cookie goes by hand.
    with httpx.Client(base_url=server.url, headers=https, follow_redirects=False) as client:
        form = client.get("/web/sign-in")
        form_cookie = set_cookie_header(form, "localrepo_sign_in")["localrepo_sign_in"]
        assert form_cookie["secure"] and form_cookie["httponly"]
        answer = client.post(
            "/web/sign-in",
            data={
                "csrf_token": hidden(form.text, "csrf_token"),
                "username": user.username,
                "password": user.password,
            },
            headers={"Cookie": f"localrepo_sign_in={form_cookie.value}"},
        )
        assert answer.status_code == 303, answer.text
        assert set_cookie_header(answer, SESSION_COOKIE)[SESSION_COOKIE]["secure"]


def test_a_wrong_password_or_unknown_user_is_refused_next_to_the_field(
    live_server: Any, web_user: WebUser
) -> None:
    with web_client(web_user) as client:
        wrong = sign_in(client, web_user, password="not the password")
        ghost = sign_in(client, WebUser("nobody-here", "whatever1", "", web_user.url))
        for answer in (wrong, ghost):
            assert answer.status_code == 401
            assert 'id="password-error"' in answer.text
            assert "Wrong user name or password." in answer.text
            assert "aria-invalid=true aria-describedby=password-error" in answer.text
            assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
        assert "not the password" not in wrong.text  # never echoed back
        assert client.get("/web/").status_code == 303
        empty = client.post(
            "/web/sign-in", data={"csrf_token": sign_in_form(client), "username": ""}
        )
        assert empty.status_code == 400
        assert 'id="username-error"' in empty.text and 'id="password-error"' in empty.text
    assert "not the password" not in live_server.log_text()


def test_the_sign_in_form_needs_its_own_token(live_server: Any, web_user: WebUser) -> None:
    with web_client(web_user) as client:
        fields = {"username": web_user.username, "password": web_user.password}
        no_token = client.post("/web/sign-in", data=fields)
        sign_in_form(client)  # the cookie half, without the form's half
        wrong = client.post("/web/sign-in", data={**fields, "csrf_token": "forged"})
        for answer in (no_token, wrong):
            assert answer.status_code == 403
            assert "sign in again" in answer.text and "Traceback" not in answer.text
        assert client.get("/web/").status_code == 303


def test_a_post_without_the_session_token_is_refused_with_a_page(
    live_server: Any, web_user: WebUser
) -> None:
    with signed_in_client(web_user) as client:
        for data in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
            refused = client.post("/web/sign-out", data=data)
            assert refused.status_code == 403
            assert refused.headers["content-type"].startswith("text/html")
            assert "security token" in refused.text and "Traceback" not in refused.text
        refused = client.post("/web/sign-out", headers={"X-CSRF-Token": "forged"})
        assert refused.status_code == 403
        assert client.get("/web/").status_code == 200  # still signed in
        # Another user's token is not this session's.
        with signed_in_client(new_web_user(live_server)) as other:
            foreign = page_csrf(other)
        assert client.post("/web/sign-out", data={"csrf_token": foreign}).status_code == 403
        # htmx sends the token as a header (hx-headers on the body).
        token = page_csrf(client)
        out = client.post("/web/sign-out", headers={"X-CSRF-Token": token})
        assert out.status_code == 303 and out.headers["location"].startswith("/web/sign-in")


def test_sign_out_ends_the_session_on_the_server(live_server: Any, web_user: WebUser) -> None:
    with signed_in_client(web_user) as client:
        old = client.cookies[SESSION_COOKIE]
        out = client.post("/web/sign-out", data={"csrf_token": page_csrf(client)})
        assert out.status_code == 303
        assert set_cookie_header(out, SESSION_COOKIE)[SESSION_COOKIE]["max-age"] == "0"
    with web_client(web_user) as replay:
        replay.cookies.set(SESSION_COOKIE, old)
        assert replay.get("/web/").status_code == 303  # the old cookie is worth nothing


def test_signing_in_makes_a_new_session_id(live_server: Any, web_user: WebUser) -> None:
    """No session fixation: a session id the browser came with (planted, or another
    user's) is never the signed-in one, and it ends."""
    other = new_web_user(live_server)
    with signed_in_client(other) as planted_by:
        planted = planted_by.cookies[SESSION_COOKIE]
    with web_client(web_user) as client:
        client.cookies.set(SESSION_COOKIE, planted)
        assert client.get("/web/").status_code == 200  # signed in as `other` so far
        client.cookies.set(SESSION_COOKIE, planted)
        answer = sign_in(client, web_user)
        assert answer.status_code == 303
        fresh = set_cookie_header(answer, SESSION_COOKIE)[SESSION_COOKIE].value
        assert fresh and fresh != planted
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, fresh)
        home = client.get("/web/")
        assert web_user.username in home.text and other.username not in home.text
    with web_client(web_user) as replay:
        replay.cookies.set(SESSION_COOKIE, planted)
        assert replay.get("/web/").status_code == 303


def test_the_web_session_does_not_authorise_the_api(live_server: Any, web_user: WebUser) -> None:
    with signed_in_client(web_user) as client:
        answer = client.get("/recognition/v2/task/")
        assert answer.status_code == 401
        assert answer.json() == {"detail": "Authentication credentials were not provided."}
    with httpx.Client(base_url=live_server.api_url) as api:
        ok = api.get("task/", headers={"Authorization": f"Token {web_user.token}"})
        assert ok.status_code == 200


def test_sign_in_attempts_are_rate_limited(live_server: Any, web_user: WebUser) -> None:
    with web_client(web_user) as client:
        codes = [sign_in(client, web_user, password="guess-guess").status_code for _ in range(10)]
        assert codes == [401] * 10
        limited = sign_in(client, web_user)  # even the right password, for now
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in limited.text
    with web_client(web_user) as other_user:  # another name from the same address
        assert sign_in(other_user, new_web_user(live_server)).status_code == 303


def test_web_errors_are_pages_and_api_errors_stay_json(live_server: Any) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        page = client.get("/web/no-such-page")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        method = client.get("/web/sign-out")
        assert method.status_code == 405 and "<html" in method.text
        api = client.get("/recognition/v2/no-such-thing/")
        assert api.status_code == 404 and api.json() == {"detail": "Not found."}


def test_the_sign_in_limiter_forgets_refilled_buckets() -> None:
    """Sign-in keys come from the client (any user name): the limiter's table stays
    bounded by forgetting buckets that are full again, and keeps the others."""
    from localrepo.server.context import TokenBucketLimiter

    refills_at_once = TokenBucketLimiter(rate=1e12, burst=1, max_keys=3)
    for name in ("a", "b", "c", "d", "e"):
        assert refills_at_once.check(name) == 0
    assert len(refills_at_once._buckets) <= 3
    never_refills = TokenBucketLimiter(rate=1e-9, burst=1, max_keys=3)
    for name in ("a", "b", "c", "d"):
        assert never_refills.check(name) == 0
    assert never_refills.check("a") > 0  # still limited: its bucket was kept


def test_an_expired_session_opens_nothing(live_server: Any, web_user: WebUser) -> None:
    from sqlalchemy import text

    from localrepo.server.data.db import Database
    from localrepo.server.web.security import secret_hash

    with signed_in_client(web_user) as client:
        assert client.get("/web/").status_code == 200
        db = Database(live_server.database_url)
        try:
            with db.write() as session:  # its expiry, moved to the past
                session.execute(
                    text("UPDATE web_sessions SET expires = :past WHERE id_hash = :h"),
                    {
                        "past": "2000-01-01T00:00:00.000000Z",
                        "h": secret_hash(client.cookies[SESSION_COOKIE]),
                    },
                )
        finally:
            db.dispose()
        answer = client.get("/web/")
        assert answer.status_code == 303 and answer.headers["location"] == "/web/sign-in"
