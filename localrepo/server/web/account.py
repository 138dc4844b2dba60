"""The account page: the signed-in user's workspaces and API tokens; creating a token
(shown once, with the ``repo login`` line to connect a clone) and revoking one. The
same rows as ``localrepo-server token ...`` (data/accounts.py), for the user's own
tokens only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from ..context import get_ctx
from ..data import accounts
from ..data.websessions import SessionUser
from .render import WebError, page
from .session import checked_form, require_user

ACCOUNT = "/web/account"
TOKEN_NAME_MAX = 150

router = APIRouter(include_in_schema=False)


async def _account_page(
    request: Request,
    user: SessionUser,
    extra: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    ctx = get_ctx(request)
    workspaces = await run_in_threadpool(accounts.workspace_summaries, ctx.db, user.user_id)
    tokens = await run_in_threadpool(accounts.list_tokens, ctx.db, user.username)
    values = {
        "active": "account",
        "workspaces": workspaces,
        "tokens": tokens,
        "server_url": str(request.base_url),
        "new_token": None,
        "errors": {},
        "token_name": "",
        "notice": "",
        **(extra or {}),
    }
    return page(request, "account.html", values, status=status)


@router.get(ACCOUNT)
async def account_page(request: Request, user: SessionUser = Depends(require_user)) -> Response:
    notice = "The token was revoked." if request.query_params.get("revoked") else ""
    return await _account_page(request, user, {"notice": notice})


@router.post(ACCOUNT + "/tokens")
async def create_token(
    request: Request,
    form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    raw = form.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    if len(name) > TOKEN_NAME_MAX:
        errors = {"name": f"A token's name may have at most {TOKEN_NAME_MAX} characters."}
        return await _account_page(
            request, user, {"errors": errors, "token_name": name[:TOKEN_NAME_MAX]}, status=400
        )
    new = await run_in_threadpool(accounts.create_token, get_ctx(request).db, user.username, name)
    # Shown in this answer only: it is not stored, and a reload does not show it again.
    return await _account_page(request, user, {"new_token": new, "token_name": name})


@router.post(ACCOUNT + "/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request,
    token_id: str,
    _form: FormData = Depends(checked_form),
    user: SessionUser = Depends(require_user),
) -> Response:
    ctx = get_ctx(request)
    token_hash = await run_in_threadpool(accounts.revoke_user_token, ctx.db, user.user_id, token_id)
    if token_hash is None:
        raise WebError(404, "You have no such token (it may have been revoked already).")
    ctx.auth_cache.pop(token_hash, None)  # refused from now on, not after the cache's delay
    return RedirectResponse(f"{ACCOUNT}?revoked=1", status_code=303)
