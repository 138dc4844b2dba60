"""``recognition/v2/label/``: labels (they belong to a workspace, not to a task)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import bindparam, text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, ServerContext, get_ctx
from ..data import queries
from ..data.tables import Label
from ..errors import field_error, not_found
from ..pagination import check_page, page_body, page_request
from ..schemas import LabelCreate, LabelOut, LabelType, LabelUpdate, Page
from .auth import authenticate
from .common import body_workspace, no_content, ok, path_id

router = APIRouter(prefix="/recognition/v2", tags=["labels"])


@router.get("/label/", response_model=Page[LabelOut])
def list_labels(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    task: str | None = Query(None, description="Only labels attached to this task."),
    search: str | None = Query(None, description="Case-insensitive substring of the name."),
    type: LabelType | None = Query(None),
    page: int = Query(1, ge=1),
    page_size: int | None = Query(None, ge=1),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    where = ["l.workspace_id = :ws"]
    params: dict[str, Any] = {"ws": ws}
    if task:
        where.append(
            "EXISTS (SELECT 1 FROM task_labels tl WHERE tl.label_id = l.id AND tl.task_id = :task)"
        )
        params["task"] = check_uuid("task", task)
    if type:
        where.append("l.type = :type")
        params["type"] = type
    cond = " AND ".join(where)
    with ctx.db.read() as session:
        conn = session.connection()
        if search:
            # Unicode-aware case folding in Python (SQL lower() is ASCII-only in SQLite);
            # a workspace's labels are few, so this is cheap.
            needle = search.casefold()
            ids = [
                r[0]
                for r in conn.execute(
                    text(
                        f"SELECT l.id, l.name FROM labels l WHERE {cond} ORDER BY l.created, l.id"
                    ),
                    params,
                )
                if needle in r[1].casefold()
            ]
            count = len(ids)
            check_page(pr, count)
            page_ids = ids[pr.offset : pr.offset + pr.size]
            rows = (
                conn.execute(
                    text(
                        f"SELECT {queries.LABEL_COLUMNS} FROM labels l WHERE l.id IN :ids "
                        "ORDER BY l.created, l.id"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": page_ids},
                ).all()
                if page_ids
                else []
            )
        else:
            count = conn.execute(
                text(f"SELECT count(*) FROM labels l WHERE {cond}"), params
            ).scalar_one()
            check_page(pr, count)
            rows = conn.execute(
                text(
                    f"SELECT {queries.LABEL_COLUMNS} FROM labels l WHERE {cond} "
                    "ORDER BY l.created, l.id LIMIT :lim OFFSET :off"
                ),
                {**params, "lim": pr.size, "off": pr.offset},
            ).all()
    return ok(page_body(request, pr, count, [queries.label_dict(r) for r in rows]))


def _create_label(ctx: ServerContext, ws: str, body: LabelCreate) -> dict[str, Any]:
    with ctx.db.write() as session:
        label = Label(
            workspace_id=ws,
            name=body.name,
            type=body.type,
            description=body.description or "",
            output_name=body.output_name,
        )
        session.add(label)
        session.flush()
        found = queries.get_label(session.connection(), ws, label.id)
    assert found is not None
    return found


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
    return ok(await run_in_threadpool(_create_label, ctx, ws, body), 201)


@router.get("/label/{label_id}/", response_model=LabelOut)
def get_label(
    request: Request,
    label_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    with ctx.db.read() as session:
        found = queries.get_label(session.connection(), ws, path_id(label_id, "Label"))
    if found is None:
        raise not_found("Label not found.")
    return ok(found)


def _update_label(ctx: ServerContext, ws: str, label_id: str, body: LabelUpdate) -> dict[str, Any]:
    with ctx.db.write() as session:
        label = session.get(Label, label_id)
        if label is None or label.workspace_id != ws:
            raise not_found("Label not found.")
        if body.name is not None:
            label.name = body.name
        if "description" in body.model_fields_set:
            label.description = body.description or ""
        if "output_name" in body.model_fields_set:
            label.output_name = body.output_name
        session.add(label)
        session.flush()
        found = queries.get_label(session.connection(), ws, label_id)
    assert found is not None
    return found


async def _update_label_route(
    request: Request, label_id: str, principal: Principal, *, partial: bool
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, LabelUpdate)
    body = parse(LabelUpdate, data)
    if not partial and body.name is None:
        raise field_error("name", "This field is required.")
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    lid = path_id(label_id, "Label")
    return ok(await run_in_threadpool(_update_label, ctx, ws, lid, body))


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


def _delete_label(ctx: ServerContext, ws: str, label_id: str) -> None:
    with ctx.db.write() as session:
        label = session.get(Label, label_id)
        if label is None or label.workspace_id != ws:
            raise not_found("Label not found.")
        # Detach it from every task and every image, then drop it (explicit, so it does
        # not depend on the database enforcing ON DELETE CASCADE).
        session.execute(text("DELETE FROM image_labels WHERE label_id = :l"), {"l": label_id})
        session.execute(text("DELETE FROM task_labels WHERE label_id = :l"), {"l": label_id})
        session.delete(label)


@router.delete("/label/{label_id}/", status_code=204, response_class=Response)
def delete_label(
    request: Request,
    label_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    _delete_label(ctx, ws, path_id(label_id, "Label"))
    return no_content()
