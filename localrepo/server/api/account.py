"""``account/v2/workspace/``: the caller's workspaces (a plain list, no pagination)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..context import Principal, get_ctx
from ..data import accounts
from ..schemas import WorkspaceOut
from .auth import authenticate
from .common import ok

router = APIRouter(prefix="/account/v2", tags=["account"])


@router.get("/workspace/", response_model=list[WorkspaceOut])
def list_workspaces(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    return ok(accounts.workspace_dicts(get_ctx(request).db, principal.user_id))
