"""``account/v2/workspace/``: the caller's workspaces (a plain list, no pagination)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import text
from starlette.responses import Response

from ..context import Principal, get_ctx
from ..data import queries
from ..schemas import WorkspaceOut
from .auth import authenticate
from .common import ok

router = APIRouter(prefix="/account/v2", tags=["account"])


@router.get("/workspace/", response_model=list[WorkspaceOut])
def list_workspaces(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    ctx = get_ctx(request)
    with ctx.db.read() as session:
        rows = session.connection().execute(
            text(
                "SELECT id, name, created, owner_id, meta_data, is_default FROM workspaces "
                "WHERE owner_id = :u ORDER BY is_default DESC, created, id"
            ),
            {"u": principal.user_id},
        )
        body = [
            {
                "id": r[0],
                "name": r[1],
                "created": r[2],
                "owner": r[3],
                "meta_data": queries.json_fragment(r[4]),
                "is_default": bool(r[5]),
            }
            for r in rows
        ]
    return ok(body)
