"""The account page: workspaces and API tokens, a token created (shown once, working on
the API at once) and revoked (refused by the API at once), only the user's own, and
every form CSRF-checked. Over HTTP against the real server; the browser's view of it is
in tests/web/test_browser.py."""

from __future__ import annotations

import re
from typing import Any

import httpx

from .webhelp import WebUser, hidden, new_web_user, signed_in_client


def api_status(server: Any, token: str) -> int:
    with httpx.Client(base_url=server.url, timeout=30.0) as api:
        answer = api.get("account/v2/workspace/", headers={"Authorization": f"Token {token}"})
        return answer.status_code


def shown_token(html: str) -> str:
    found = re.search(r'id="token-value" type="text" readonly value="([0-9a-f]{40})"', html)
    assert found, html
    return found.group(1)


def revoke_forms(html: str) -> list[str]:
    return re.findall(r'action="(/web/account/tokens/[^"]+/revoke)"', html)


def test_the_account_page_lists_workspaces_and_tokens(live_server: Any, web_user: WebUser) -> None:
    live_server.create_workspace(web_user.username, "Field photos")
    with signed_in_client(web_user) as client:
        page = client.get("/web/account")
        assert page.status_code == 200
        assert "Field photos" in page.text and "Default (default)" in page.text
        assert ">test<" in page.text  # the token new_account made, by name
        assert web_user.token not in page.text  # tokens are never shown again
        assert len(revoke_forms(page.text)) == 1


def test_a_new_token_is_shown_once_with_the_login_line_and_works(
    live_server: Any, web_user: WebUser
) -> None:
    with signed_in_client(web_user) as client:
        csrf = hidden(client.get("/web/account").text, "csrf_token")
        made = client.post("/web/account/tokens", data={"csrf_token": csrf, "name": "laptop"})
        assert made.status_code == 200
        token = shown_token(made.text)
        assert f"repo login {live_server.url}" in made.text
        assert api_status(live_server, token) == 200
        again = client.get("/web/account")
        assert token not in again.text and ">laptop<" in again.text
        assert len(revoke_forms(again.text)) == 2
    assert token not in live_server.log_text()


def test_revoking_a_token_stops_it_at_once(live_server: Any, web_user: WebUser) -> None:
    assert api_status(live_server, web_user.token) == 200  # now in the server's auth cache
    with signed_in_client(web_user) as client:
        page = client.get("/web/account").text
        [action] = revoke_forms(page)
        done = client.post(action, data={"csrf_token": hidden(page, "csrf_token")})
        assert done.status_code == 303 and done.headers["location"] == "/web/account?revoked=1"
        assert "The token was revoked." in client.get(done.headers["location"]).text
        assert api_status(live_server, web_user.token) == 401
        gone = client.post(action, data={"csrf_token": hidden(page, "csrf_token")})
        assert gone.status_code == 404 and "no such token" in gone.text


def test_another_users_token_cannot_be_revoked(live_server: Any, web_user: WebUser) -> None:
    victim = new_web_user(live_server)
    with signed_in_client(victim) as theirs:
        [their_action] = revoke_forms(theirs.get("/web/account").text)
    with signed_in_client(web_user) as client:
        csrf = hidden(client.get("/web/account").text, "csrf_token")
        refused = client.post(their_action, data={"csrf_token": csrf})
        assert refused.status_code == 404
        assert victim.username not in client.get("/web/account").text
    assert api_status(live_server, victim.token) == 200


def test_account_forms_need_the_session_token(live_server: Any, web_user: WebUser) -> None:
    with signed_in_client(web_user) as client:
        page = client.get("/web/account").text
        [action] = revoke_forms(page)
        for url, data in (
            ("/web/account/tokens", {"name": "sneaky"}),
            ("/web/account/tokens", {"name": "sneaky", "csrf_token": "forged"}),
            (action, {}),
        ):
            assert client.post(url, data=data).status_code == 403
        after = client.get("/web/account").text
        assert "sneaky" not in after and len(revoke_forms(after)) == 1
    assert api_status(live_server, web_user.token) == 200


def test_a_too_long_token_name_is_refused_next_to_the_field(
    live_server: Any, web_user: WebUser
) -> None:
    with signed_in_client(web_user) as client:
        csrf = hidden(client.get("/web/account").text, "csrf_token")
        refused = client.post("/web/account/tokens", data={"csrf_token": csrf, "name": "x" * 151})
        assert refused.status_code == 400
        assert 'id="token-name-error"' in refused.text and "at most 150" in refused.text
        assert 'id="token-value"' not in refused.text


def test_the_account_page_needs_a_session(live_server: Any) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        answer = client.get("/web/account")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/web/sign-in?next=%2Fweb%2Faccount"
        posted = client.post("/web/account/tokens", data={"name": "x"})
        assert posted.status_code == 303  # to sign-in, then home (not back to a POST URL)
        assert posted.headers["location"] == "/web/sign-in"
