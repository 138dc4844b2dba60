"""The web interface's entry pages: ``/`` (to the home page), sign-in, sign-out and the
signed-in home (the user's workspaces). Sessions and CSRF: web/session.py."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from ..context import get_ctx
from ..data import accounts
from ..data.websessions import SessionUser
from ..passwords import verify_password
from .render import SIGN_IN, page
from .security import HOME, safe_next, same_secret
from .session import (
    CSRF_FIELD,
    SIGN_IN_COOKIE,
    checked_form,
    clear_cookie,
    current_user,
    end_session,
    new_secret,
    require_user,
    set_cookie,
    start_session,
)

router = APIRouter(include_in_schema=False)

WRONG_CREDENTIALS = "Wrong user name or password."
SIGN_IN_FORM_EXPIRED = (
    "The sign-in form had expired (or came from another site). It has been renewed: sign in again."
)


@router.api_route("/", methods=["GET", "HEAD"])
async def root() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get("/web")
async def web_root() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get(HOME)
async def home(request: Request, user: SessionUser = Depends(require_user)) -> Response:
    ctx = get_ctx(request)
    workspaces = await run_in_threadpool(accounts.workspace_summaries, ctx.db, user.user_id)
    return page(request, "home.html", {"workspaces": workspaces, "active": "home"})


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _sign_in_page(
    request: Request,
    *,
    next_path: str,
    username: str = "",
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The sign-in form, with a fresh double-submit token (field and cookie)."""
    token = new_secret()
    values = {
        "next": next_path,
        "username": username,
        "errors": errors or {},
        "notice": notice,
        "form_token": token,
    }
    response = page(request, "sign_in.html", values, status=status, headers=headers)
    set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600, path=SIGN_IN)
    return response


@router.get(SIGN_IN)
async def sign_in_form(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    user = await current_user(request)
    notice = "You are signed out." if request.query_params.get("signed-out") else ""
    if user is not None:
        # The form all the same: signing in again (as anyone) ends that session.
        notice = f"You are signed in as {user.username}; signing in again ends that session."
    return _sign_in_page(request, next_path=next_path, notice=notice)


def _sign_in_problems(username: str, password: str) -> dict[str, str]:
    errors = {}
    if not username:
        errors["username"] = "Enter your user name."
    if not password:
        errors["password"] = "Enter your password."
    return errors


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    ctx = get_ctx(request)
    form = await request.form()
    username = _text(form, "username").strip()
    password = _text(form, "password")
    next_path = safe_next(_text(form, "next"))

    def again(
        errors: dict[str, str], status: int, headers: dict[str, str] | None = None
    ) -> Response:
        return _sign_in_page(
            request,
            next_path=next_path,
            username=username,
            errors=errors,
            status=status,
            headers=headers,
        )

    if not same_secret(_text(form, CSRF_FIELD), request.cookies.get(SIGN_IN_COOKIE, "")):
        return again({"form": SIGN_IN_FORM_EXPIRED}, 403)
    errors = _sign_in_problems(username, password)
    if errors:
        return again(errors, 400)
    client = request.client.host if request.client else ""
    wait = await ctx.login_limiter.wait(f"{client}\0{username.casefold()}")
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        message = f"Too many sign-in attempts for this user: try again in {seconds} s."
        return again({"form": message}, 429, headers={"Retry-After": str(seconds)})
    record = await run_in_threadpool(accounts.sign_in_record, ctx.db, username)
    # Verified even for an unknown user (against a dummy hash): the same time either way.
    async with ctx.password_checks:
        matches = await run_in_threadpool(verify_password, record and record[1], password)
    if record is None or not matches:
        return again({"password": WRONG_CREDENTIALS}, 401)
    response = RedirectResponse(next_path, status_code=303)
    await start_session(request, response, record[0])
    clear_cookie(request, response, SIGN_IN_COOKIE, path=SIGN_IN)
    return response


@router.post("/web/sign-out")
async def sign_out(request: Request, _form: FormData = Depends(checked_form)) -> Response:
    response = RedirectResponse(f"{SIGN_IN}?signed-out=1", status_code=303)
    await end_session(request, response)
    return response
