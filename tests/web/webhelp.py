"""Helpers of the web interface's tests: users with a password, signing in over plain
HTTP (httpx), reading a page's forms, a task with labels made through the API."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "web"
PASSWORD = "correct horse battery"
SESSION_COOKIE = "localrepo_session"


@dataclass(frozen=True)
class WebUser:
    username: str
    password: str
    token: str  # an API token of the same user
    url: str  # the server's base URL


def new_web_user(server: Any, password: str = PASSWORD) -> WebUser:
    """A user of `server` with a password (the same code as `localrepo-server user
    set-password`, straight in the server's database) and an API token."""
    from localrepo.server.data import accounts
    from localrepo.server.data.db import Database
    from localrepo.server.passwords import hash_password

    account = server.new_account(f"web-{uuid.uuid4().hex[:10]}")
    db = Database(server.database_url)
    try:
        accounts.set_password(db, account.username, hash_password(password))
    finally:
        db.dispose()
    return WebUser(account.username, password, account.token, server.url)


def hidden(html: str, name: str, form_action: str = "") -> str:
    """The value of the hidden field `name` of the page's first form (posting to
    `form_action`, if given)."""
    start = html.index(f'action="{form_action}"') if form_action else 0
    found = re.search(rf'name="{name}" value="([^"]*)"', html[start:])
    assert found, f"no hidden field {name!r} in:\n{html}"
    return found.group(1)


def sign_in_form(client: httpx.Client, next_path: str | None = None) -> str:
    """GET the sign-in page (the client keeps its double-submit cookie); its token."""
    params = {"next": next_path} if next_path else None
    answer = client.get("/web/sign-in", params=params)
    assert answer.status_code == 200, answer.text
    return hidden(answer.text, "csrf_token", form_action="/web/sign-in")


def sign_in(
    client: httpx.Client, user: WebUser, *, password: str | None = None, next_path: str = ""
) -> httpx.Response:
    token = sign_in_form(client)
    return client.post(
        "/web/sign-in",
        data={
            "csrf_token": token,
            "username": user.username,
            "password": user.password if password is None else password,
            "next": next_path,
        },
    )


def web_client(user: WebUser) -> httpx.Client:
    """An httpx client on the server's root that does not follow redirects."""
    return httpx.Client(base_url=user.url, timeout=30.0, follow_redirects=False)


@contextmanager
def signed_in_client(user: WebUser) -> Iterator[httpx.Client]:
    with web_client(user) as client:
        answer = sign_in(client, user)
        assert answer.status_code == 303, answer.text
        yield client


def page_csrf(client: httpx.Client) -> str:
    """The session's CSRF token, as the home page's forms carry it."""
    answer = client.get("/web/")
    assert answer.status_code == 200, answer.text
    return hidden(answer.text, "csrf_token")


def screenshots_wanted() -> bool:
    """LOCALREPO_SCREENSHOTS=1: the browser tests write docs/web/*.png (else the suite
    would rewrite the docs on every run)."""
    return os.environ.get("LOCALREPO_SCREENSHOTS") == "1"


def make_task(
    server: Any,
    user: WebUser,
    labels: tuple[str, ...] = ("cat", "dog"),
    task_type: str = "multi_class",
) -> dict[str, Any]:
    """A task (``multi_class``: category labels, ``multi_label``: tags, ``regression``:
    value labels) with ``labels`` through the API (the user's token): ids."""
    label_type = {"multi_class": "category", "multi_label": "tag", "regression": "value"}
    with server.client(user.token) as api:
        task = api.post("task/", json={"name": "pets", "type": task_type}).json()
        ids = {}
        for name in labels:
            label = api.post("label/", json={"name": name, "type": label_type[task_type]}).json()
            api.post(
                f"task/{task['id']}/add-label/", json={"label_id": label["id"]}
            ).raise_for_status()
            ids[name] = label["id"]

    return {"id": task["id"], "workspace": task["workspace"], "labels": ids}
