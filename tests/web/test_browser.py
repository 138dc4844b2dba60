"""The web interface in a real browser: Debian's Chromium through Playwright
(tests/web/conftest.py), against the real server. With LOCALREPO_SCREENSHOTS=1 these
tests also write the screenshots of docs/web.md (docs/web/*.png)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from .webhelp import SCREENSHOTS, SESSION_COOKIE, WebUser, screenshots_wanted


def shoot(page: Any, name: str) -> None:
    if screenshots_wanted():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def fill_sign_in(page: Any, username: str, password: str) -> None:
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_wrong_password_shows_the_error_next_to_the_field(page: Any, web_user: WebUser) -> None:
    page.goto("/web/sign-in")
    shoot(page, "sign-in")
    fill_sign_in(page, web_user.username, "not my password")
    password = page.get_by_label("Password")
    error = page.locator("#password-error")
    assert error.inner_text() == "Wrong user name or password."
    assert password.get_attribute("aria-invalid") == "true"
    assert password.get_attribute("aria-describedby") == "password-error"
    # Right under its field, not somewhere else on the page.
    field, message = password.bounding_box(), error.bounding_box()
    assert 0 <= message["y"] - (field["y"] + field["height"]) < 40
    assert page.get_by_label("User name").input_value() == web_user.username
    assert password.input_value() == ""  # never sent back
    assert urlsplit(page.url).path == "/web/sign-in"


def test_signing_in_lands_on_the_home_page(signed_in: Any, web_user: WebUser) -> None:
    page = signed_in
    assert urlsplit(page.url).path == "/web/"
    assert page.get_by_role("heading", name="Your workspaces").is_visible()
    assert page.get_by_role("cell", name="Default (default)").is_visible()
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Tasks", "Account"):
        assert nav.get_by_role("link", name=name).is_visible()
    assert nav.get_by_role("button", name="Sign out").is_visible()
    assert web_user.username in page.locator("footer").inner_text()
    shoot(page, "home")


def test_a_page_without_a_session_goes_to_sign_in_and_back(page: Any, web_user: WebUser) -> None:
    page.goto("/web/?from=bookmark")
    assert urlsplit(page.url).path == "/web/sign-in"
    fill_sign_in(page, web_user.username, web_user.password)
    page.wait_for_url(re.compile(r"/web/\?from=bookmark$"))
    assert page.get_by_role("heading", name="Your workspaces").is_visible()


def test_root_opens_the_interface(page: Any) -> None:
    page.goto("/")
    assert urlsplit(page.url).path == "/web/sign-in"
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_the_session_cookie_flags(signed_in: Any) -> None:
    [cookie] = [c for c in signed_in.context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP on loopback; TLS: tests/web/test_sessions.py
    # Scripts cannot read it.
    assert SESSION_COOKIE not in signed_in.evaluate("document.cookie")


def test_sign_out_ends_the_session(signed_in: Any, browser: Any, live_server: Any) -> None:
    page = signed_in
    [cookie] = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/web/sign-in?signed-out=1")
    assert page.get_by_text("You are signed out.").is_visible()
    page.goto("/web/")
    assert urlsplit(page.url).path == "/web/sign-in"
    # The old cookie, replayed by another browser, opens nothing.
    other = browser.new_context(base_url=live_server.url)
    try:
        other.add_cookies([cookie])
        replay = other.new_page()
        replay.goto("/web/")
        assert urlsplit(replay.url).path == "/web/sign-in"
    finally:
        other.close()


def test_htmx_sends_the_csrf_token(signed_in: Any) -> None:
    """The body's hx-headers carry the session's token: an htmx POST is accepted
    (here: sign-out through htmx.ajax), one without the header is refused."""
    page = signed_in
    refused = page.evaluate(
        "fetch('/web/sign-out', {method: 'POST', redirect: 'manual'}).then(r => r.status)"
    )
    assert refused == 403
    page.evaluate("htmx.ajax('POST', '/web/sign-out', {target: 'main', swap: 'innerHTML'})")
    page.wait_for_selector("text=You are signed out.")
    page.goto("/web/")
    assert urlsplit(page.url).path == "/web/sign-in"


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/web/sign-in", "form"),
        ("/docs", ".swagger-ui .info"),
        ("/redoc", "redoc h1, .api-info h1"),
    ],
)
def test_pages_load_nothing_from_other_hosts(
    page: Any, live_server: Any, path: str, ready: str
) -> None:
    """Offline: the page renders from this server alone, and a request for anything
    elsewhere (ReDoc's logo) is blocked by the page's policy before it leaves."""
    ours = urlsplit(live_server.url).netloc
    served: list[str] = []
    blocked: list[str] = []
    page.on("requestfinished", lambda r: served.append(r.url))
    page.on(
        "requestfailed",
        lambda r: (
            blocked.append(f"{r.url} {r.failure}") if urlsplit(r.url).netloc != ours else None
        ),
    )
    page.goto(path)
    page.wait_for_selector(ready, state="visible")
    page.wait_for_load_state("networkidle")
    assert len(served) > 1  # the page and its assets
    foreign = [
        u for u in served if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != ours
    ]
    assert not foreign, foreign
    # Blocked by the policy ("csp"), not failed for want of a network.
    assert all(b.endswith((" csp", "ERR_BLOCKED_BY_CSP")) for b in blocked), blocked
    if path == "/redoc":
        assert blocked, "ReDoc asked for no logo: is the policy still needed?"


def test_create_and_revoke_a_token_in_the_browser(
    signed_in: Any, live_server: Any, web_user: WebUser
) -> None:
    import httpx

    page = signed_in
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    page.wait_for_url("**/web/account")
    page.get_by_label("New token's name").fill("browser laptop")
    page.get_by_role("button", name="Create a token").click()
    token = page.get_by_label("Token", exact=True).input_value()
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    assert page.locator("#login-line").inner_text() == f"repo login {live_server.url}"
    shoot(page, "account")
    with httpx.Client(base_url=live_server.url + "account/v2/") as api:
        headers = {"Authorization": f"Token {token}"}
        assert api.get("workspace/", headers=headers).status_code == 200
        # Revoking asks first (static/app.js): dismissed, the token keeps working.
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.get_by_role("button", name="Revoke browser laptop").click()
        page.wait_for_load_state("networkidle")  # had it been sent, it would be done by now
        assert page.get_by_role("button", name="Revoke browser laptop").is_visible()
        assert api.get("workspace/", headers=headers).status_code == 200
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revoke browser laptop").click()
        page.wait_for_selector("text=The token was revoked.")
        assert page.get_by_role("button", name="Revoke browser laptop").count() == 0
        assert api.get("workspace/", headers=headers).status_code == 401
    assert page.get_by_role("button", name="Revoke test").is_visible()  # the other one stays


@pytest.mark.parametrize("path", ["/web/sign-in", "/web/", "/web/account"])
def test_pages_fit_a_phone_screen(signed_in: Any, path: str) -> None:
    page = signed_in
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(path)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} is {overflow} px wider than a phone's screen"
    if path == "/web/":
        shoot(page, "home-phone")


def test_signing_in_with_the_keyboard_alone(page: Any, web_user: WebUser) -> None:
    page.goto("/web/sign-in")
    page.keyboard.type(web_user.username)  # the user name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(web_user.password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/web/")
    assert page.get_by_role("heading", name="Your workspaces").is_visible()
