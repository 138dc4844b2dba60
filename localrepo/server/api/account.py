"""``account/v2/``: the caller's workspaces (``workspace/``, a plain list, no
pagination) and the caller (``user/``, and ``details/``, the route the hosted service's
quickstart calls first)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..context import Principal, get_ctx
from ..data import accounts
from ..schemas import UserOut, WorkspaceOut
from .auth import authenticate
from .common import ok

router = APIRouter(prefix="/account/v2", tags=["account"])


@router.get("/workspace/", response_model=list[WorkspaceOut])
def list_workspaces(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    return ok(accounts.workspace_dicts(get_ctx(request).db, principal.user_id))


@router.get("/user/", response_model=UserOut)
def user_details(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    """The SDK's ``get_user_details()``."""
    db = get_ctx(request).db
    return ok(accounts.user_dict(db, principal.user_id, principal.default_workspace_id))


@router.get("/details/", response_model=UserOut)
def account_details(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    """The hosted quickstart's first request: the caller, as ``user/`` answers it (this
    server keeps no phone, organisation or credits, so those keys are absent)."""
    return user_details(request, principal)
