"""Who is signed in to the web interface, and the CSRF check of its forms (the shell
of web/security.py's decisions; the rows are data/websessions.py's).

A session is a random cookie value (``localrepo_session``); the database keeps its
sha256, the user, an expiry and the session's CSRF token. Signing in always makes a new
session and deletes the one the browser came with (no session fixation). Every form of
a signed-in page carries the session's token (``csrf_token``), and htmx requests send
it as the ``X-CSRF-Token`` header (``hx-headers`` on the body); a POST without the
right one is refused with 403. The sign-in form, before any session, uses a
double-submit token instead: a cookie and a form field that must match.

The web session never authorises an API call: the API reads only the Authorization
header (server/api/auth.py).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from ..context import get_ctx
from ..data import websessions
from ..data.tables import iso_at, now_iso
from ..data.websessions import SessionUser
from .render import SignInRequired, WebError
from .security import HOME, cookie_flags, same_secret, secret_hash

SESSION_COOKIE = "localrepo_session"
SIGN_IN_COOKIE = "localrepo_sign_in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_MAX_COOKIE = 200  # longer is not ours: not worth a database look-up
CSRF_REFUSED = (
    "This form could not be accepted: it did not carry this session's security token "
    "(it may be from an older page, or from another site). Reload the page and try again."
)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def current_user(request: Request) -> SessionUser | None:
    """The signed-in user (looked up once per request), or None."""
    if hasattr(request.state, "web_user"):
        return request.state.web_user  # type: ignore[no-any-return]
    value = request.cookies.get(SESSION_COOKIE)
    user = None
    if value and len(value) <= _MAX_COOKIE:
        user = await run_in_threadpool(
            websessions.lookup, get_ctx(request).db, secret_hash(value), now_iso()
        )
    request.state.web_user = user
    return user


async def require_user(request: Request) -> SessionUser:
    """A page's dependency: the signed-in user, or off to the sign-in page."""
    user = await current_user(request)
    if user is None:
        if request.method not in ("GET", "HEAD"):
            # A form posted after the session ended: back to the page, not the POST URL.
            raise SignInRequired(HOME)
        query = request.url.query
        raise SignInRequired(request.url.path + (f"?{query}" if query else ""))
    return user


async def checked_form(request: Request, user: SessionUser = Depends(require_user)) -> FormData:
    """A signed-in POST's form, once its CSRF token is the session's (else 403)."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    token = given if isinstance(given, str) else request.headers.get(CSRF_HEADER)
    if not same_secret(token, user.csrf_token):
        raise WebError(403, CSRF_REFUSED)
    return form


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int, path: str = "/"
) -> None:
    flags = cookie_flags(request.url.scheme)
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=flags.httponly,
        samesite=flags.samesite,  # type: ignore[arg-type]
        secure=flags.secure,
    )


def clear_cookie(request: Request, response: Response, name: str, path: str = "/") -> None:
    flags = cookie_flags(request.url.scheme)
    response.delete_cookie(
        name,
        path=path,
        httponly=flags.httponly,
        samesite=flags.samesite,  # type: ignore[arg-type]
        secure=flags.secure,
    )


async def start_session(request: Request, response: Response, user_id: str) -> None:
    """A new session for ``user_id``, its cookie set on ``response``; the session the
    browser came with (if any) ends."""
    ctx = get_ctx(request)
    value = new_secret()
    now = datetime.now(UTC)
    old = request.cookies.get(SESSION_COOKIE)
    await run_in_threadpool(
        lambda: websessions.start(
            ctx.db,
            id_hash=secret_hash(value),
            user_id=user_id,
            csrf_token=new_secret(),
            expires=iso_at(now + timedelta(seconds=ctx.settings.session_seconds)),
            now=iso_at(now),
            replaces=secret_hash(old) if old and len(old) <= _MAX_COOKIE else None,
        )
    )
    set_cookie(request, response, SESSION_COOKIE, value, ctx.settings.session_seconds)


async def end_session(request: Request, response: Response) -> None:
    value = request.cookies.get(SESSION_COOKIE)
    if value and len(value) <= _MAX_COOKIE:
        await run_in_threadpool(websessions.end, get_ctx(request).db, secret_hash(value))
    clear_cookie(request, response, SESSION_COOKIE)
