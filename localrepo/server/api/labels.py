"""``recognition/v2/label/``: labels (they belong to a workspace, not to a task)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, get_ctx
from ..data import labels, wipe
from ..errors import field_error, not_found
from ..pagination import PAGE_QUERY, PAGE_SIZE_QUERY, page_body, page_request
from ..schemas import (
    Detail,
    LabelCreate,
    LabelDetailOut,
    LabelOut,
    LabelType,
    LabelUpdate,
    Page,
    TaskRef,
)
from .auth import authenticate
from .common import body_workspace, delete_by_id, ok, path_id

router = APIRouter(prefix="/recognition/v2", tags=["labels"])


@router.get("/label/", response_model=Page[LabelOut])
def list_labels(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    task: str | None = Query(None, description="Only labels attached to this task."),
    search: str | None = Query(
        None,
        description="Terms, all in the name (case-insensitive); whitespace or commas "
        'separate them, "a quoted phrase" is one.',
    ),
    type: LabelType | None = Query(None),
    page: str | None = PAGE_QUERY,
    page_size: str | None = PAGE_SIZE_QUERY,
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    task_id = check_uuid("task", task) if task else None
    count, results = labels.label_page(ctx.db, ws, pr, task=task_id, search=search, label_type=type)
    return ok(page_body(request, pr, count, results))


@router.post(
    "/label/",
    status_code=201,
    response_model=LabelOut,
    openapi_extra=body_doc(LabelCreate, form=True),
)
async def create_label(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, LabelCreate)
    body = parse(LabelCreate, data)
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    args = (ctx.db, ws, body.name, body.type, body.description or "", body.output_name)
    return ok(await run_in_threadpool(labels.create_label, *args), 201)


@router.get("/label/{label_id}/", response_model=LabelDetailOut)
def get_label(
    request: Request,
    label_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace_of(principal, workspace, "label", label_id)
    found = labels.label_detail(ctx.db, ws, path_id(label_id, "Label"))
    if found is None:
        raise not_found("Label not found.")
    return ok(found)


async def _update_label_route(
    request: Request, label_id: str, principal: Principal, *, partial: bool
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, LabelUpdate)
    body = parse(LabelUpdate, data)
    if not partial and body.name is None:
        raise field_error("name", "This field is required.")
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "label", label_id
    )
    lid = path_id(label_id, "Label")
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if "description" in body.model_fields_set:
        changes["description"] = body.description or ""
    if "output_name" in body.model_fields_set:
        changes["output_name"] = body.output_name
    if "type" in data:  # read-only: the same value is fine, another one a 400
        changes["type"] = data["type"]
    return ok(await run_in_threadpool(labels.update_label, ctx.db, ws, lid, changes))


@router.put("/label/{label_id}/", response_model=LabelOut, openapi_extra=body_doc(LabelUpdate))
async def put_label(
    request: Request, label_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _update_label_route(request, label_id, principal, partial=False)


@router.patch("/label/{label_id}/", response_model=LabelOut, openapi_extra=body_doc(LabelUpdate))
async def patch_label(
    request: Request, label_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _update_label_route(request, label_id, principal, partial=True)


@router.delete("/label/{label_id}/", status_code=204, response_class=Response)
async def delete_label(
    request: Request,
    label_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    return await delete_by_id(
        request,
        principal,
        workspace,
        "label",
        label_id,
        "Label",
        lambda ctx, ws, oid: labels.delete_label(ctx.db, ws, oid),
    )


@router.delete("/label/{label_id}/wipe/", status_code=204, response_class=Response)
async def wipe_label(
    request: Request,
    label_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    """The label, every image carrying it and their bytes (the SDK's ``Label.wipe()``)."""
    return await delete_by_id(
        request,
        principal,
        workspace,
        "label",
        label_id,
        "Label",
        lambda ctx, ws, oid: wipe.wipe_label(ctx.db, ctx.blobs, ws, oid),
    )


async def _link_subtask(
    request: Request, label_id: str, principal: Principal, *, linked: bool
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, TaskRef)
    body = parse(TaskRef, data)
    task_id = check_uuid("task_id", body.task_id)
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "label", label_id
    )
    lid = path_id(label_id, "Label")
    await run_in_threadpool(labels.link_subtask, ctx.db, ws, lid, task_id, linked=linked)
    return ok({"detail": "Task added to the label." if linked else "Task removed from the label."})


@router.post(
    "/label/{label_id}/add-task/",
    response_model=Detail,
    openapi_extra=body_doc(TaskRef, form=True),
)
async def label_add_task(
    request: Request, label_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    """The task refines the label (the hosted service's label -> task hierarchy; the
    SDK's ``Label.add_annotate_task``)."""
    return await _link_subtask(request, label_id, principal, linked=True)


@router.post(
    "/label/{label_id}/remove-task/",
    response_model=Detail,
    openapi_extra=body_doc(TaskRef, form=True),
)
async def label_remove_task(
    request: Request, label_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    return await _link_subtask(request, label_id, principal, linked=False)
