"""``recognition/v2/task/``: tasks, their labels, queueing a training."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, ServerContext, get_ctx
from ..data import queries, training
from ..data.tables import Label, Task, TaskLabel, now_iso
from ..errors import bad_request, field_error, not_found
from ..ml.heads import too_few_problems
from ..pagination import check_page, page_body, page_request
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
from .auth import authenticate
from .common import body_workspace, no_content, ok, path_id

router = APIRouter(prefix="/recognition/v2", tags=["tasks"])

LABEL_TYPE_FOR_TASK = {"multi_class": "category", "multi_label": "tag", "regression": "value"}


def _task_or_404(ctx: ServerContext, ws: str, task_id: str) -> dict[str, object]:
    with ctx.db.read() as session:
        found = queries.get_task(session.connection(), ws, task_id)
    if found is None:
        raise not_found("Task not found.")
    return found


@router.get("/task/", response_model=Page[TaskOut])
def list_tasks(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    page: int = Query(1, ge=1),
    page_size: int | None = Query(None, ge=1),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    with ctx.db.read() as session:
        conn = session.connection()
        count = conn.execute(
            text("SELECT count(*) FROM tasks WHERE workspace_id = :ws"), {"ws": ws}
        ).scalar_one()
        check_page(pr, count)
        rows = conn.execute(
            text(
                f"SELECT {queries.TASK_COLUMNS} FROM {queries.TASK_FROM} "
                "WHERE t.workspace_id = :ws ORDER BY t.created, t.id LIMIT :lim OFFSET :off"
            ),
            {"ws": ws, "lim": pr.size, "off": pr.offset},
        ).all()
        results = queries.task_dicts(conn, rows)
    return ok(page_body(request, pr, count, results))


def _create_task(ctx: ServerContext, ws: str, body: TaskCreate) -> dict[str, object]:
    with ctx.db.write() as session:
        task = Task(
            workspace_id=ws, name=body.name, type=body.type, description=body.description or ""
        )
        session.add(task)
        session.flush()
        if task.type == "multi_label":
            negative = Label(
                workspace_id=ws,
                name=f"{task.name} (negative)",
                type="tag",
                description=f"Images without any tag of the task {task.name!r}.",
                negative_for_task=task.id,
            )
            session.add(negative)
            session.flush()
            session.add(TaskLabel(task_id=task.id, label_id=negative.id))
        session.flush()
        found = queries.get_task(session.connection(), ws, task.id)
    assert found is not None
    return found


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
    return ok(await run_in_threadpool(_create_task, ctx, ws, body), 201)


@router.get("/task/{task_id}/", response_model=TaskOut)
def get_task(
    request: Request,
    task_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    return ok(_task_or_404(ctx, ws, path_id(task_id, "Task")))


def _update_task(ctx: ServerContext, ws: str, task_id: str, body: TaskUpdate) -> dict[str, object]:
    with ctx.db.write() as session:
        task = session.get(Task, task_id)
        if task is None or task.workspace_id != ws:
            raise not_found("Task not found.")
        if body.name is not None:
            task.name = body.name
        if "description" in body.model_fields_set:
            task.description = body.description or ""
        session.add(task)
        session.flush()
        found = queries.get_task(session.connection(), ws, task_id)
    assert found is not None
    return found


async def _update_task_route(
    request: Request, task_id: str, principal: Principal, *, partial: bool
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, TaskUpdate)
    body = parse(TaskUpdate, data)
    if not partial and body.name is None:
        raise field_error("name", "This field is required.")
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    tid = path_id(task_id, "Task")
    return ok(await run_in_threadpool(_update_task, ctx, ws, tid, body))


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


def _delete_task(ctx: ServerContext, ws: str, task_id: str) -> None:
    with ctx.db.write() as session:
        task = session.get(Task, task_id)
        if task is None or task.workspace_id != ws:
            raise not_found("Task not found.")
        # The task's own negative label goes with it. Everything is detached explicitly,
        # so that it does not depend on the database enforcing ON DELETE CASCADE.
        negatives = "SELECT id FROM labels WHERE negative_for_task = :t"
        for sql in (
            f"DELETE FROM image_labels WHERE label_id IN ({negatives})",
            f"DELETE FROM task_labels WHERE label_id IN ({negatives})",
            "DELETE FROM labels WHERE negative_for_task = :t",
            "DELETE FROM task_labels WHERE task_id = :t",
            "DELETE FROM training_jobs WHERE task_id = :t",
            "DELETE FROM model_heads WHERE model_id IN (SELECT id FROM models WHERE task_id = :t)",
            "DELETE FROM models WHERE task_id = :t",
        ):
            session.execute(text(sql), {"t": task_id})
        session.delete(task)


@router.delete("/task/{task_id}/", status_code=204, response_class=Response)
def delete_task(
    request: Request,
    task_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    _delete_task(ctx, ws, path_id(task_id, "Task"))
    return no_content()


def _label_in_ws(session: Session, ws: str, label_id: str) -> Label:
    label = session.get(Label, label_id)
    if label is None or label.workspace_id != ws:
        raise field_error("label_id", f"Label '{label_id}' does not exist in this workspace.")
    return label


def _add_label(ctx: ServerContext, ws: str, task_id: str, label_id: str) -> dict[str, str]:
    with ctx.db.write() as session:
        task = session.get(Task, task_id)
        if task is None or task.workspace_id != ws:
            raise not_found("Task not found.")
        label = _label_in_ws(session, ws, label_id)
        wanted = LABEL_TYPE_FOR_TASK[task.type]
        if label.type != wanted:
            raise bad_request(
                f"Label type '{label.type}' does not fit the task type '{task.type}' "
                f"(a {task.type} task takes '{wanted}' labels)."
            )
        if session.get(TaskLabel, (task_id, label_id)) is None:
            session.add(TaskLabel(task_id=task_id, label_id=label_id, created=now_iso()))
    return {"detail": "Label added to the task."}


def _remove_label(ctx: ServerContext, ws: str, task_id: str, label_id: str) -> dict[str, str]:
    with ctx.db.write() as session:
        task = session.get(Task, task_id)
        if task is None or task.workspace_id != ws:
            raise not_found("Task not found.")
        _label_in_ws(session, ws, label_id)
        session.execute(
            text("DELETE FROM task_labels WHERE task_id = :t AND label_id = :l"),
            {"t": task_id, "l": label_id},
        )
    return {"detail": "Label removed from the task."}


@router.post(
    "/task/{task_id}/add-label/",
    response_model=Detail,
    openapi_extra=body_doc(LabelRef, form=True),
)
async def task_add_label(
    request: Request, task_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, LabelRef)
    body = parse(LabelRef, data)
    label_id = check_uuid("label_id", body.label_id)
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    tid = path_id(task_id, "Task")
    return ok(await run_in_threadpool(_add_label, ctx, ws, tid, label_id))


@router.post(
    "/task/{task_id}/remove-label/",
    response_model=Detail,
    openapi_extra=body_doc(LabelRef, form=True),
)
async def task_remove_label(
    request: Request, task_id: str, principal: Principal = Depends(authenticate)
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, LabelRef)
    body = parse(LabelRef, data)
    label_id = check_uuid("label_id", body.label_id)
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    tid = path_id(task_id, "Task")
    return ok(await run_in_threadpool(_remove_label, ctx, ws, tid, label_id))


def _queue_training(ctx: ServerContext, ws: str, task_id: str) -> dict[str, object]:
    _task_or_404(ctx, ws, task_id)
    data = training.load_task_data(ctx.db, task_id)
    if data is None:
        raise not_found("Task not found.")
    problem = too_few_problems(
        data.type, data.labels, data.samples, ctx.settings.min_images_per_label
    )
    if problem:
        raise bad_request(problem)
    answer = training.queue_training(ctx.db, task_id)
    ctx.ml.on_queued()
    return answer


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
    ws = await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    tid = path_id(task_id, "Task")
    return ok(await run_in_threadpool(_queue_training, ctx, ws, tid))
