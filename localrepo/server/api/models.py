"""``recognition/v2/model/``: the trained versions of a task (the worker trains them:
ml/worker.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ..bodies import check_uuid
from ..context import Principal, get_ctx
from ..data import models
from ..errors import not_found
from ..pagination import PAGE_QUERY, PAGE_SIZE_QUERY, page_body, page_request
from ..schemas import ModelOut, Page
from .auth import authenticate
from .common import delete_by_id, ok, path_id

router = APIRouter(prefix="/recognition/v2", tags=["models"])


@router.get("/model/", response_model=Page[ModelOut])
def list_models(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    task: str | None = Query(None, description="Only the models of this task."),
    page: str | None = PAGE_QUERY,
    page_size: str | None = PAGE_SIZE_QUERY,
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    task_id = check_uuid("task", task) if task else None
    count, results = models.model_page(ctx.db, ws, pr, task=task_id)
    return ok(page_body(request, pr, count, results))


@router.get("/model/{model_id}/", response_model=ModelOut)
def get_model(
    request: Request,
    model_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace_of(principal, workspace, "model", model_id)
    found = models.get_model(ctx.db, ws, path_id(model_id, "Model"))
    if found is None:
        raise not_found("Model not found.")
    return ok(found)


@router.delete("/model/{model_id}/", status_code=204, response_class=Response)
async def delete_model(
    request: Request,
    model_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    return await delete_by_id(
        request,
        principal,
        workspace,
        "model",
        model_id,
        "Model",
        lambda ctx, ws, oid: models.delete_model(ctx.db, ws, oid),
    )
