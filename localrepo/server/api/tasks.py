"""``recognition/v2/task/``: tasks, their labels, queueing a training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, ServerContext, get_ctx
from ..data import tasks
from ..errors import field_error, not_found
from ..pagination import PAGE_QUERY, PAGE_SIZE_QUERY, page_body, page_request
from ..schemas import (
    Detail,
    LabelRef,
    Page,
    TaskCreate,
    TaskOut,
    TaskUpdate,
    TrainQueued,
    WorkspaceRef,
)
from ..trainqueue import queue_task_training
from .auth import authenticate
from .common import body_workspace, delete_by_id, ok, path_id

router = APIRouter(prefix="/recognition/v2", tags=["tasks"])


def _task_or_404(ctx: ServerContext, ws: str, task_id: str) -> dict[str, object]:
    found = tasks.get_task(ctx.db, ws, task_id)
    if found is None:
        raise not_found("Task not found.")
    return found


@router.get("/task/", response_model=Page[TaskOut])
def list_tasks(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    page: str | None = PAGE_QUERY,
    page_size: str | None = PAGE_SIZE_QUERY,
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    count, results = tasks.task_page(ctx.db, ws, pr)
    return ok(page_body(request, pr, count, results))


@router.post(
    "/task/",
    status_code=201,
    response_model=TaskOut,
    openapi_extra=body_doc(TaskCreate, form=True),
)
async def create_task(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, TaskCreate)
    body = parse(TaskCreate, data)
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    description = body.description or ""
    args = (ctx.db, ws, body.name, body.type, description)
    return ok(await run_in_threadpool(tasks.create_task, *args), 201)


@router.get("/task/{task_id}/", response_model=TaskOut)
def get_task(
    request: Request,
    task_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace_of(principal, workspace, "task", task_id)
    return ok(_task_or_404(ctx, ws, path_id(task_id, "Task")))


async def _update_task_route(
    request: Request, task_id: str, principal: Principal, *, partial: bool
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, TaskUpdate)
    body = parse(TaskUpdate, data)
    if not partial and body.name is None:
        raise field_error("name", "This field is required.")
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "task", task_id
    )
    tid = path_id(task_id, "Task")
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if "description" in body.model_fields_set:
        changes["description"] = body.description or ""
    if body.production_version is not None:
        changes["production_version"] = body.production_version
    if "type" in data:  # read-only: the same value is fine, another one a 400
        changes["type"] = data["type"]
    return ok(await run_in_threadpool(tasks.update_task, ctx.db, ws, tid, changes))


@router.put("/task/{task_id}/", response_model=TaskOut, openapi_extra=body_doc(TaskUpdate))
async def put_task(
    request: Request, task_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _update_task_route(request, task_id, principal, partial=False)


@router.patch("/task/{task_id}/", response_model=TaskOut, openapi_extra=body_doc(TaskUpdate))
async def patch_task(
    request: Request, task_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _update_task_route(request, task_id, principal, partial=True)


@router.delete("/task/{task_id}/", status_code=204, response_class=Response)
async def delete_task(
    request: Request,
    task_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    return await delete_by_id(
        request,
        principal,
        workspace,
        "task",
        task_id,
        "Task",
        lambda ctx, ws, oid: tasks.delete_task(ctx.db, ws, oid),
    )


async def _link_label(
    request: Request,
    task_id: str,
    principal: Principal,
    change: Callable[..., object],
    said: str,
) -> Response:
    """add-label/ and remove-label/: read the label's id, `change` the link, say `said`."""
    ctx = get_ctx(request)
    data, _ = await read_body(request, LabelRef)
    body = parse(LabelRef, data)
    label_id = check_uuid("label_id", body.label_id)
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "task", task_id
    )
    tid = path_id(task_id, "Task")
    await run_in_threadpool(change, ctx.db, ws, tid, label_id)
    return ok({"detail": said})


@router.post(
    "/task/{task_id}/add-label/",
    response_model=Detail,
    openapi_extra=body_doc(LabelRef, form=True),
)
async def task_add_label(
    request: Request, task_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _link_label(
        request, task_id, principal, tasks.add_label, "Label added to the task."
    )


@router.post(
    "/task/{task_id}/remove-label/",
    response_model=Detail,
    openapi_extra=body_doc(LabelRef, form=True),
)
async def task_remove_label(
    request: Request, task_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _link_label(
        request, task_id, principal, tasks.remove_label, "Label removed from the task."
    )


@router.post(
    "/task/{task_id}/train/",
    response_model=TrainQueued,
    openapi_extra=body_doc(WorkspaceRef, form=True, required=False),
)
async def train_task(
    request: Request, task_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    """Queue a training and answer at once; the task shows ``WAITING``, then
    ``IN_TRAINING``, then ``TRAINED`` or ``ERROR`` (see ``model/?task=``). 400 when a
    label has fewer images than the server's minimum (the message names them)."""
    ctx = get_ctx(request)
    data, _ = await read_body(request, WorkspaceRef)
    parse(WorkspaceRef, data)
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "task", task_id
    )
    tid = path_id(task_id, "Task")
    return ok(await run_in_threadpool(queue_task_training, ctx, ws, tid))
